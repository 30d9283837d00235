"""Prometheus observer: scraped from a real server, ``exposition()``, a push at a job's end."""

from __future__ import annotations

import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from batchline import BatchStatus, ConfigurationError, Engine
from batchline.testing import eventually
from tests.backends import import_extra
from tests.jobs import obs_jobs

import_extra("prometheus_client", "test")

from prometheus_client import REGISTRY, CollectorRegistry  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from batchline.observability.prometheus import PrometheusObserver, exposition  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of an exposition, by name and labels."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(text: str, name: str, **labels: str) -> float | None:
    return samples(text).get((name, frozenset(labels.items())))


def get(url: str) -> tuple[str, str]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read().decode(), response.headers["Content-Type"]


class Receiver(BaseHTTPRequestHandler):
    """Records every request, as a Pushgateway stand-in (or serves ``exposition()``)."""

    received: list[tuple[str, str, bytes]]
    registry: CollectorRegistry | None = None

    def _record(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.received.append((self.command, self.path, self.rfile.read(length)))
        self.send_response(200)
        self.end_headers()

    do_PUT = do_POST = _record

    def do_GET(self) -> None:
        body, content_type = exposition(self.registry)
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[ThreadingHTTPServer, type[Receiver]]]:
    handler = type("Handler", (Receiver,), {"received": [], "registry": CollectorRegistry()})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, handler
    server.shutdown()
    server.server_close()


class TestScrape:
    @pytest.mark.slow
    def test_a_running_server_shows_the_metrics(self, sqlite_url: str, tmp_path: Path) -> None:
        """prometheus_client's server in a process running a job: active while it runs, then
        the item counts and the job's duration by status."""
        gate = tmp_path / "gate"
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.jobs.prom_serve", sqlite_url, str(gate)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert proc.stdout is not None and proc.stdin is not None
            url = f"http://127.0.0.1:{int(proc.stdout.readline())}/metrics"

            # The job is active a moment before its step is: wait for both in one scrape.
            def both_active() -> bool:
                text = get(url)[0]
                return (
                    value(text, "batchline_job_active", job_name="prom_held") == 1
                    and value(text, "batchline_step_active", job_name="prom_held", step_name="hold")
                    == 1
                )

            eventually(both_active, timeout=60, message="the job and its step never showed active")
            gate.touch()
            assert proc.stdout.readline().strip() == "COMPLETED"
            text, content_type = get(url)
            assert content_type.startswith("text/plain")
            at = {"job_name": "prom_held", "step_name": "hold"}
            assert value(text, "batchline_item_read_total", **at) == 12
            assert value(text, "batchline_item_write_total", **at) == 12
            assert value(text, "batchline_chunk_write_seconds_count", status="SUCCESS", **at) == 3
            assert value(text, "batchline_job_active", job_name="prom_held") == 0
            done = value(
                text, "batchline_job_seconds_count", job_name="prom_held", status="COMPLETED"
            )
            assert done == 1
            proc.stdin.close()
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    def test_exposition_serves_the_counters(
        self, sqlite_url: str, receiver: tuple[ThreadingHTTPServer, type[Receiver]]
    ) -> None:
        """A /metrics route built on exposition() returns counts equal to the step counters."""
        server, handler = receiver
        with Engine(sqlite_url, observers=[PrometheusObserver(handler.registry)]) as engine:
            execution = engine.start(obs_jobs.skipping_job())
            load = next(s for s in engine.step_executions(execution.id) if s.step_name == "load")
        text, content_type = get(f"http://127.0.0.1:{server.server_port}/metrics")
        assert content_type == exposition(handler.registry)[1]
        at = {"job_name": "obs_skips", "step_name": "load"}
        assert value(text, "batchline_item_read_total", **at) == load.read_count
        assert value(text, "batchline_item_write_total", **at) == load.write_count
        assert value(text, "batchline_item_filter_total", **at) == load.filter_count
        for phase in ("read", "process", "write"):
            expected = getattr(load, f"{phase}_skip_count")
            assert (
                expected and value(text, "batchline_item_skip_total", phase=phase, **at) == expected
            )

    @pytest.mark.parametrize(
        "job", [obs_jobs.THREAD_JOB, obs_jobs.PROCESS_JOB], ids=["threads", "processes"]
    )
    def test_partitions_count_once_wherever_they_ran(self, sqlite_url: str, job: Any) -> None:
        """Each partition's items count once, under its name, wherever it ran; the manager
        (which sums them) adds nothing."""
        registry = CollectorRegistry()
        with Engine(sqlite_url, observers=[PrometheusObserver(registry)]) as engine:
            execution = engine.start(job)
            steps = engine.step_executions(execution.id)
        assert execution.status is BatchStatus.COMPLETED, execution.exit_status
        text = exposition(registry)[0].decode()
        assert len(steps) == 5
        for step in steps:
            at = {"job_name": job.name, "step_name": step.step_name}
            counted = value(text, "batchline_item_read_total", **at)
            if step.step_name == "work":
                assert counted is None
                continue
            assert counted == step.read_count == 10
            done = value(text, "batchline_step_seconds_count", status="COMPLETED", **at)
            assert done == 1

    def test_one_observer_per_registry(self) -> None:
        """A second observer on the same registry is refused, naming what to do instead."""
        registry = CollectorRegistry()
        PrometheusObserver(registry)
        with pytest.raises(ConfigurationError, match="one PrometheusObserver per registry"):
            PrometheusObserver(registry)


