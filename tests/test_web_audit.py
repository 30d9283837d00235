"""The audit: every operator action through the API or the pages, by token name, with outcome."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tests.test_web_api import finished, start
from tests.web_server import Server, create_token, login, requires_web, serving

requires_web()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    url = f"sqlite:///{tmp_path_factory.mktemp('web_audit') / 'repository.db'}"
    with serving(url, delay=0.02) as running:
        yield running


class TestAudit:
    def test_actions_are_recorded_with_token_names_and_outcomes(self, server: Server) -> None:
        """API and page actions, done and refused, are listed newest first with who did them."""
        alice = create_token(server.url, "alice", "operate")
        bob = create_token(server.url, "bob", "read")
        client = server.client(alice)
        done = finished(client, start(client, "web_count", count=("2", "int"))["id"])
        stop = client.post(f"/api/executions/{done['id']}/stop")
        assert stop.status_code == 409
        assert server.client(bob).post(f"/api/executions/{done['id']}/abandon").status_code == 403
        browser = server.client()
        login(browser, alice)
        csrf = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', browser.get("/").text)
        assert csrf is not None
        failed = finished(client, start(client, "web_failing")["id"])
        restarted = browser.post(
            f"/executions/{failed['id']}/restart", data={"csrf_token": csrf[1]}
        )
        assert restarted.status_code == 303

        items = client.get("/api/audit").json()["items"]
        seen = [(a["token_name"], a["action"], a["target"], a["outcome"]) for a in items]
        assert seen[:5] == [
            ("alice", "restart", f"execution {failed['id']}", "done"),
            ("alice", "start", "job web_failing", "done"),
            ("bob", "abandon", f"execution {done['id']}", "refused"),
            ("alice", "stop", f"execution {done['id']}", "refused"),
            ("alice", "start", "job web_count", "done"),
        ]
        assert items[0]["detail"].startswith("new execution ")
        assert "lacks the 'operate' scope" in items[2]["detail"]
        assert items[4]["job_execution_id"] == done["id"]
        page = browser.get("/audit").text
        assert "alice" in page and "bob" in page and "refused" in page

    def test_reading_the_audit_needs_a_token(self, server: Server) -> None:
        """GET /api/audit without a token is 401."""
        assert server.client().get("/api/audit").status_code == 401

    def test_a_backfill_is_recorded_as_a_backfill_not_an_execution(self, server: Server) -> None:
        """Starting a backfill through the API and stopping it: rows that name the job and the
        backfill, with no execution (the answer's id is the backfill's)."""
        client = server.client(create_token(server.url, "carol", "operate"))
        started = client.post(
            "/api/backfills",
            json={
                "job": "web_count",
                "range": "day:date=2026-11-01..2026-11-02",
                "concurrency": 1,
                "parameters": {"count": {"value": "2", "type": "int"}},
            },
        )
        assert started.status_code == 202, started.text
        backfill = started.json()["id"]
        client.post(f"/api/backfills/{backfill}/stop")
        items = [a for a in client.get("/api/audit").json()["items"] if a["token_name"] == "carol"]
        seen = [(a["action"], a["target"], a["job_execution_id"], a["detail"]) for a in items]
        assert seen[1] == ("backfill", "job web_count", None, f"backfill {backfill}")
        assert seen[0][:3] == ("backfill-stop", f"backfill {backfill}", None)
