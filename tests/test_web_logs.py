"""An execution's logs over the API (a page, a level filter, following), as text, and on the CLI."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.test_web_api import finished, start
from tests.web_server import Server, batchline, create_token, requires_web, serving

requires_web()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    url = f"sqlite:///{tmp_path_factory.mktemp('web_logs') / 'repository.db'}"
    with serving(url, delay=0.02) as running:
        yield running


@pytest.fixture(scope="module")
def token(server: Server) -> str:
    return create_token(server.url, "log_reader", "operate")


class TestLogsApi:
    def test_a_failed_execution_shows_its_lines_and_filters_by_level(
        self, server: Server, token: str
    ) -> None:
        """The lines of a run come in order; level=ERROR keeps only the failure."""
        client = server.client(token)
        failed = finished(client, start(client, "web_failing")["id"])
        page = client.get(f"/api/executions/{failed['id']}/logs").json()
        messages = [x["message"] for x in page["items"]]
        assert messages[0].startswith("job web_failing started")
        assert any(m.startswith("step explode started") for m in messages)
        assert page["running"] is False and page["dropped"] == 0
        errors = client.get(f"/api/executions/{failed['id']}/logs", params={"level": "error"})
        assert {x["level"] for x in errors.json()["items"]} == {"ERROR"}
        assert any("the task exploded" in x["message"] for x in errors.json()["items"])
        rest = client.get(
            f"/api/executions/{failed['id']}/logs", params={"after": page["next_after"]}
        )
        assert rest.json()["items"] == [] and rest.json()["next_after"] == page["next_after"]

    def test_download_is_text_and_refusals_are_clear(self, server: Server, token: str) -> None:
        """logs.txt is a text attachment of every line; a bad level is 400, no execution 404."""
        client = server.client(token)
        done = finished(client, start(client, "web_failing")["id"])
        text = client.get(f"/api/executions/{done['id']}/logs.txt")
        assert text.status_code == 200 and text.headers["content-type"].startswith("text/plain")
        assert "attachment" in text.headers["content-disposition"]
        assert "ERROR" in text.text and "step explode started" in text.text
        bad = client.get(f"/api/executions/{done['id']}/logs", params={"level": "LOUD"})
        assert bad.status_code == 400 and "LOUD" in bad.json()["detail"]
        assert client.get("/api/executions/999999/logs").status_code == 404
        assert server.client().get(f"/api/executions/{done['id']}/logs").status_code == 401

    def test_cli_prints_the_lines(self, server: Server, token: str) -> None:
        """`batchline logs ID --level ERROR` prints the failure line and no INFO line."""
        client = server.client(token)
        done = finished(client, start(client, "web_failing")["id"])
        printed = batchline(server.url, "logs", str(done["id"]), "--level", "ERROR")
        assert printed.returncode == 0, printed.stderr
        assert "the task exploded" in printed.stdout and " INFO " not in printed.stdout
        everything = batchline(server.url, "logs", str(done["id"]), "--follow")
        assert everything.returncode == 0 and "step explode started" in everything.stdout


def test_keep_logs_sets_the_level_kept(tmp_path: Path) -> None:
    """`batchline --keep-logs ERROR start` keeps only the run's ERROR lines."""
    url = f"sqlite:///{tmp_path / 'repository.db'}"
    ran = batchline(
        url, "--jobs", "tests.jobs.web_jobs", "--keep-logs", "ERROR", "start", "web_failing"
    )
    assert ran.returncode != 0
    printed = batchline(url, "logs", "1")
    assert printed.returncode == 0, printed.stderr
    assert "the task exploded" in printed.stdout
    assert {line.split()[2] for line in printed.stdout.splitlines() if line[:2] == "20"} == {
        "ERROR"
    }