class TestPush:
    @pytest.mark.slow
    def test_cli_pushes_once_at_the_end_grouped_by_job(
        self, sqlite_url: str, receiver: tuple[ThreadingHTTPServer, type[Receiver]]
    ) -> None:
        """``batchline --push-gateway URL start`` PUTs the metrics once, to /metrics/job/<name>."""
        server, handler = receiver
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "batchline",
                "-r",
                sqlite_url,
                "--push-gateway",
                f"http://127.0.0.1:{server.server_port}",
                "start",
                "tests.jobs.obs_jobs:skipping_job",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        assert [(m, p) for m, p, _ in handler.received] == [("PUT", "/metrics/job/obs_skips")]
        pushed = handler.received[0][2].decode()
        at = {"job_name": "obs_skips", "step_name": "load"}
        read_skips = obs_jobs.ITEMS // 17  # a read skip is no item read
        assert value(pushed, "batchline_item_read_total", **at) == obs_jobs.ITEMS - read_skips
        assert value(pushed, "batchline_job_active", job_name="obs_skips") == 0
        assert (
            value(pushed, "batchline_job_seconds_count", job_name="obs_skips", status="COMPLETED")
            == 1
        )

    def test_an_unreachable_gateway_does_not_fail_the_job(
        self, sqlite_url: str, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A push that fails is a warning; the job's outcome stands."""
        observer = PrometheusObserver(CollectorRegistry(), push_gateway="http://127.0.0.1:9")
        with Engine(sqlite_url, observers=[observer]) as engine:
            execution = engine.start(obs_jobs.skipping_job())
        assert execution.status is BatchStatus.COMPLETED
        assert "could not push metrics of job obs_skips" in caplog.text


class TestCliOptions:
    def test_options_choose_the_observers(self) -> None:
        """--push-gateway adds a Prometheus observer on a registry of its own; --otel the
        OpenTelemetry one; neither, none."""
        from batchline.cli.state import State
        from batchline.observability.otel import OpenTelemetryObserver

        assert State(repository="sqlite://").observers() == []
        pushing, traced = State(
            repository="sqlite://", push_gateway="http://127.0.0.1:9091", otel=True
        ).observers()
        assert isinstance(pushing, PrometheusObserver) and isinstance(traced, OpenTelemetryObserver)
        assert pushing.push_gateway == "http://127.0.0.1:9091"
        assert pushing.registry is not REGISTRY  # a push carries batchline's metrics only

    def test_a_missing_extra_is_one_line(self, sqlite_url: str) -> None:
        """--push-gateway without prometheus_client installed: exit 2, one line naming the extra."""
        probe = (
            "import sys\nsys.modules['prometheus_client'] = None  # as if not installed\n"
            "from batchline.cli import main\n"
            f"main(['-r', {sqlite_url!r}, '--push-gateway', 'http://127.0.0.1:9', 'start', "
            "'tests.jobs.obs_jobs:skipping_job'], prog_name='batchline')"
        )
        done = subprocess.run(
            [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 2
        (line,) = done.stderr.strip().splitlines()
        assert "--push-gateway needs the prometheus extra" in line
