"""The operator's console in real Chromium: an execution's logs followed live while Celery
workers run its partitions; a schedule paused, triggered now and resumed; an alert received by
a local webhook."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from batchline.testing import eventually
from tests.test_celery import Workers, setup
from tests.test_web_browser import WAIT_MS, browser, start_from_overview, sync_api
from tests.web_server import create_token, serving
from tests.webhook_receiver import receiving

__all__ = ["browser", "setup"]  # fixtures, used by name
pytestmark = pytest.mark.slow


def test_logs_followed_live_across_celery_partitions(
    browser: sync_api.Browser, setup: tuple[str, Workers]
) -> None:
    """The page follows the log while the partitions run on a worker, then says it ended."""
    url, workers = setup
    workers.start(delay=0.03)
    with serving(url, jobs="tests.jobs.celery_jobs") as server:
        token = create_token(url, "log-follower", "operate")
        started = server.client(token).post(
            "/api/jobs/celery_copy/start",
            json={"parameters": {"db": {"value": url, "type": "str"}}},
        )
        assert started.status_code == 202, started.text
        execution_id = started.json()["id"]
        context = browser.new_context(base_url=server.base)
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        page.goto("/login")
        page.fill("input[name=token]", token)
        page.click("form.login button")
        page.goto(f"/executions/{execution_id}")
        state = page.locator("#log-state")
        sync_api.expect(state).to_contain_text("following")
        lines = page.locator("#log-lines")
        # A partition's line, logged in the worker's process, arrives while the job runs.
        sync_api.expect(lines).to_contain_text("[copy:000", timeout=WAIT_MS)
        assert "following" in state.inner_text()
        sync_api.expect(state).to_contain_text("ended", timeout=60_000)
        text = lines.inner_text()
        assert "job celery_copy started" in text and "job celery_copy COMPLETED" in text
        page.select_option("#log-level", "WARNING")
        sync_api.expect(lines).not_to_contain_text("job celery_copy started")
        download = page.get_attribute("#log-download", "href")
        assert download == f"/api/executions/{execution_id}/logs.txt?level=WARNING"
        context.close()


SCHEDULES = """
[[schedule]]
id = "nightly"
job = "web_count"
cron = "0 2 * * *"
parameters = ["count:int=3"]
"""


def test_a_schedule_paused_triggered_now_and_resumed(
    browser: sync_api.Browser, tmp_path: Path
) -> None:
    """From the schedules page: pause shows paused, trigger now opens the run, resume clears it."""
    schedules = tmp_path / "schedules.toml"
    schedules.write_text(SCHEDULES, encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'repository.db'}"
    with serving(url, schedules=schedules) as server:
        token = create_token(url, "schedule-operator", "operate")
        context = browser.new_context(base_url=server.base)
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        page.goto("/login")
        page.fill("input[name=token]", token)
        page.click("form.login button")
        page.goto("/schedules")
        row = page.locator("tr[data-schedule='nightly']")
        row.locator("form.schedule-pause button").click()
        sync_api.expect(row.locator(".paused")).to_have_text("paused")
        row.locator("form.schedule-trigger button").click()
        page.wait_for_url(re.compile(r"/executions/\d+$"))
        sync_api.expect(page.locator("#status")).to_have_text("COMPLETED")
        page.goto("/schedules")
        row.locator("form.schedule-resume button").click()
        sync_api.expect(row.locator(".paused")).to_have_count(0)
        sync_api.expect(row.locator("form.schedule-pause button")).to_be_visible()
        page.goto("/audit")
        sync_api.expect(page.locator("table.audit")).to_contain_text("schedule-trigger")
        context.close()


def test_an_alert_reaches_a_local_webhook(browser: sync_api.Browser, tmp_path: Path) -> None:
    """A job started and failing from the page: its alert arrives once at the local webhook."""
    url = f"sqlite:///{tmp_path / 'repository.db'}"
    with receiving() as hook, serving(url, serve_options=("--alert-webhook", hook.url)) as server:
        token = create_token(url, "alert-operator", "operate")
        context = browser.new_context(base_url=server.base)
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        page.goto("/login")
        page.fill("input[name=token]", token)
        page.click("form.login button")
        start_from_overview(page, "web_failing")
        sync_api.expect(page.locator("#status")).to_have_text("FAILED")
        execution_id = int(page.url.rsplit("/", 1)[1])
        (alert,) = eventually(hook.received, timeout=30, message="no alert arrived")
        assert (alert["kind"], alert["job_execution_id"]) == ("failed", execution_id)
        assert "the task exploded" in alert["exit_message"]
        context.close()
