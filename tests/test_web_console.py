"""The console's lists, bulk actions, instance pages and job names with a slash, over real HTTP
against a real `batchline serve` process."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from batchline.testing import eventually
from tests.web_server import Server, create_token, requires_web, serving

requires_web()
pytestmark = pytest.mark.slow

RUNNING = ("STARTING", "STARTED", "STOPPING")
_NONCE = itertools.count(1)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    url = f"sqlite:///{tmp_path_factory.mktemp('console') / 'repository.db'}"
    with serving(url, delay=0.05) as running:
        yield running


@pytest.fixture(scope="module")
def operator(server: Server) -> Iterator[httpx.Client]:
    with server.client(create_token(server.url, "console-operator", "operate")) as client:
        yield client


def start(client: httpx.Client, job: str, **params: tuple[str, str]) -> dict[str, Any]:
    """Start a new instance (a fresh ``nonce`` unless the caller names one)."""
    params.setdefault("nonce", (str(next(_NONCE)), "int"))
    body = {"parameters": {k: {"value": v, "type": t} for k, (v, t) in params.items()}}
    response = client.post(f"/api/jobs/{job}/start", json=body)
    assert response.status_code == 202, response.text
    return dict(response.json())


def ended(client: httpx.Client, execution_id: int) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        found = client.get(f"/api/executions/{execution_id}").json()
        return None if found["status"] in RUNNING else found

    return eventually(done, message=f"execution {execution_id} never ended")


def started(client: httpx.Client, execution_id: int) -> None:
    eventually(
        lambda: client.get(f"/api/executions/{execution_id}").json()["status"] == "STARTED",
        message=f"execution {execution_id} never started",
    )


class TestSlashInJobNames:
    def test_job_with_a_slash_has_a_page_and_starts(self, operator: httpx.Client) -> None:
        """reports/daily starts from the API and from its page's form, and its page shows it."""
        first = start(operator, "reports/daily", nonce=("0", "int"))
        assert first["job_name"] == "reports/daily"
        assert ended(operator, first["id"])["status"] == "COMPLETED"
        form = operator.post("/jobs/reports/daily/start", data={"parameters": "nonce:int=-1"})
        assert form.status_code == 303, form.text
        page = operator.get("/jobs/reports/daily")
        assert page.status_code == 200 and '<h1><bdi class="name">reports/daily</bdi>' in page.text
        assert 'href="/jobs/reports/daily"' in operator.get("/").text
        instances = operator.get("/api/jobs/reports/daily/instances").json()
        assert instances["total"] == 2


class TestFinding:
    def test_statuses_running_prefix_message_and_totals(self, operator: httpx.Client) -> None:
        """Several statuses, running now, a job prefix and exit-message text each narrow the
        list; totals come with it; "with skips" marks an execution that skipped items."""
        failed = start(operator, "web_failing")
        skips = start(operator, "web_skips")
        slow = start(operator, "web_count", count=("100000", "int"))
        ended(operator, failed["id"])
        ended(operator, skips["id"])
        started(operator, slow["id"])
        try:
            listed = operator.get(
                "/api/executions", params={"status": ["FAILED", "COMPLETED"], "limit": 1000}
            ).json()
            assert {e["status"] for e in listed["items"]} <= {"FAILED", "COMPLETED"}
            assert failed["id"] in [e["id"] for e in listed["items"]]
            assert listed["total"] == len(listed["items"]) and listed["total_exact"]
            running = operator.get("/api/executions", params={"running": "true"}).json()
            assert slow["id"] in [e["id"] for e in running["items"]]
            assert all(e["status"] in RUNNING for e in running["items"])
            prefixed = operator.get("/api/executions", params={"job_prefix": "web_f"}).json()
            assert {e["job_name"] for e in prefixed["items"]} == {"web_failing"}
            message = failed_message(operator, failed["id"])
            found = operator.get("/api/executions", params={"message": message.upper()}).json()
            assert [e["id"] for e in found["items"]][:1] == [failed["id"]]
            skipped = operator.get("/api/executions", params={"job": "web_skips"}).json()
            assert skipped["items"][0]["with_skips"] is True
            page = operator.get("/executions", params={"job": "web_skips"}).text
            assert "with skips" in page and "matching" in page
            assert "with skips" in operator.get("/jobs/web_skips").text
        finally:
            operator.post(f"/api/executions/{slow['id']}/stop")
            ended(operator, slow["id"])

    def test_previous_and_next_pages(self, operator: httpx.Client) -> None:
        """Older then newer: the newer page is the first page again, on the API and the page."""
        for _ in range(3):
            ended(operator, start(operator, "reports/daily")["id"])
        first = operator.get("/api/executions", params={"limit": 2}).json()
        older = operator.get(
            "/api/executions", params={"limit": 2, "after": first["next_after"]}
        ).json()
        newer = operator.get(
            "/api/executions", params={"limit": 2, "before": older["previous_before"]}
        ).json()
        assert [e["id"] for e in newer["items"]] == [e["id"] for e in first["items"]]
        html = operator.get("/executions", params={"size": 2, "after": first["next_after"]}).text
        assert re.search(r'class="previous" href="/executions\?[^"]*before=', html)
        assert re.search(r'class="next" href="/executions\?[^"]*after=', html)


