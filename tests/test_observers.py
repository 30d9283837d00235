"""Observers: which events they hear, in what order; a failing one changes nothing; none costs
nothing."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from batchline import BatchStatus, ConfigurationError, Engine, JobBuilder, StepExecution
from batchline.observers import Observers, build, from_specs
from batchline.steps.base import StepRuntime
from tests.jobs import obs_jobs

ROOT = Path(__file__).resolve().parent.parent


class Recorder:
    """Notes every event it hears."""

    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []

    def job_started(self, execution: Any) -> None:
        self.events.append(("job_started", execution.job_name))

    def job_ended(self, execution: Any) -> None:
        self.events.append(("job_ended", execution.status.value))

    def step_started(self, se: StepExecution, partition_of: str | None) -> None:
        self.events.append(("step_started", se.step_name, partition_of))

    def step_ended(self, se: StepExecution, partition_of: str | None) -> None:
        self.events.append(("step_ended", se.step_name, se.status.value))

    def chunk_started(self, se: StepExecution, number: int) -> None:
        self.events.append(("chunk_started", se.step_name, number))

    def chunk_ended(self, se: StepExecution, number: int, seconds: Any, error: Any) -> None:
        wrote = seconds is not None
        self.events.append(("chunk_ended", se.step_name, number, wrote, type(error).__name__))


class Broken:
    def job_started(self, execution: Any) -> None:
        raise RuntimeError("the metrics backend is down")

    def chunk_ended(self, *args: Any) -> None:
        raise RuntimeError("the metrics backend is down")


class RuntimeProbe:
    """A step that notes the runtime's observers."""

    name = "probe"
    allow_start_if_complete = False
    start_limit = None
    listeners: list[Any] = []

    def __init__(self) -> None:
        self.seen: list[Any] = []

    def execute(self, se: StepExecution, runtime: StepRuntime) -> None:
        self.seen.append(runtime.observers)


class TestEvents:
    def test_job_step_and_chunk_events_in_order(self, sqlite_url: str) -> None:
        """Job, step and chunk events arrive in order, the last (empty) chunk included."""
        recorder = Recorder()
        job = JobBuilder("evented").step(tally()).build()
        with Engine(sqlite_url, observers=[recorder]) as engine:
            engine.start(job)
        assert recorder.events == [
            ("job_started", "evented"),
            ("step_started", "tally", None),
            ("chunk_started", "tally", 1),
            ("chunk_ended", "tally", 1, True, "NoneType"),
            ("chunk_started", "tally", 2),
            ("chunk_ended", "tally", 2, True, "NoneType"),
            ("chunk_started", "tally", 3),
            ("chunk_ended", "tally", 3, True, "NoneType"),
            ("step_ended", "tally", "COMPLETED"),
            ("job_ended", "COMPLETED"),
        ]

    def test_a_failed_chunk_and_partitions(self, sqlite_url: str) -> None:
        """A chunk whose write fails ends with its error; partitions name their manager."""
        recorder = Recorder()
        with Engine(sqlite_url) as engine:
            engine.observe(recorder)
            engine.start(obs_jobs.failing_job())
            engine.start(obs_jobs.THREAD_JOB)
        assert ("chunk_ended", "doomed", 1, True, "StepFailure") in recorder.events
        assert ("job_ended", "FAILED") in recorder.events
        partitions = {e[1]: e[2] for e in recorder.events if e[0] == "step_started"}
        assert partitions == {"doomed": None, "work": None} | {
            f"work:{i:04d}": "work" for i in range(4)
        }

    def test_a_failing_observer_changes_nothing(
        self, sqlite_url: str, caplog: pytest.LogCaptureFixture
    ) -> None:
        """An observer that raises is logged; the job completes and the others still hear."""
        recorder = Recorder()
        with Engine(sqlite_url, observers=[Broken(), recorder]) as engine:
            execution = engine.start(JobBuilder("sturdy").step(tally()).build())
        assert execution.status is BatchStatus.COMPLETED
        assert recorder.events[-1] == ("job_ended", "COMPLETED")
        assert "failed on job_started" in caplog.text and "failed on chunk_ended" in caplog.text


class TestNoCost:
    def test_no_observer_means_no_dispatcher(self, sqlite_url: str) -> None:
        """Without observers the runtime carries None: the chunk loop calls nothing."""
        probe = RuntimeProbe()
        with Engine(sqlite_url) as engine:
            engine.start(JobBuilder("bare").step(probe).build())
            recorder = Recorder()
            engine.observe(recorder)
            engine.start(JobBuilder("observed").step(probe).build())
        assert probe.seen[0] is None
        assert isinstance(probe.seen[1], Observers) and probe.seen[1].all == (recorder,)

    def test_running_a_job_loads_no_metrics_library(self, tmp_path: Path) -> None:
        """A job run without observers imports neither OpenTelemetry nor prometheus_client."""
        probe = (
            "import sys\n"
            "from batchline import Engine, JobBuilder\n"
            "from tests.test_observers import tally\n"
            f"with Engine('sqlite:///{tmp_path / 'r.db'}') as e:\n"
            "    e.start(JobBuilder('plain').step(tally()).build())\n"
            "print(sorted({m.split('.')[0] for m in sys.modules}"
            " & {'opentelemetry', 'prometheus_client'}))"
        )
        done = subprocess.run(
            [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip().splitlines()[-1] == "[]"

    def test_worker_specs_build_observers(self, caplog: pytest.LogCaptureFixture) -> None:
        """A worker builds observers from (reference, arguments); one it cannot build is
        named in a warning and left out, so the partition still runs."""
        specs = [("tests.test_observers:Nope", {}), ("tests.test_observers:Recorder", {})]
        built = from_specs(specs)
        assert built is not None and [type(o) for o in built.all] == [Recorder]
        assert "tests.test_observers:Nope" in caplog.text
        assert from_specs([]) is None
        with pytest.raises(ConfigurationError, match=re.escape("tests.test_observers:Nope")):
            build("tests.test_observers:Nope", {})


def tally() -> Any:
    from batchline import StepBuilder

    return StepBuilder("tally").chunk(4).reader(lambda se: iter(range(10))).writer(obs_jobs.discard)
