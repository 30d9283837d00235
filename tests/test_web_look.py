"""How the dashboard looks and behaves in real Chromium, at 1366x900 and on a phone (390x844),
in light and dark: no page scrolls sideways, axe-core finds no WCAG 2.1 AA violation, actions
are reachable by keyboard, live updates move nothing, the live view says when it loses the
session or the server, names are isolated, times are the viewer's, charts stay readable.

Saves the README's desktop-dark and phone screenshots in docs/screenshots/, and the audit page's
and an execution's logs'.
"""

from __future__ import annotations

import contextlib
import re
import signal
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from batchline.testing import eventually
from tests.backends import import_extra
from tests.test_web_browser import ARGS, CHROMIUM, SHOTS, WAIT_MS
from tests.web_server import Server, batchline, create_token, requires_web, serving

requires_web()
sync_api = import_extra("playwright.sync_api", "test")
axe_playwright = import_extra("axe_playwright_python.sync_playwright", "test")

pytestmark = pytest.mark.slow
DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}
WCAG_AA = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}}
RLO = "\u202e"


@pytest.fixture(scope="module")
def gate(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("gate") / "hold"


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("look")


@pytest.fixture(scope="module")
def server(folder: Path, gate: Path) -> Iterator[Server]:
    schedules = folder / "schedules.toml"
    schedules.write_text(
        '[[schedule]]\nid = "nightly-count"\njob = "web_count"\ncron = "0 2 * * *"\n'
        'parameters = ["count:int=4"]\n',
        encoding="utf-8",
    )
    with serving(
        f"sqlite:///{folder / 'repository.db'}", delay=0.15, gate=gate, schedules=schedules
    ) as running:
        yield running


@pytest.fixture(scope="module")
def token(server: Server) -> str:
    return create_token(server.url, "look", "operate")


@pytest.fixture(scope="module")
def runs(server: Server, token: str) -> dict[str, int]:
    """Finished executions of every kind the pages show: skips, a failure, partitions, a flow
    through a decider; the failure's instance, and a backfill that has ended."""
    found = {}
    with server.client(token) as client:
        for job, parameters in [
            ("web_skips", {}),
            ("web_failing", {}),
            ("web_partitioned_count", {}),
            ("web_count", {"count": {"value": "6", "type": "int"}, "note": {"value": "plain"}}),
            ("web_routed", {"route": {"value": "GO"}}),
        ]:
            started = client.post(f"/api/jobs/{job}/start", json={"parameters": parameters})
            assert started.status_code == 202, started.text
            found[job] = started.json()["id"]
        for job, id_ in found.items():

            def ended(id_: int = id_) -> bool:
                got = client.get(f"/api/executions/{id_}").json()
                return got["status"] in ("COMPLETED", "FAILED")

            eventually(ended, timeout=60, message=f"{job} never ended")
        failed = client.get(f"/api/executions/{found['web_failing']}").json()
        found["instance"] = failed["instance_id"]
        backfill = client.post(
            "/api/backfills",
            json={
                "job": "web_count",
                "range": "day:date=2026-11-01..2026-11-02",
                "concurrency": 2,
                "parameters": {"count": {"value": "4", "type": "int"}},
            },
        )
        assert backfill.status_code == 202, backfill.text
        found["backfill"] = backfill.json()["id"]

        def backfill_ended() -> bool:
            got = client.get(f"/api/backfills/{found['backfill']}").json()
            return got["status"] not in ("RUNNING", "STOPPING", "PENDING")

        eventually(backfill_ended, timeout=60, message="the backfill never ended")
    # An action from the command line for the audit page: refused, the run has ended.
    assert batchline(server.url, "stop", str(found["web_count"])).returncode != 0
    return found


@pytest.fixture(scope="module")
def browser() -> Iterator[sync_api.Browser]:
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield launched
        launched.close()


def open_page(
    browser: sync_api.Browser,
    server: Server,
    token: str | None,
    *,
    viewport: dict[str, int] = DESKTOP,
    scheme: str = "light",
    zone: str = "UTC",
) -> sync_api.Page:
    context = browser.new_context(
        base_url=server.base, viewport=viewport, color_scheme=scheme, timezone_id=zone
    )
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    if token is not None:
        page.goto("/login")
        page.fill("input[name=token]", token)
        page.click("form.login button")
        page.wait_for_url(f"{server.base}/")
    return page


@pytest.fixture
def page(browser: sync_api.Browser, server: Server, token: str) -> Iterator[sync_api.Page]:
    page = open_page(browser, server, token)
    yield page
    page.context.close()


def start(page: sync_api.Page, job: str, parameters: str = "") -> int:
    page.goto("/")
    row = page.locator(f"tr[data-job='{job}']")
    row.locator("textarea[name=parameters]").fill(parameters)
    row.locator("button", has_text="Start").click()
    page.wait_for_url("**/executions/*")
    return int(page.url.rsplit("/", 1)[1])


def stop_through_api(server: Server, token: str, execution_id: int) -> None:
    with server.client(token) as client:
        client.post(f"/api/executions/{execution_id}/stop")


def pages_to_check(runs: dict[str, int]) -> dict[str, str]:
    return {
        "overview": "/",
        "executions": "/executions",
        "job": "/jobs/web_count",
        "execution": f"/executions/{runs['web_skips']}",
        "execution-failed": f"/executions/{runs['web_failing']}",
        "execution-partitions": f"/executions/{runs['web_partitioned_count']}",
        "execution-logs": f"/executions/{runs['web_count']}",
        "execution-flow": f"/executions/{runs['web_routed']}",
        "job-flow": "/jobs/web_routed",
        "instance": f"/instances/{runs['instance']}",
        "backfill": f"/backfills/{runs['backfill']}",
        "audit": "/audit",
        "schedules": "/schedules",
        "bulk": "/executions",  # then its result: stop two executions (both refused, ended)
        "error": "/jobs/no_such_job",
    }


def show_bulk_result(page: sync_api.Page) -> None:
    """From the executions list, stop the first two: the result page says why each refused."""
    boxes = page.locator("input[name=ids]")
    boxes.nth(0).check()
    boxes.nth(1).check()
    page.locator("p.bulk-actions button[value=stop]").click()
    page.wait_for_url("**/executions/bulk")
    sync_api.expect(page.locator("table.bulk-result tr.refused").first).to_be_visible()


def test_phone_charts_keep_readable_text(
    browser: sync_api.Browser, server: Server, token: str, runs: dict[str, int]
) -> None:
    """At 390 px the timeline's and throughput's labels are drawn at least 9 px high; the
    chart scrolls inside its figure, which the keyboard can reach."""
    page = open_page(browser, server, token, viewport=PHONE)
    try:
        page.goto(f"/executions/{runs['web_partitioned_count']}")
        for selector in ("svg#timeline text.label", "svg#throughput text.tick"):
            height = page.locator(selector).first.evaluate("t => t.getBoundingClientRect().height")
            assert height >= 9, (selector, height)
        figure = page.locator("figure.chart").first
        assert figure.evaluate("f => f.scrollWidth > f.clientWidth")
        assert figure.get_attribute("tabindex") == "0"
    finally:
        page.context.close()


def test_skip_link_and_visible_focus(page: sync_api.Page) -> None:
    """The first Tab reaches a visible "Skip to content" link, which moves focus to the main
    content; focused controls draw an outline."""
    page.goto("/")
    page.keyboard.press("Tab")
    skip = page.locator("a.skip")
    sync_api.expect(skip).to_be_focused()
    box = skip.bounding_box()
    assert box is not None and box["x"] >= 0 and box["y"] >= 0
    assert skip.evaluate("a => getComputedStyle(a).outlineStyle") != "none"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    page.keyboard.press("Tab")
    focused = page.evaluate_handle("document.activeElement")
    assert focused.evaluate("e => e.closest('main') !== null")
    assert focused.evaluate("e => getComputedStyle(e).outlineStyle") != "none"


def test_focus_stays_on_an_action_across_polls(
    page: sync_api.Page, server: Server, token: str, gate: Path
) -> None:
    """A keyboard user on the Stop button keeps it focused while the live part reloads."""
    execution = start(page, "web_count", "count:int=400")
    try:
        page.locator("#stop").focus()
        first = page.locator("#live").element_handle()
        page.wait_for_function("e => !e.isConnected", arg=first)  # a poll replaced it
        assert page.evaluate("document.activeElement.id") == "stop"
        page.keyboard.press("Enter")
        sync_api.expect(page.locator("#status")).to_have_text(re.compile("STOPP"))
    finally:
        stop_through_api(server, token, execution)


def test_a_phone_reader_keeps_their_place_across_polls(
    browser: sync_api.Browser, server: Server, token: str
) -> None:
    """On a phone, the steps table scrolled sideways stays scrolled when the live part
    reloads (it is not thrown back to its first column every second)."""
    page = open_page(browser, server, token, viewport=PHONE)
    execution = start(page, "web_count", "count:int=400")
    try:
        table = page.locator("#live table.steps")
        sync_api.expect(table).to_be_visible()
        table.evaluate("t => { t.scrollLeft = 200; }")
        first = page.locator("#live").element_handle()
        page.wait_for_function("e => !e.isConnected", arg=first)
        assert page.locator("#live table.steps").evaluate("t => t.scrollLeft") == 200
    finally:
        stop_through_api(server, token, execution)
        page.context.close()


def test_live_updates_shift_nothing(page: sync_api.Page) -> None:
    """While a run goes on and ends, the live part's reloads move no element on the page (the
    Layout Instability API counts no shift, the parameters below stay put)."""
    start(page, "web_count", "count:int=24")
    sync_api.expect(page.locator("svg#timeline")).to_be_visible()
    page.evaluate(
        """() => {
          window.shifts = [];
          new PerformanceObserver(list => {
            for (const entry of list.getEntries()) {
              if (!entry.hadRecentInput) window.shifts.push(entry.value);
            }
          }).observe({ type: "layout-shift" });
        }"""
    )
    below = page.locator("h2", has_text="Parameters")
    before = below.bounding_box()
    sync_api.expect(page.locator("#status")).to_have_text("COMPLETED")
    page.wait_for_timeout(1500)  # the observer reports after the frame
    assert page.evaluate("window.shifts") == []
    assert below.bounding_box() == before


def test_a_lost_session_is_said_and_polling_stops(
    page: sync_api.Page, server: Server, token: str
) -> None:
    """Logged out elsewhere: the live view says the session ended (politely, with a link to
    log in) and stops asking, instead of polling the login redirect every second."""
    execution = start(page, "web_count", "count:int=400")
    try:
        sync_api.expect(page.locator("svg#timeline")).to_be_visible()
        page.context.clear_cookies()
        message = page.locator("#live-status")
        sync_api.expect(message).to_contain_text("session has ended")
        assert message.get_attribute("aria-live") == "polite"
        sync_api.expect(message.locator("a[href='/login']")).to_be_visible()
        asked: list[str] = []
        page.on("request", lambda request: asked.append(request.url))
        page.wait_for_timeout(3000)
        assert [url for url in asked if url.endswith("/live")] == []
    finally:
        stop_through_api(server, token, execution)


def test_a_server_gone_is_said_with_back_off(browser: sync_api.Browser, tmp_path: Path) -> None:
    """The server goes away mid-run: the live view says it lost contact and waits longer
    before each new try (2 s, then 4 s), instead of freezing without a word; when a server is
    back at the address, the live view says so and follows again."""
    url = f"sqlite:///{tmp_path / 'gone.db'}"
    with serving(url, delay=0.15) as own:
        port = int(own.base.rsplit(":", 1)[1])
        page = open_page(browser, own, create_token(own.url, "gone", "operate"))
        start(page, "web_count", "count:int=400")
        sync_api.expect(page.locator("svg#timeline")).to_be_visible()
        own.process.send_signal(signal.SIGKILL)
        own.process.wait()
    try:
        message = page.locator("#live-status")
        sync_api.expect(message).to_contain_text("Lost contact with the server")
        sync_api.expect(message).to_contain_text("trying again in 2 s")
        sync_api.expect(message).to_contain_text("trying again in 4 s")
        with serving(url, port=port):
            # Back in contact (a session kept in the repository still holds), or told the
            # session is gone (one kept by the dead process): not silent either way.
            sync_api.expect(message).to_contain_text(
                re.compile("Back in contact|session has ended"), timeout=60_000
            )
    finally:
        page.context.close()


def test_a_server_error_is_said_backed_off_and_recovered(
    browser: sync_api.Browser, tmp_path: Path
) -> None:
    """The server answers 5xx (its repository lost a table the live part reads): the live view
    says so and backs off; once the table is back it says so and follows again."""
    database = tmp_path / "broken.db"
    with serving(f"sqlite:///{database}", delay=0.15) as own:
        page = open_page(browser, own, create_token(own.url, "broken", "operate"))
        try:
            start(page, "web_count", "count:int=400")
            sync_api.expect(page.locator("svg#timeline")).to_be_visible()
            message = page.locator("#live-status")
            with contextlib.closing(sqlite3.connect(database, timeout=30)) as db:
                db.execute("ALTER TABLE batch_step_sample RENAME TO batch_step_sample_away")
                db.commit()
                try:
                    sync_api.expect(message).to_contain_text(re.compile(r"server answered 5\d\d"))
                    sync_api.expect(message).to_contain_text("trying again in 4 s")
                finally:
                    db.execute("ALTER TABLE batch_step_sample_away RENAME TO batch_step_sample")
                    db.commit()
            sync_api.expect(message).to_contain_text("Back in contact", timeout=60_000)
        finally:
            page.context.close()


def test_names_and_values_are_isolated(page: sync_api.Page, runs: dict[str, int]) -> None:
    """A parameter value with a right-to-left override stays inside its own <bdi>: the
    parameters after it read in order, and the execution page isolates it too."""
    execution = start(page, "web_count", f"count:int=2\nlabel={RLO}gnp.exe\nzone=after")
    sync_api.expect(page.locator("#status")).to_have_text("COMPLETED")
    values = page.locator("table.params td bdi")
    assert f"{RLO}gnp.exe" in values.all_inner_texts()
    page.goto("/executions?job=web_count")
    row = page.locator("tr", has=page.locator(f"a[href='/executions/{execution}']"))
    isolated = row.locator("td.params > bdi")
    sync_api.expect(isolated).to_have_count(3)
    assert isolated.nth(2).inner_text() == "zone=after"
    job_names = page.locator("table.executions td bdi.name")
    assert job_names.count() >= 1


def test_times_in_the_viewers_zone_with_utc_a_click_away(
    browser: sync_api.Browser, server: Server, token: str, runs: dict[str, int]
) -> None:
    """In Tokyo a run's start shows 9 hours after its UTC time, labelled GMT+9, the UTC time in
    its title; the header's button shows UTC, and the choice holds on the next page."""
    page = open_page(browser, server, token, zone="Asia/Tokyo")
    try:
        page.goto(f"/executions/{runs['web_count']}")
        started = page.locator("#live time").first
        utc = started.get_attribute("datetime") or ""
        assert utc.endswith("Z")
        sync_api.expect(started).to_have_text(
            re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d GMT\+9$")
        )
        assert started.get_attribute("title") == utc[:-1].replace("T", " ") + " UTC"
        shown_hour = int(started.inner_text()[11:13])
        assert shown_hour == (int(utc[11:13]) + 9) % 24
        page.click("#times")
        sync_api.expect(started).to_have_text(utc[:-1].replace("T", " ") + " UTC")
        page.goto("/schedules")
        next_fire = page.locator("tr[data-schedule='nightly-count'] td.next time")
        sync_api.expect(next_fire).to_have_text(re.compile(r"02:00:00 UTC$"))
        page.click("#times")
        sync_api.expect(next_fire).to_have_text(re.compile(r"11:00:00 GMT\+9$"))
    finally:
        page.context.close()


def test_failure_shows_its_traceback_once_below_the_actions(
    page: sync_api.Page, runs: dict[str, int]
) -> None:
    """A failed run: its traceback appears once (the logs at the end of the page aside, which
    keep the failing step's ERROR line), and Restart/Abandon sit above it."""
    page.goto(f"/executions/{runs['web_failing']}")
    sync_api.expect(page.locator("#log-lines")).to_contain_text("the task exploded")
    blocks = page.locator("main pre:not(#log-lines)").all_inner_texts()
    assert len([b for b in blocks if "the task exploded" in b]) == 1
    actions = page.locator(".actions").bounding_box()
    message = page.locator("#exit-message").bounding_box()
    assert actions is not None and message is not None
    assert actions["y"] + actions["height"] <= message["y"]


# Last, so that the pages (and their screenshots) show the runs of the tests above.
SHOT_PAGES = ("overview", "execution-partitions", "job", "executions")
# New pages of the console, shot in light on a desktop for the README.
NEW_SHOTS = ("audit", "execution-logs")


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_every_page_fits_and_passes_axe(
    browser: sync_api.Browser,
    server: Server,
    token: str,
    runs: dict[str, int],
    viewport: dict[str, int],
    scheme: str,
) -> None:
    """On each page: nothing wider than the window (tables and charts scroll in their own box,
    still tables to assistive technology), no WCAG 2.1 AA violation found by axe-core, and the
    scheme's own background."""
    axe = axe_playwright.Axe()
    page = open_page(browser, server, token, viewport=viewport, scheme=scheme)
    logged_out = open_page(browser, server, None, viewport=viewport, scheme=scheme)
    try:
        logged_out.goto("/login")
        checked = [("login", logged_out)]
        checked += [(name, page) for name in pages_to_check(runs)]
        problems = []
        for name, tab in checked:
            if tab is page:
                tab.goto(pages_to_check(runs)[name])
            if name == "bulk":
                show_bulk_result(tab)
            if name == "execution-logs":  # logs.js has fetched the lines
                sync_api.expect(tab.locator("#log-state")).not_to_be_empty()
            widths = tab.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
            if widths[0] > widths[1]:
                problems.append(f"{name}: {widths[0]} px wide in a {widths[1]} px window")
            found = axe.run(tab, options=WCAG_AA)
            for violation in found.response["violations"]:
                targets = [n["target"] for n in violation["nodes"]][:3]
                problems.append(f"{name}: {violation['id']} ({violation['help']}) at {targets}")
            tables = tab.locator("table").count()
            if tab.get_by_role("table").count() != tables:  # a scroll box is still a table
                problems.append(f"{name}: a table lost its role")
            background = tab.evaluate("getComputedStyle(document.body).backgroundColor")
            if luminance(background) > 0.5 if scheme == "dark" else luminance(background) < 0.5:
                problems.append(f"{name}: background {background} in {scheme} mode")
            variant = ("phone" if viewport is PHONE else "desktop", scheme)
            if name in SHOT_PAGES and variant != ("desktop", "light"):
                suffix = "-".join(p for p in variant if p not in ("desktop", "light"))
                SHOTS.mkdir(parents=True, exist_ok=True)
                tab.screenshot(path=str(SHOTS / f"{name}-{suffix}.png"), full_page=True)
            if name in NEW_SHOTS and variant == ("desktop", "light"):
                SHOTS.mkdir(parents=True, exist_ok=True)
                tab.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
        assert problems == []
    finally:
        page.context.close()
        logged_out.context.close()


def luminance(css: str) -> float:
    """Relative luminance of an ``rgb(r, g, b)`` colour, 0 (black) to 1 (white)."""
    r, g, b = (int(n) / 255 for n in re.findall(r"\d+", css)[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b
