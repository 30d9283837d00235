"""A backfill in real Chromium (Playwright, Debian's chromium) against `batchline serve`:
started from the job's page, its grid watched live, stopped and resumed; the pages pass
axe-core's WCAG 2.1 AA rules at 1366x900 and 390x844 without horizontal scrolling. Saves
docs/screenshots/backfill.png for the README."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from tests.backends import import_extra, skip_or_fail
from tests.web_server import ROOT, Server, create_token, requires_web, serving

requires_web()
sync_api = import_extra("playwright.sync_api", "test")
axe_playwright = import_extra("axe_playwright_python.sync_playwright", "test")
CHROMIUM = os.environ.get("BATCHLINE_TEST_CHROMIUM", "/usr/bin/chromium")
if not shutil.which(CHROMIUM):
    skip_or_fail(f"no chromium at {CHROMIUM} (apt-get install chromium)")

pytestmark = pytest.mark.slow
SHOTS = ROOT / "docs" / "screenshots"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
WAIT_MS = 30_000
VIEWPORTS = [(1366, 900), (390, 844)]
WCAG_AA = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("backfill-browser")
    with serving(f"sqlite:///{folder / 'repository.db'}", delay=0.12) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[sync_api.Browser]:
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield launched
        launched.close()


sync_api.expect.set_options(timeout=WAIT_MS)


def logged_in(browser: sync_api.Browser, server: Server, size: tuple[int, int]) -> sync_api.Page:
    context = browser.new_context(
        base_url=server.base, viewport={"width": size[0], "height": size[1]}
    )
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    page.goto("/login")
    page.fill("input[name=token]", create_token(server.url, f"bf-{size[0]}", "operate"))
    page.click("form.login button")
    page.wait_for_url(f"{server.base}/")
    return page


def check_page(page: sync_api.Page, where: str) -> None:
    """No WCAG 2.1 AA violation, and nothing wider than the window. The job page's durations
    chart is left out: its bars are links inside an SVG of role img (axe: nested-interactive),
    the charts' own matter, not the backfills'."""
    context = {"exclude": [["#durations"]]}
    results = axe_playwright.Axe().run(page, context=context, options=WCAG_AA)
    violations = [
        (v["id"], [n["target"] for n in v["nodes"]][:3]) for v in results.response["violations"]
    ]
    assert violations == [], f"{where}: {violations}"
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"{where} scrolls sideways by {overflow}px"


def cell(page: sync_api.Page, value: str) -> sync_api.Locator:
    return page.locator(f"ul.grid .cell[data-value='{value}']")


def test_grid_live_stop_resume_accessible(browser: sync_api.Browser, server: Server) -> None:
    """Start from the job page; cells turn from pending to completed without a reload, each
    linking to its execution; stop, then resume to all completed; axe finds nothing."""
    page = logged_in(browser, server, VIEWPORTS[0])
    page.goto("/jobs/web_count")
    form = page.locator("form.backfill-form")
    form.locator("input[name=range]").fill("day:date=2026-11-01..2026-11-21")
    form.locator("textarea[name=parameters]").fill("count:int=6")
    form.locator("input[name=concurrency]").fill("3")
    form.locator("button").click()
    page.wait_for_url("**/backfills/*")
    backfill_path = page.url.removeprefix(server.base)
    page.evaluate("window.loadedOnce = true")  # gone if the page reloads
    status = page.locator("#status")
    sync_api.expect(status).to_have_text("RUNNING")
    sync_api.expect(cell(page, "2026-11-01")).to_contain_text("completed")
    sync_api.expect(page.locator("ul.grid .cell.s-STARTED").first).to_be_visible()
    assert page.evaluate("window.loadedOnce") is True  # the poll brought it
    assert cell(page, "2026-11-21").inner_text().split() == ["2026-11-21", "pending"]
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "backfill.png"), full_page=True)
    check_page(page, "the running backfill at 1366x900")
    page.click("#stop")
    sync_api.expect(status).to_have_text("STOPPED")
    sync_api.expect(page.locator("ul.grid .cell.s-PENDING").first).to_be_visible()
    page.click("#resume")
    sync_api.expect(status).to_have_text("COMPLETED", timeout=90_000)
    sync_api.expect(page.locator("ul.grid .cell.s-COMPLETED")).to_have_count(21)
    href = cell(page, "2026-11-01").get_attribute("href") or ""
    page.goto(href)
    sync_api.expect(page.locator("#status")).to_have_text("COMPLETED")
    for size in VIEWPORTS:
        view = page if size == VIEWPORTS[0] else logged_in(browser, server, size)
        for path in (backfill_path, "/jobs/web_count", "/"):
            view.goto(path)
            check_page(view, f"{path} at {size[0]}x{size[1]}")
    page.goto("/")
    sync_api.expect(page.locator("table.backfills")).to_have_count(0)  # none runs now
