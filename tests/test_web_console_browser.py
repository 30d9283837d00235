"""The console in real Chromium against a real `batchline serve`: a bulk stop from the
executions list, and a job's flow drawn with the path an execution took."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from batchline.testing import eventually
from tests.backends import import_extra
from tests.test_web_browser import ARGS, CHROMIUM, SHOTS, WAIT_MS
from tests.web_server import Server, create_token, requires_web, serving

requires_web()
sync_api = import_extra("playwright.sync_api", "test")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("console-browser")
    with serving(f"sqlite:///{folder / 'repository.db'}", delay=0.1) as running:
        yield running


@pytest.fixture(scope="module")
def token(server: Server) -> str:
    return create_token(server.url, "console-browser", "operate")


@pytest.fixture
def page(server: Server, token: str) -> Iterator[sync_api.Page]:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = browser.new_context(base_url=server.base, viewport={"width": 1366, "height": 900})
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        page.goto("/")
        page.fill("input[name=token]", token)
        page.click("form.login button")
        page.wait_for_url(f"{server.base}/")
        yield page
        browser.close()


def _start(server: Server, token: str, job: str, parameters: dict[str, tuple[str, str]]) -> int:
    body = {"parameters": {k: {"value": v, "type": t} for k, (v, t) in parameters.items()}}
    with server.client(token) as client:
        response = client.post(f"/api/jobs/{job}/start", json=body)
        assert response.status_code == 202, response.text
        return int(response.json()["id"])


def _status(server: Server, token: str, execution_id: int) -> str:
    with server.client(token) as client:
        return str(client.get(f"/api/executions/{execution_id}").json()["status"])


def test_bulk_stop_from_the_list(server: Server, token: str, page: sync_api.Page) -> None:
    """Two running executions selected in the running-now list and stopped together; an ended
    one selected with them is refused with its reason; both running ones end STOPPED."""
    ended = _start(server, token, "web_failing", {})
    running = [
        _start(server, token, "web_count", {"count": ("100000", "int"), "n": (str(n), "int")})
        for n in range(2)
    ]
    eventually(lambda: _status(server, token, ended) == "FAILED", message="never failed")
    for execution_id in running:
        eventually(
            lambda i=execution_id: _status(server, token, i) == "STARTED", message="never started"
        )
    page.goto("/executions?running=yes&status=FAILED")
    for execution_id in [*running, ended]:
        page.check(f"input[name=ids][value='{execution_id}']")
    page.screenshot(path=str(SHOTS / "executions-bulk.png"), full_page=True)
    page.click("button[name=action][value=stop]")
    page.wait_for_url("**/executions/bulk")
    for execution_id in running:
        sync_api.expect(page.locator(f"tr[data-id='{execution_id}']")).to_have_class("done")
    refused = page.locator(f"tr[data-id='{ended}']")
    sync_api.expect(refused).to_have_class("refused")
    sync_api.expect(refused).to_contain_text("not running")
    for execution_id in running:
        eventually(
            lambda i=execution_id: _status(server, token, i) == "STOPPED", message="never stopped"
        )


def test_flow_drawn_with_the_path_taken(server: Server, token: str, page: sync_api.Page) -> None:
    """The job page draws web_routed's flow; a held execution's page marks the path it took
    (check, route, the stop) and where a restart begins (load), with the decider's decision."""
    page.goto("/jobs/web_routed")
    flow = page.locator("svg#flow")
    sync_api.expect(flow).to_be_visible()
    sync_api.expect(flow.locator("g.node")).to_have_count(7)  # 4 nodes, end, stop and fail
    sync_api.expect(flow.locator("g.node.k-decider")).to_have_count(1)
    held = _start(server, token, "web_routed", {"route": ("HOLD", "str")})
    eventually(lambda: _status(server, token, held) == "STOPPED", message="never stopped")
    page.goto(f"/executions/{held}")
    taken = page.locator("svg#flow g.edge.taken")
    sync_api.expect(taken).to_have_count(2)
    pairs = [
        (taken.nth(i).get_attribute("data-from"), taken.nth(i).get_attribute("data-to"))
        for i in range(2)
    ]
    assert sorted(pairs) == [("check", "route"), ("route", "(stop)")]
    sync_api.expect(page.locator("svg#flow g.node.restart")).to_have_attribute("data-node", "load")
    sync_api.expect(page.locator("ol.route")).to_contain_text("route exited HOLD")
    sync_api.expect(page.locator("p.restart-at")).to_contain_text("load")
    box = flow_box(page)
    assert box["width"] > 200 and box["height"] > 200
    page.locator("details.flow").screenshot(path=str(SHOTS / "execution-flow.png"))
    title = page.locator("svg#flow g.node.restart title").text_content() or ""
    assert re.search(r"restart begins", title)


def flow_box(page: sync_api.Page) -> dict[str, float]:
    box = page.locator("svg#flow").bounding_box()
    assert box is not None
    return dict(box)
