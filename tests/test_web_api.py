"""The REST API of `batchline serve`, over real HTTP against a real server process."""

from __future__ import annotations

import re
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from batchline.testing import eventually
from tests.backends import MYSQL, POSTGRES, fresh_database
from tests.frozen_proxy import proxy_to
from tests.jobs.web_jobs import MARKUP
from tests.web_server import Server, batchline, create_token, requires_web, serving
from tests.web_server import login as sign_in

requires_web()
pytestmark = pytest.mark.slow

MUTATING = [
    ("post", "/api/jobs/web_count/start", {"parameters": {}}),
    ("post", "/api/executions/1/stop", None),
    ("post", "/api/executions/1/restart", None),
    ("post", "/api/executions/1/abandon", None),
    ("post", "/api/recover", {}),
    ("post", "/api/schedules/nightly/pause", None),
    ("post", "/api/schedules/nightly/trigger", None),
]
READING = [
    "/api/jobs",
    "/api/executions",
    "/api/executions/1",
    "/api/executions/1/skipped",
    "/api/jobs/web_count/instances",
    "/api/step-executions/1",
    "/api/executions/1/logs",
    "/api/executions/1/logs.txt",
    "/api/audit",
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    url = f"sqlite:///{tmp_path_factory.mktemp('web') / 'repository.db'}"
    with serving(url, delay=0.02) as running:
        yield running


@pytest.fixture(scope="module")
def tokens(server: Server) -> dict[str, str]:
    return {
        "read": create_token(server.url, "reader", "read"),
        "operate": create_token(server.url, "operator", "operate"),
    }


def start(client: httpx.Client, job: str, **params: tuple[str, str]) -> dict[str, Any]:
    body = {"parameters": {k: {"value": v, "type": t} for k, (v, t) in params.items()}}
    response = client.post(f"/api/jobs/{job}/start", json=body)
    assert response.status_code == 202, response.text
    return dict(response.json())


def finished(client: httpx.Client, execution_id: int) -> dict[str, Any]:
    def ended() -> dict[str, Any] | None:
        found = client.get(f"/api/executions/{execution_id}").json()
        return None if found["status"] in ("STARTING", "STARTED", "STOPPING") else found

    return eventually(ended, message=f"execution {execution_id} never ended")


class TestAccess:
    @pytest.mark.parametrize(("method", "path", "body"), MUTATING)
    def test_mutating_needs_operate(
        self, server: Server, tokens: dict[str, str], method: str, path: str, body: Any
    ) -> None:
        """Every mutating endpoint: 401 without a token, 403 with a read token."""
        anonymous = server.client().request(method, path, json=body)
        assert anonymous.status_code == 401
        assert anonymous.headers["content-type"] == "application/problem+json"
        assert anonymous.headers["www-authenticate"] == "Bearer"
        reader = server.client(tokens["read"]).request(method, path, json=body)
        assert reader.status_code == 403
        assert "lacks the 'operate' scope" in reader.json()["detail"]

    @pytest.mark.parametrize("path", READING)
    def test_reading_needs_a_token(self, server: Server, path: str) -> None:
        assert server.client().get(path).status_code == 401
        assert server.client("blt_forged").get(path).status_code == 401

    def test_revoked_token_stops_working(self, server: Server) -> None:
        token = create_token(server.url, "short-lived", "operate")
        assert server.client(token).get("/api/jobs").status_code == 200
        revoked = batchline(server.url, "token", "revoke", "short-lived")
        assert revoked.returncode == 0, revoked.stderr
        assert server.client(token).get("/api/jobs").status_code == 401
        listed = batchline(server.url, "token", "list").stdout
        assert "short-lived" in listed and token not in listed

    def test_tokens_are_stored_hashed(self, server: Server, tokens: dict[str, str]) -> None:
        database = Path(server.url.removeprefix("sqlite:///")).read_bytes()
        assert tokens["operate"].encode() not in database

    def test_csrf_for_the_browser_session(self, server: Server, tokens: dict[str, str]) -> None:
        """A session cookie alone cannot change anything: the page's CSRF token must come too."""
        browser = server.client()
        login = sign_in(browser, tokens["operate"])
        assert login.status_code == 303 and "httponly" in login.headers["set-cookie"].lower()
        assert "samesite=strict" in login.headers["set-cookie"].lower()
        refused = browser.post("/jobs/web_count/start", data={"parameters": ""})
        assert refused.status_code == 403 and "CSRF" in refused.text
        forged = browser.post(
            "/jobs/web_count/start", data={"parameters": "", "csrf_token": "0" * 64}
        )
        assert forged.status_code == 403
        page = browser.get("/").text
        csrf = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', page)
        assert csrf is not None
        ok = browser.post(
            "/jobs/web_count/start", data={"parameters": "count:int=2", "csrf_token": csrf[1]}
        )
        assert ok.status_code == 303 and ok.headers["location"].startswith("/executions/")

    def test_page_errors_are_escaped(self, server: Server, tokens: dict[str, str]) -> None:
        """A bad parameter typed into the start form comes back as text on an error page."""
        browser = server.client()
        sign_in(browser, tokens["operate"])
        csrf = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', browser.get("/").text)
        assert csrf is not None
        shown = browser.post(
            "/jobs/web_count/start", data={"parameters": "<b>bold</b>", "csrf_token": csrf[1]}
        )
        assert shown.status_code == 400
        assert "&lt;b&gt;bold&lt;/b&gt;" in shown.text and "<b>bold" not in shown.text

    def test_login_refuses_unknown_tokens(self, server: Server) -> None:
        refused = sign_in(server.client(), "blt_nobody")
        assert refused.status_code == 401 and "unknown or revoked" in refused.text
        assert "batchline_session" not in refused.headers.get("set-cookie", "")

    def test_pages_redirect_to_login(self, server: Server) -> None:
        response = server.client().get("/executions")
        assert response.status_code == 303 and response.headers["location"] == "/login"

    def test_security_headers(self, server: Server, tokens: dict[str, str]) -> None:
        headers = server.client(tokens["read"]).get("/").headers
        assert "script-src 'self'" in headers["content-security-policy"]
        assert headers["x-frame-options"] == "DENY"

    def test_metrics_count_the_jobs_this_server_runs(
        self, server: Server, tokens: dict[str, str]
    ) -> None:
        """/metrics (the prometheus extra): refused without a token; with one, the items the
        server's own jobs read, as the step counters say."""
        assert server.client().get("/metrics").status_code == 401
        reader = server.client(tokens["read"])

        def items_read() -> float:
            text = reader.get("/metrics").text
            lines = [x for x in text.splitlines() if x.startswith("batchline_item_read_total{")]
            return sum(float(x.rsplit(" ", 1)[1]) for x in lines)

        before = items_read()
        client = server.client(tokens["operate"])
        done = finished(client, start(client, "web_count", count=("7", "int"))["id"])
        assert done["status"] == "COMPLETED"
        assert items_read() - before == 7


class TestOperations:
    def test_start_with_typed_parameters(self, server: Server, tokens: dict[str, str]) -> None:
        client = server.client(tokens["operate"])
        launched = start(client, "web_count", count=("6", "int"))
        assert launched["parameters"]["count"] == {"type": "int", "value": 6, "identifying": True}
        done = finished(client, launched["id"])
        assert done["status"] == "COMPLETED"
        [step] = done["steps"]
        assert step["counters"]["read_count"] == 6 and step["counters"]["commit_count"] >= 3

    def test_bad_parameter_is_a_problem(self, server: Server, tokens: dict[str, str]) -> None:
        response = server.client(tokens["operate"]).post(
            "/api/jobs/web_count/start",
            json={"parameters": {"count": {"value": "many", "type": "int"}}},
        )
        assert response.status_code == 400
        assert response.headers["content-type"] == "application/problem+json"
        assert "count" in response.json()["detail"]

    def test_errors_carry_the_cli_message(self, server: Server, tokens: dict[str, str]) -> None:
        """Restarting a completed execution: 409 with the line the CLI prints."""
        client = server.client(tokens["operate"])
        done = finished(client, start(client, "web_count", count=("3", "int"))["id"])
        api = client.post(f"/api/executions/{done['id']}/restart")
        assert api.status_code == 409
        cli = batchline(server.url, "--jobs", "tests.jobs.web_jobs", "restart", str(done["id"]))
        assert cli.stderr.strip() == f"batchline: error: {api.json()['detail']}"
        missing = client.get("/api/executions/999999")
        assert missing.status_code == 404
        assert missing.json()["detail"] == "no job execution with id 999999"

    def test_stop_restart_abandon(self, server: Server, tokens: dict[str, str]) -> None:
        client = server.client(tokens["operate"])
        running = start(client, "web_count", count=("400", "int"))
        eventually(
            lambda: client.get(f"/api/executions/{running['id']}").json()["actions"] == ["stop"]
        )
        stopping = client.post(f"/api/executions/{running['id']}/stop")
        assert stopping.status_code == 200
        assert stopping.json()["status"] in ("STOPPING", "STOPPED")  # a local stop is quick
        stopped = finished(client, running["id"])
        assert stopped["status"] == "STOPPED" and stopped["actions"] == ["restart", "abandon"]
        again = client.post(f"/api/executions/{running['id']}/restart")
        assert again.status_code == 202
        client.post(f"/api/executions/{again.json()['id']}/stop")
        second = finished(client, again.json()["id"])
        assert second["status"] == "STOPPED"
        abandoned = client.post(f"/api/executions/{second['id']}/abandon")
        assert abandoned.status_code == 200 and abandoned.json()["status"] == "ABANDONED"
        assert client.get(f"/api/executions/{second['id']}").json()["actions"] == []
        completed = finished(client, start(client, "web_count", count=("1", "int"))["id"])
        refused = client.post(f"/api/executions/{completed['id']}/abandon")
        assert refused.status_code == 409, refused.text

    def test_recover(self, server: Server, tokens: dict[str, str]) -> None:
        client = server.client(tokens["operate"])
        none = client.post("/api/recover", json={})
        assert none.status_code == 200 and none.json() == {"items": []}
        launched = start(client, "web_count", count=("1", "int"), tag=("recover", "str"))
        done = finished(client, launched["id"])
        refused = client.post("/api/recover", json={"execution_id": done["id"]})
        assert refused.status_code == 409
        assert refused.json()["detail"] == (
            f"job execution {done['id']} is COMPLETED, not running; nothing to recover"
        )

    def test_filters_and_keyset_pages(self, server: Server, tokens: dict[str, str]) -> None:
        client = server.client(tokens["operate"])
        for n in (101, 102, 103):
            finished(
                client,
                start(client, "web_count", count=(str(n % 100), "int"), tag=(str(n), "str"))["id"],
            )
        one = client.get("/api/executions", params={"param": "tag=102"}).json()
        assert [e["parameters"]["tag"]["value"] for e in one["items"]] == ["102"]
        typed = client.get("/api/executions", params={"param": "count:int=3", "job": "web_count"})
        assert all(e["parameters"]["count"]["value"] == 3 for e in typed.json()["items"])
        first = client.get("/api/executions", params={"limit": 2, "status": "COMPLETED"}).json()
        rest = client.get(
            "/api/executions",
            params={"limit": 2, "status": "COMPLETED", "after": first["next_after"]},
        ).json()
        ids = [e["id"] for e in first["items"] + rest["items"]]
        assert ids == sorted(ids, reverse=True) and len(set(ids)) == 4
        assert (
            client.get("/api/executions", params={"until": "2000-01-01T00:00:00Z"}).json()["items"]
            == []
        )
        bad = client.get("/api/executions", params={"param": "nul=\x00"})
        assert bad.status_code == 400
        instances = client.get("/api/jobs/web_count/instances", params={"limit": 1}).json()
        assert instances["total"] >= 3 and len(instances["items"]) == 1

    def test_skipped_items_paged_and_escaped(self, server: Server, tokens: dict[str, str]) -> None:
        client = server.client(tokens["operate"])
        done = finished(client, start(client, "web_skips")["id"])
        assert done["status"] == "COMPLETED" and done["skip_counts"] == {"process": 61}
        first = client.get(f"/api/executions/{done['id']}/skipped").json()
        assert first["items"][0]["item"] == MARKUP and len(first["items"]) == 50
        rest = client.get(
            f"/api/executions/{done['id']}/skipped", params={"after": first["next_after"]}
        ).json()
        assert len(rest["items"]) == 11 and rest["next_after"] is None
        page = client.get(f"/executions/{done['id']}").text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and MARKUP not in page

    def test_partitions_and_contexts(self, server: Server, tokens: dict[str, str]) -> None:
        client = server.client(tokens["operate"])
        done = finished(client, start(client, "web_partitioned")["id"])
        steps = {s["name"]: s for s in done["steps"]}
        assert steps["split"]["partition_of"] is None
        partitions = [s for s in done["steps"] if s["partition_of"] == "split"]
        assert len(partitions) == 3 and all(s["context"]["done"] for s in partitions)
        one = client.get(f"/api/step-executions/{partitions[0]['id']}").json()
        assert one["partition_of"] == "split" and one["context"]["done"] is True

    def test_partition_progress_and_pictures(self, server: Server, tokens: dict[str, str]) -> None:
        """Each partition's expected items, progress and rate; the pages draw the timeline
        (a bar per step and partition), the throughput and a job's durations."""
        client = server.client(tokens["operate"])
        done = finished(client, start(client, "web_partitioned_count")["id"])
        assert done["status"] == "COMPLETED"
        steps = {s["name"]: s for s in done["steps"]}
        parts = [s for s in done["steps"] if s["partition_of"] == "spread"]
        assert [(p["expected"], p["progress"], p["counters"]["read_count"]) for p in parts] == [
            (12, 1.0, 12)
        ] * 3
        assert all(p["rate"] > 0 and p["eta_seconds"] is None for p in parts)
        assert (steps["spread"]["expected"], steps["spread"]["progress"]) == (36, 1.0)
        page = client.get(f"/executions/{done['id']}").text
        timeline = page[page.index('<svg xmlns="http://www.w3.org/2000/svg" id="timeline"') :]
        timeline = timeline[: timeline.index("</svg>")]
        assert timeline.count("<rect ") == 4 and 'data-step="spread:0002"' in timeline
        assert 'id="throughput"' in page and "<progress" in page
        job_page = client.get("/jobs/web_partitioned_count").text
        assert 'id="durations"' in job_page and f'href="/executions/{done["id"]}"' in job_page
        assert client.get("/jobs/no_such_job").status_code == 404

    def test_overview_lists_jobs(self, server: Server, tokens: dict[str, str]) -> None:
        # Its own completed run: the test does not depend on which tests ran before it.
        operator = server.client(tokens["operate"])
        assert finished(operator, start(operator, "web_count")["id"])["status"] == "COMPLETED"
        jobs = {j["name"]: j for j in server.client(tokens["read"]).get("/api/jobs").json()}
        assert jobs["web_failing"]["registered"] and jobs["web_failing"]["last"] is None
        assert jobs["web_count"]["counts"]["COMPLETED"] >= 1


class TestBadInput:
    @pytest.mark.parametrize(
        ("query", "fragment"),
        [
            ({"since": "0001-01-01T00:00:00+14:00"}, "outside the years 1 to 9999"),
            ({"until": "9999-12-31T23:59:59-14:00"}, "outside the years 1 to 9999"),
            ({"param": [f"p{i}=1" for i in range(1000)]}, "at most 32"),
            ({"param": "x:float=nan"}, "not a finite number"),
            ({"param": "a:=1"}, "no type after ':'"),
        ],
    )
    def test_filters_out_of_range_are_400(
        self, server: Server, tokens: dict[str, str], query: dict[str, Any], fragment: str
    ) -> None:
        """Calendar edges that leave the years 1-9999 in UTC, 1,000 parameter filters, NaN:
        400 problem+json saying what and the bound, never 500 or 503."""
        response = server.client(tokens["read"]).get("/api/executions", params=query)
        assert response.status_code == 400, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert fragment in response.json()["detail"]

    @pytest.mark.parametrize(
        "body",
        [
            {"force": "yes"},
            {"force": 1},
            {"force": "true"},
            {"execution_id": "1"},
            {"forse": True},
        ],
    )
    def test_recover_takes_booleans_as_booleans(
        self, server: Server, tokens: dict[str, str], body: dict[str, Any]
    ) -> None:
        """POST /api/recover refuses a string or number for force (and a misspelt field):
        422, nothing recovered."""
        response = server.client(tokens["operate"]).post("/api/recover", json=body)
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"

    def test_start_refuses_strings_for_booleans(
        self, server: Server, tokens: dict[str, str]
    ) -> None:
        """A start parameter's identifying flag is a boolean, not "no"."""
        response = server.client(tokens["operate"]).post(
            "/api/jobs/web_count/start",
            json={"parameters": {"count": {"value": "3", "type": "int", "identifying": "no"}}},
        )
        assert response.status_code == 422, response.text

    @pytest.mark.parametrize(
        ("parameters", "fragment"),
        [
            ({"rate": {"value": "nan", "type": "float"}}, "not a finite number"),
            ({"rate": {"value": "-Infinity", "type": "float"}}, "not a finite number"),
            ({f"p{i}": {"value": "x" * 1000} for i in range(40)}, "at most 32,768"),
        ],
    )
    def test_start_refuses_unstorable_parameters(
        self, server: Server, tokens: dict[str, str], parameters: dict[str, Any], fragment: str
    ) -> None:
        """NaN, Infinity and parameters past the size limit: 400, nothing launched."""
        client = server.client(tokens["operate"])
        before = client.get("/api/executions", params={"job": "web_count"}).json()["items"]
        response = client.post("/api/jobs/web_count/start", json={"parameters": parameters})
        assert response.status_code == 400, response.text
        assert fragment in response.json()["detail"]
        after = client.get("/api/executions", params={"job": "web_count"}).json()["items"]
        assert [e["id"] for e in after] == [e["id"] for e in before]


@pytest.mark.parametrize("backend", ["postgresql", "mariadb"])
@pytest.mark.parametrize("outage", ["freeze", "cut"])
def test_repository_outage_is_503(
    backend: str, outage: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the repository is cut or silent past the timeouts, the API answers 503
    problem+json with Retry-After, never a 500 with a traceback."""
    monkeypatch.setenv("BATCHLINE_CONNECT_TIMEOUT", "2")
    monkeypatch.setenv("BATCHLINE_STATEMENT_TIMEOUT", "2")
    server_url = POSTGRES if backend == "postgresql" else MYSQL
    with fresh_database(backend, tmp_path) as url:
        token = create_token(url, "reader", "read")
        with proxy_to(server_url) as proxy, serving(proxy.url(url)) as server:
            client = server.client(token)
            assert client.get("/api/executions").status_code == 200
            getattr(proxy, outage)()
            for path in ("/api/executions", "/api/jobs", "/api/executions/1"):
                response = client.get(path)
                assert response.status_code == 503, response.text
                assert response.headers["content-type"] == "application/problem+json"
                assert response.headers["retry-after"] == "5"
                assert "did not answer" in response.json()["detail"]
                assert "Traceback" not in response.text


class TestServe:
    def test_refuses_other_interfaces_without_tokens(self, tmp_path: Path) -> None:
        url = f"sqlite:///{tmp_path / 'empty.db'}"
        refused = batchline(url, "serve", "--host", "0.0.0.0", "--port", "1")
        assert refused.returncode == 2
        assert refused.stderr.strip().startswith(
            "batchline: error: refusing to listen on 0.0.0.0: "
            "the repository holds no live API token"
        )


def test_shutdown_stops_what_the_server_started(tmp_path: Path) -> None:
    """SIGTERM to `batchline serve`: the jobs it launched end STOPPED, restartable."""
    url = f"sqlite:///{tmp_path / 'repository.db'}"
    with serving(url, delay=0.05) as server:
        client = server.client(create_token(url, "op", "operate"))
        running = start(client, "web_count", count=("100000", "int"))
        eventually(lambda: client.get(f"/api/executions/{running['id']}").json()["actions"])
        server.process.terminate()
        # uvicorn re-raises the signal once shut down: the process ends as SIGTERM says.
        assert server.process.wait(timeout=60) in (0, -signal.SIGTERM)
    shown = batchline(url, "show", str(running["id"]))
    assert "STOPPED" in shown.stdout, shown.stdout + shown.stderr


def test_metrics_hook_mounts_the_observability_exposition(tmp_path: Path) -> None:
    """With batchline.observability.prometheus importable (a stand-in here), /metrics serves
    its exposition to a read token and refuses anyone else."""
    url = f"sqlite:///{tmp_path / 'repository.db'}"
    with serving(url, module="tests.jobs.metrics_stub") as server:
        assert server.client().get("/metrics").status_code == 401
        metrics = server.client(create_token(url, "prometheus", "read")).get("/metrics")
        assert metrics.status_code == 200
        assert metrics.text == "batchline_running_executions 0\n"
