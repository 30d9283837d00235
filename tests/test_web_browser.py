"""The dashboard in real Chromium (Playwright, Debian's /usr/bin/chromium), against a real
`batchline serve`: start, watch, stop, restart, abandon, markup shown as text, partitions'
progress and the run's pictures, schedules.

Without chromium these tests skip with the reason (fail under CI=true, whose runner installs
it). They save the README's screenshots in docs/screenshots/.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from batchline.testing import eventually
from tests.backends import import_extra, skip_or_fail
from tests.jobs.web_jobs import MARKUP
from tests.web_server import ROOT, Server, create_token, requires_web, serving

requires_web()
sync_api = import_extra("playwright.sync_api", "test")
CHROMIUM = os.environ.get("BATCHLINE_TEST_CHROMIUM", "/usr/bin/chromium")
if not shutil.which(CHROMIUM):
    skip_or_fail(f"no chromium at {CHROMIUM} (apt-get install chromium)")

pytestmark = pytest.mark.slow
SHOTS = ROOT / "docs" / "screenshots"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
WAIT_MS = 30_000
SCHEDULES = """
[[schedule]]
id = "nightly-count"
job = "web_count"
cron = "0 2 * * *"
parameters = ["count:int=40"]

[[schedule]]
id = "every-5s"
job = "web_partitioned"
cron = "*/5 * * * * *"
"""


@pytest.fixture(scope="module")
def gate(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("gate") / "hold"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, gate: Path) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("browser")
    schedules = folder / "schedules.toml"
    schedules.write_text(SCHEDULES, encoding="utf-8")
    with serving(
        f"sqlite:///{folder / 'repository.db'}", delay=0.15, gate=gate, schedules=schedules
    ) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[sync_api.Browser]:
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: sync_api.Browser, server: Server) -> Iterator[sync_api.Page]:
    context = browser.new_context(
        base_url=server.base, viewport={"width": 1366, "height": 900}, timezone_id="UTC"
    )  # times shown in the viewer's zone: UTC here, whatever the machine's
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    page.goto("/")
    assert page.url.endswith("/login")
    page.fill("input[name=token]", create_token(server.url, f"browser-{id(page)}", "operate"))
    page.click("form.login button")
    page.wait_for_url(f"{server.base}/")
    yield page
    context.close()


def start_from_overview(page: sync_api.Page, job: str, parameters: str = "") -> None:
    page.goto("/")
    row = page.locator(f"tr[data-job='{job}']")
    row.locator("textarea[name=parameters]").fill(parameters)
    row.locator("button", has_text="Start").click()
    page.wait_for_url("**/executions/*")


def status(page: sync_api.Page) -> sync_api.Locator:
    return page.locator("#status")


def test_start_watch_stop_restart(page: sync_api.Page, gate: Path) -> None:
    """Start from the page, watch the counters move without a reload, stop (STOPPING, then
    STOPPED), restart to COMPLETED."""
    start_from_overview(page, "web_count", "count:int=40")
    page.evaluate("window.loadedOnce = true")  # gone if the page reloads
    read = page.locator("tr[data-step='count'] td.read")
    sync_api.expect(read).not_to_have_text("0")
    first = int(read.inner_text())
    sync_api.expect(read).not_to_have_text(str(first))  # counters only grow
    assert page.evaluate("window.loadedOnce") is True
    gate.touch()  # hold the job inside its chunk, so STOPPING lasts until we let go
    try:
        page.click("#stop")
        sync_api.expect(status(page)).to_have_text("STOPPING")
        page.evaluate("window.loadedOnce = true")
    finally:
        gate.unlink()
    sync_api.expect(status(page)).to_have_text("STOPPED")
    assert page.evaluate("window.loadedOnce") is True  # the poll brought it, not a reload
    sync_api.expect(page.locator("#stop")).to_have_count(0)
    stopped_at = int(read.inner_text())
    assert 0 < stopped_at < 40
    page.click("#restart")
    sync_api.expect(status(page)).to_have_text("COMPLETED")
    assert int(page.locator("tr[data-step='count'] td.read").inner_text()) == 40 - stopped_at


def test_abandon_asks_first(page: sync_api.Page) -> None:
    start_from_overview(page, "web_failing")
    sync_api.expect(status(page)).to_have_text("FAILED")
    sync_api.expect(page.locator("#exit-message")).to_contain_text("the task exploded")
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.click("#abandon")
    sync_api.expect(status(page)).to_have_text("FAILED")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#abandon")
    sync_api.expect(status(page)).to_have_text("ABANDONED")
    sync_api.expect(page.locator(".actions button")).to_have_count(0)


def test_markup_is_text_and_screenshots(page: sync_api.Page) -> None:
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    start_from_overview(page, "web_skips")
    sync_api.expect(status(page)).to_have_text("COMPLETED")
    page.reload()
    first_item = page.locator("table.skipped td.item").first
    sync_api.expect(first_item).to_have_text(MARKUP)
    assert page.locator("table.skipped script").count() == 0 and dialogs == []
    sync_api.expect(page.locator("a.next", has_text="More skipped items")).to_be_visible()
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "execution.png"), full_page=True)
    page.goto("/")
    sync_api.expect(page.locator("tr[data-job='web_skips'] .status")).to_have_text("COMPLETED")
    page.screenshot(path=str(SHOTS / "overview.png"), full_page=True)
    page.goto("/executions?job=web_count")
    sync_api.expect(page.locator("table.executions tbody tr").first).to_be_visible()


def test_partitions_progress_live_with_timeline(page: sync_api.Page) -> None:
    """A running partitioned job: each partition's counters and progress bar move without a
    reload, the timeline draws one bar per step and partition, the throughput appears."""
    start_from_overview(page, "web_partitioned_count")
    page.evaluate("window.loadedOnce = true")  # gone if the page reloads
    parts = [f"spread:000{n}" for n in range(3)]
    read = page.locator(f"tr[data-step='{parts[0]}'] td.read")
    sync_api.expect(read).not_to_have_text("0")
    first = int(read.inner_text())
    bar = page.locator(f"tr[data-step='{parts[0]}'] td.progress progress")
    sync_api.expect(read).not_to_have_text(str(first))
    assert first < 12 and status(page).inner_text() == "STARTED"
    assert float(bar.get_attribute("value") or 0) > 0
    timeline = page.locator("svg#timeline")
    sync_api.expect(timeline.locator("rect")).to_have_count(4)
    labels = timeline.locator("g.row").evaluate_all("rows => rows.map(r => r.dataset.step)")
    assert labels == ["spread", *parts]
    assert timeline.locator("rect.running").count() >= 1
    sync_api.expect(status(page)).to_have_text("COMPLETED")
    assert page.evaluate("window.loadedOnce") is True  # the poll brought it all
    for name in parts:
        row = page.locator(f"tr[data-step='{name}']")
        sync_api.expect(row.locator("td.read")).to_have_text("12")
        assert row.locator("progress").get_attribute("value") == "1.0"
    sync_api.expect(timeline.locator("rect.running")).to_have_count(0)
    sync_api.expect(page.locator("svg#throughput polyline.total")).to_have_count(1)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "execution-partitions.png"), full_page=True)
    page.goto("/jobs/web_count")  # stopped, then restarted to completion by the first test
    sync_api.expect(page.locator("svg#durations rect")).not_to_have_count(0)
    page.screenshot(path=str(SHOTS / "job.png"), full_page=True)


def test_schedules_page_shows_next_fire_times(page: sync_api.Page) -> None:
    """The schedules the server runs, their cron, next fire time and last launches."""
    page.goto("/schedules")
    nightly = page.locator("tr[data-schedule='nightly-count']")
    sync_api.expect(nightly.locator("td.next time")).to_have_text(re.compile(r"02:00:00 UTC$"))
    often = page.locator("tr[data-schedule='every-5s']")
    sync_api.expect(often.locator("td.next time")).to_have_text(re.compile(r"\d\d:\d\d:\d[05] UTC"))

    def launched() -> bool:
        page.reload()
        return often.locator("td.recent a").count() > 0

    eventually(launched, timeout=30, message="the 5-second schedule never launched")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "schedules.png"), full_page=False)
