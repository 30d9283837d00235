"""The operator's console in real Chromium: an execution's logs followed live while Celery
workers run its partitions."""

from __future__ import annotations

import pytest

from tests.test_celery import Workers, setup
from tests.test_web_browser import WAIT_MS, browser, sync_api
from tests.web_server import create_token, serving

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
