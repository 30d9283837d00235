"""The engine's operations and the flow around steps: listeners, logging, async, abandon."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import pytest

from batchline import (
    BatchStatus,
    Chunk,
    ConfigurationError,
    Engine,
    ExitStatus,
    JobBuilder,
    JobExecution,
    JobExecutionAlreadyRunning,
    JobInstanceAlreadyComplete,
    ListWriter,
    StepBuilder,
    StepExecution,
)
from batchline.testing import run_step, temporary_engine


class Events:
    """Job, step and chunk listener recording what it was told, in order."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def before_job(self, execution: JobExecution) -> None:
        self.seen.append("before_job")

    def after_job(self, execution: JobExecution) -> None:
        self.seen.append(f"after_job:{execution.status.value}")

    def before_step(self, step: StepExecution) -> None:
        self.seen.append(f"before_step:{step.step_name}")

    def after_step(self, step: StepExecution) -> ExitStatus | None:
        self.seen.append(f"after_step:{step.step_name}:{step.status.value}")
        return ExitStatus("COMPLETED WITH NOTES") if step.step_name == "load" else None

    def before_chunk(self, chunk: Chunk) -> None:
        self.seen.append(f"before_chunk:{chunk.number}")

    def after_chunk(self, chunk: Chunk) -> None:
        self.seen.append(f"after_chunk:{chunk.number}")

    def on_chunk_error(self, chunk: Chunk, error: BaseException) -> None:
        self.seen.append(f"chunk_error:{chunk.number}")


class TestListeners:
    def test_order_and_exit_status_override(self, sqlite_engine: Engine) -> None:
        """Listeners are called in order and after_step may replace the step's exit status."""
        events = Events()
        job = (
            JobBuilder("listened")
            .listener(events)
            .step(
                StepBuilder("load").chunk(2).reader([1, 2, 3]).writer(ListWriter()).listener(events)
            )
            .build()
        )
        execution = sqlite_engine.start(job)
        assert events.seen == [
            "before_job",
            "before_step:load",
            "before_chunk:1",
            "after_chunk:1",
            "before_chunk:2",
            "after_chunk:2",
            "after_step:load:COMPLETED",
            "after_job:COMPLETED",
        ]
        assert execution.step("load").exit_status.code == "COMPLETED WITH NOTES"
        stored = sqlite_engine.step_executions(execution.id)[0]
        assert stored.exit_status.code == "COMPLETED WITH NOTES"

    def test_chunk_error_reported_after_rollback(self, sqlite_engine: Engine) -> None:
        """A failing chunk calls on_chunk_error and the job ends FAILED, not COMPLETED."""
        events = Events()

        def write(items: list[int]) -> None:
            if 3 in items:
                raise OSError("disk full")

        job = (
            JobBuilder("broken")
            .listener(events)
            .step(StepBuilder("load").chunk(2).reader([1, 2, 3]).writer(write).listener(events))
            .build()
        )
        execution = sqlite_engine.start(job)
        assert execution.status is BatchStatus.FAILED
        assert "chunk_error:2" in events.seen
        assert events.seen[-1] == "after_job:FAILED"
        assert "OSError: disk full" in execution.exit_status.description
        assert execution.step("load").rollback_count == 1
        assert execution.step("load").commit_count == 1

    def test_failing_after_job_listener_fails_the_job(self, sqlite_engine: Engine) -> None:
        """An exception in after_job turns a completed job into a FAILED one."""

        class Breaks:
            def after_job(self, execution: JobExecution) -> None:
                raise RuntimeError("report could not be sent")

        job = JobBuilder("j").listener(Breaks()).step(StepBuilder("s").task(lambda se: None))
        execution = sqlite_engine.start(job.build())
        assert execution.status is BatchStatus.FAILED
        assert sqlite_engine.get_execution(execution.id).status is BatchStatus.FAILED


class TestSimpleStep:
    def test_handler_object_and_exit_status(self, sqlite_engine: Engine) -> None:
        """A handler object's execute() runs once and may return the step's ExitStatus."""

        class Handler:
            calls = 0

            def execute(self, step: StepExecution) -> ExitStatus:
                Handler.calls += 1
                step.context["done"] = True
                return ExitStatus("NOOP", "nothing to do")

        execution = run_step(sqlite_engine, StepBuilder("h").task(Handler()).build())
        assert Handler.calls == 1
        stored = sqlite_engine.step_executions(execution.id)[0]
        assert stored.exit_status == ExitStatus("NOOP", "nothing to do")
        assert stored.context["done"] is True


