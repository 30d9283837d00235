"""Backfills through the REST API of a real `batchline serve`: the operate scope to change,
the grid to read, stop and resume, one-line problems for bad input."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from batchline.testing import eventually
from tests.web_server import Server, create_token, requires_web, serving

requires_web()
pytestmark = pytest.mark.slow

DAYS = {"job": "web_count", "range": "day:date=2026-11-01..2026-11-06", "concurrency": 2}
SHORT = {"count": {"value": "4", "type": "int"}}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    url = f"sqlite:///{tmp_path_factory.mktemp('web') / 'repository.db'}"
    with serving(url, delay=0.05) as running:
        yield running


@pytest.fixture(scope="module")
def tokens(server: Server) -> dict[str, str]:
    return {
        "read": create_token(server.url, "bf-reader", "read"),
        "operate": create_token(server.url, "bf-operator", "operate"),
    }


def ended(client: httpx.Client, backfill_id: int) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        found = dict(client.get(f"/api/backfills/{backfill_id}").json())
        return None if found["status"] in ("RUNNING", "STOPPING", "PENDING") else found

    return eventually(done, timeout=60, message=f"backfill {backfill_id} never ended")


@pytest.mark.parametrize(
    ("path", "body"),
    [("/api/backfills", DAYS), ("/api/backfills/1/stop", None), ("/api/backfills/1/resume", None)],
)
def test_changing_a_backfill_needs_operate(
    server: Server, tokens: dict[str, str], path: str, body: Any
) -> None:
    """Start, stop and resume: 401 without a token, 403 with a read token."""
    assert server.client().post(path, json=body).status_code == 401
    refused = server.client(tokens["read"]).post(path, json=body)
    assert refused.status_code == 403 and "operate" in refused.json()["detail"]


def test_the_token_is_checked_before_the_body(server: Server, tokens: dict[str, str]) -> None:
    """A malformed body without a token is 401 (who are you), not 422 (what you sent); with a
    read token, 403; and the schema lists 401 and 403 for the backfill routes."""
    assert server.client().post("/api/backfills", json={"bad": 1}).status_code == 401
    assert server.client(tokens["read"]).post("/api/backfills", json={}).status_code == 403
    schema = server.client(tokens["read"]).get("/api/openapi.json").json()
    for path, method in [("/api/backfills", "post"), ("/api/backfills/{backfill_id}", "get")]:
        assert {"401", "403"} <= set(schema["paths"][path][method]["responses"]), path


def test_start_read_the_grid_and_resume(server: Server, tokens: dict[str, str]) -> None:
    """POST starts it in the server; GET shows each value's status and execution; a second
    backfill over the same days skips them all; the job's backfills are listed."""
    operator = server.client(tokens["operate"])
    started = operator.post("/api/backfills", json={**DAYS, "parameters": SHORT})
    assert started.status_code == 202, started.text
    body = started.json()
    assert body["total"] == 6 and body["started_by"] == "token bf-operator"
    final = ended(server.client(tokens["read"]), body["id"])
    assert final["status"] == "COMPLETED" and final["counts"] == {"COMPLETED": 6}
    assert [c["value"] for c in final["cells"]][:2] == ["2026-11-01", "2026-11-02"]
    ids = [c["execution_id"] for c in final["cells"]]
    assert len(set(ids)) == 6
    execution = operator.get(f"/api/executions/{ids[0]}").json()
    assert execution["parameters"]["day"]["value"] == "2026-11-01"
    again = operator.post("/api/backfills", json={**DAYS, "parameters": SHORT}).json()
    assert [c["execution_id"] for c in ended(operator, again["id"])["cells"]] == ids
    listed = operator.get("/api/backfills", params={"job": "web_count"}).json()
    assert [b["id"] for b in listed][:2] == [again["id"], body["id"]]
    resumed = operator.post(f"/api/backfills/{body['id']}/resume")
    assert resumed.status_code == 202, resumed.text
    assert ended(operator, body["id"])["counts"] == {"COMPLETED": 6}


def test_stop_then_resume(server: Server, tokens: dict[str, str]) -> None:
    """While it runs the overview and the job's page list it; a stop ends it STOPPED with
    values left; resume finishes every value."""
    operator = server.client(tokens["operate"])
    spec = {"job": "web_count", "range": "day:date=2026-12-01..2026-12-08", "concurrency": 2}
    body = operator.post("/api/backfills", json={**spec, "parameters": {}}).json()
    eventually(
        lambda: operator.get(f"/api/backfills/{body['id']}").json()["counts"].get("STARTED"),
        timeout=30,
    )
    running = operator.get("/api/backfills", params={"running": "true"}).json()
    assert [b["id"] for b in running] == [body["id"]]
    assert f'data-backfill="{body["id"]}"' in operator.get("/").text  # the overview lists it
    assert f'href="/backfills/{body["id"]}"' in operator.get("/jobs/web_count").text
    stopped = operator.post(f"/api/backfills/{body['id']}/stop")
    assert stopped.status_code == 200 and stopped.json()["status"] in ("STOPPING", "STOPPED")
    final = ended(operator, body["id"])
    assert final["status"] == "STOPPED" and final["actions"] == ["resume"]
    assert final["finished"] < 8
    operator.post(f"/api/backfills/{body['id']}/resume")
    assert ended(operator, body["id"])["counts"] == {"COMPLETED": 8}


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"job": "web_count", "range": "day:date=2026-11-05..2026-11-01"}, 400, "before its"),
        ({"job": "web_count", "range": "day:date=x..y"}, 400, "is not a date"),
        ({"job": "web_count"}, 400, "a range or values"),
        ({"job": "nope", "range": "day:date=2026-11-01..2026-11-02"}, 404, "no job named"),
        ({"job": "web_count", "range": "d:date=2026-11-01..2026-11-02", "concurrency": 0}, 422, ""),
    ],
)
def test_bad_requests_are_one_line_problems(
    server: Server, tokens: dict[str, str], body: dict[str, Any], status: int, says: str
) -> None:
    """A bad range, no range, an unknown job, a bad concurrency: a problem, nothing recorded."""
    response = server.client(tokens["operate"]).post("/api/backfills", json=body)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert says in response.json()["detail"] and "\n" not in response.json()["detail"]
    assert server.client(tokens["read"]).get("/api/backfills/999").status_code == 404