def failed_message(client: httpx.Client, execution_id: int) -> str:
    text = str(client.get(f"/api/executions/{execution_id}").json()["exit_message"])
    assert text, "a failed execution says why"
    return text.splitlines()[0][:30]


class TestBulk:
    def test_api_does_each_on_its_own(self, operator: httpx.Client) -> None:
        """A bulk stop stops the running ones and refuses the ended one, with its reason."""
        runs = [
            start(operator, "web_count", count=("100000", "int"), n=(str(n), "int"))
            for n in range(2)
        ]
        done = start(operator, "reports/daily")
        for run in runs:
            started(operator, run["id"])
        ended(operator, done["id"])
        ids = [runs[0]["id"], done["id"], runs[1]["id"]]
        result = operator.post(
            "/api/executions/bulk", json={"action": "stop", "execution_ids": ids}
        ).json()["items"]
        assert [(o["execution_id"], o["done"]) for o in result] == [
            (ids[0], True),
            (ids[1], False),
            (ids[2], True),
        ]
        assert "not running" in result[1]["reason"] and result[1]["status"] == 409
        for run in runs:
            assert ended(operator, run["id"])["status"] == "STOPPED"
        restarted = operator.post(
            "/api/executions/bulk", json={"action": "restart", "execution_ids": ids[:1]}
        ).json()["items"]
        assert restarted[0]["done"] and restarted[0]["new_execution_id"] > ids[2]
        operator.post(f"/api/executions/{restarted[0]['new_execution_id']}/stop")
        ended(operator, restarted[0]["new_execution_id"])

    def test_bulk_needs_operate_and_a_known_action(self, server: Server) -> None:
        """A read token may not act; an unknown action is a 422, not a partial run."""
        with server.client(create_token(server.url, "console-reader", "read")) as reader:
            body = {"action": "stop", "execution_ids": [1]}
            assert reader.post("/api/executions/bulk", json=body).status_code == 403
        with server.client(create_token(server.url, "console-op2", "operate")) as op:
            body = {"action": "delete", "execution_ids": [1]}
            assert op.post("/api/executions/bulk", json=body).status_code == 422

    def test_ids_beyond_64_bits_are_no_execution(self, operator: httpx.Client) -> None:
        """An id the database cannot hold (schemathesis sent -5.4e25) is a 422 from the API and
        a refused line on the page's form, never a 500."""
        body = {"action": "abandon", "execution_ids": [2**80, 7]}
        assert operator.post("/api/executions/bulk", json=body).status_code == 422
        huge = -(2**85)
        response = operator.post(
            "/executions/bulk", data={"action": "abandon", "ids": [str(huge), "999999"]}
        )
        assert response.status_code == 200, response.text
        rows = dict(re.findall(r'<tr data-id="(-?\d+)" class="(done|refused)"', response.text))
        assert rows == {str(huge): "refused", "999999": "refused"}

    def test_page_form_shows_each_result(self, operator: httpx.Client) -> None:
        """The list's form abandons a failed execution and refuses a completed one, each
        with its own line."""
        failed = start(operator, "web_failing")
        done = start(operator, "reports/daily")
        ended(operator, failed["id"])
        ended(operator, done["id"])
        response = operator.post(
            "/executions/bulk", data={"action": "abandon", "ids": [failed["id"], done["id"]]}
        )
        assert response.status_code == 200
        rows = dict(re.findall(r'<tr data-id="(\d+)" class="(done|refused)"', response.text))
        assert rows == {str(failed["id"]): "done", str(done["id"]): "refused"}
        assert "COMPLETED" in response.text  # the refusal says why


class TestInstances:
    def test_instance_page_and_attempt_links(self, operator: httpx.Client) -> None:
        """A restarted instance lists both attempts; each execution links the other."""
        first = start(operator, "web_failing", day=("7", "int"))
        ended(operator, first["id"])
        second = operator.post(f"/api/executions/{first['id']}/restart").json()
        ended(operator, second["id"])
        page = operator.get(f"/instances/{first['instance_id']}").text
        assert f"#{first['id']}" in page and f"#{second['id']}" in page
        older = operator.get(f"/executions/{first['id']}").text
        assert f'class="next-attempt" href="/executions/{second["id"]}"' in older
        newer = operator.get(f"/executions/{second['id']}").text
        assert f'class="previous-attempt" href="/executions/{first["id"]}"' in newer
        assert "attempt 2 of 2" in newer
        assert operator.get("/instances/999999").status_code == 404