class TestLogging:
    def test_records_carry_execution_ids(
        self, sqlite_engine: Engine, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Every record logged inside a step carries the job and step execution ids."""
        caplog.set_level(logging.INFO, logger="batchline")
        execution = run_step(sqlite_engine, StepBuilder("s").task(lambda se: None).build())
        step_id = sqlite_engine.step_executions(execution.id)[0].id
        inside = [r for r in caplog.records if getattr(r, "step_name", "-") == "s"]
        assert inside
        assert all(r.job_execution_id == execution.id for r in inside)  # type: ignore[attr-defined]
        assert all(r.step_execution_id == step_id for r in inside)  # type: ignore[attr-defined]


class TestEngines:
    @pytest.mark.parametrize(
        ("lease", "interval"), [(5.0, 10.0), (10.0, 10.0), (60.0, 0.0), (float("nan"), 1.0)]
    )
    def test_a_lease_no_longer_than_the_heartbeat_interval_is_refused(
        self, tmp_path: Path, lease: float, interval: float
    ) -> None:
        """Engine refuses a lease a live job could not keep (as the CLI does), before it
        connects to anything."""
        url = f"sqlite:///{tmp_path / 'never.db'}"
        with pytest.raises(ConfigurationError, match=r"lease|heartbeat_interval"):
            Engine(url, lease=lease, heartbeat_interval=interval)
        assert not (tmp_path / "never.db").exists()

    def test_two_engines_side_by_side(self, tmp_path: Path) -> None:
        """Two engines on two repositories in one process keep separate registries and data."""
        with (
            Engine(f"sqlite:///{tmp_path / 'a.db'}") as a,
            Engine(f"sqlite:///{tmp_path / 'b.db'}") as b,
        ):
            job = JobBuilder("same").step(StepBuilder("s").task(lambda se: None)).build()
            a.register(job)
            assert "same" not in b.registry
            a.start("same", {"n": 1})
            b.start(job, {"n": 1})  # a different repository: a different instance
            assert len(a.list_executions()) == len(b.list_executions()) == 1

    def test_start_async_and_wait(self, sqlite_engine: Engine) -> None:
        """start_async returns at once; the handle waits for the finished execution."""
        gate = threading.Event()
        job = JobBuilder("later").step(StepBuilder("s").task(lambda se: gate.wait(10))).build()
        handle = sqlite_engine.start_async(job)
        assert handle.status() in (BatchStatus.STARTING, BatchStatus.STARTED)
        with pytest.raises(JobExecutionAlreadyRunning):
            sqlite_engine.start(job)
        gate.set()
        assert handle.wait(10).status is BatchStatus.COMPLETED
        with pytest.raises(JobInstanceAlreadyComplete, match="change an identifying parameter"):
            sqlite_engine.start(job)

    def test_abandon_retires_the_instance(self, sqlite_engine: Engine) -> None:
        """An abandoned execution's instance refuses to start again."""

        def boom(_: Any) -> None:
            raise RuntimeError("x")

        job = sqlite_engine.register(JobBuilder("a").step(StepBuilder("s").task(boom)).build())
        failed = sqlite_engine.start(job)
        assert sqlite_engine.abandon(failed.id).status is BatchStatus.ABANDONED
        with pytest.raises(JobInstanceAlreadyComplete, match="was abandoned"):
            sqlite_engine.restart(failed.id)

    def test_recover_refuses_a_live_lease(self, sqlite_engine: Engine) -> None:
        """A STARTED execution with a fresh heartbeat is not recovered without force."""
        job = JobBuilder("r").step(StepBuilder("s").task(lambda se: None)).build()
        other = Engine(sqlite_engine.repository, lease=60)  # another process's view
        try:
            _, execution = sqlite_engine.launch(job)
            with pytest.raises(JobExecutionAlreadyRunning, match="lease runs until"):
                other.recover(execution.id)
            [recovered] = other.recover(execution.id, force=True)
            assert recovered.status is BatchStatus.FAILED
            assert "recovered by an operator" in recovered.exit_status.description
        finally:
            other._closed.set()


class TestTesting:
    def test_temporary_engine(self) -> None:
        """temporary_engine gives a working engine whose repository disappears afterwards."""
        with temporary_engine() as engine:
            url = engine.repository.engine.url.database  # type: ignore[attr-defined]
            execution = run_step(engine, StepBuilder("s").task(lambda se: None).build())
            assert execution.status is BatchStatus.COMPLETED
        assert not Path(url).exists()

    def test_builder_refuses_a_step_without_work(self) -> None:
        """A step with neither a task nor a reader and writer is a configuration error."""
        with pytest.raises(ConfigurationError, match="missing reader and writer"):
            StepBuilder("empty").build()


class TestReaderFactories:
    def test_reader_class_is_a_factory(self, sqlite_engine: Engine) -> None:
        """A reader class is called with the StepExecution for a fresh reader each execution."""

        class Countdown:
            def __init__(self, step: StepExecution) -> None:
                self.left = int(step.parameters["n"])

            def read(self) -> int | None:
                self.left -= 1
                return self.left if self.left >= 0 else None

        out: ListWriter[int] = ListWriter()
        step = StepBuilder("count").chunk(2).reader(Countdown).writer(out)
        execution = sqlite_engine.start(JobBuilder("classes").step(step).build(), {"n": 3})
        assert execution.status is BatchStatus.COMPLETED
        assert out.items == [2, 1, 0]


class TestNewInstanceOnly:
    def test_refuses_an_instance_that_ran_before(self, sqlite_engine: Engine) -> None:
        """new_instance_only launches a first execution but never restarts a failed one."""
        from batchline import JobInstanceAlreadyExists

        def boom(_: Any) -> None:
            raise RuntimeError("x")

        job = JobBuilder("trigger").step(StepBuilder("s").task(boom)).build()
        first = sqlite_engine.start(job, {"file": "a.csv"}, new_instance_only=True)
        assert first.status is BatchStatus.FAILED
        with pytest.raises(JobInstanceAlreadyExists, match=f"execution {first.id}"):
            sqlite_engine.start(job, {"file": "a.csv"}, new_instance_only=True)
