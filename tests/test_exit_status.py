"""Custom exit statuses reach the job; after-callbacks run in reverse registration order."""

from __future__ import annotations

from typing import Any

from batchline import (
    BatchStatus,
    Chunk,
    Engine,
    ExitStatus,
    JobBuilder,
    JobExecution,
    ListWriter,
    StepBuilder,
    StepExecution,
)


class WithSkips:
    def after_step(self, se: StepExecution) -> ExitStatus:
        return ExitStatus("COMPLETED WITH SKIPS", "2 skipped")


class TestJobExitStatus:
    def test_last_steps_custom_exit_status_is_the_jobs(self, sqlite_engine: Engine) -> None:
        """A plain job whose last step's listener says COMPLETED WITH SKIPS ends with it."""
        job = (
            JobBuilder("plain")
            .step(StepBuilder("a").task(lambda se: None))
            .step(StepBuilder("b").task(lambda se: None).listener(WithSkips()))
            .build()
        )
        execution = sqlite_engine.start(job)
        assert execution.status is BatchStatus.COMPLETED
        stored = sqlite_engine.get_execution(execution.id)
        assert stored.exit_status == ExitStatus("COMPLETED WITH SKIPS", "2 skipped")

    def test_an_earlier_steps_status_is_not(self, sqlite_engine: Engine) -> None:
        """Only the last step's exit status becomes the job's."""
        job = (
            JobBuilder("plain")
            .step(StepBuilder("a").task(lambda se: None).listener(WithSkips()))
            .step(StepBuilder("b").task(lambda se: None))
            .build()
        )
        execution = sqlite_engine.start(job)
        assert sqlite_engine.get_execution(execution.id).exit_status.code == "COMPLETED"


class Recorder:
    """A job, step and chunk listener that logs each call with its own name."""

    def __init__(self, name: str, log: list[str]) -> None:
        self.name = name
        self.log = log

    def _note(self, what: str) -> None:
        self.log.append(f"{what}:{self.name}")

    def before_job(self, execution: JobExecution) -> None:
        self._note("before_job")

    def after_job(self, execution: JobExecution) -> None:
        self._note("after_job")

    def before_step(self, se: StepExecution) -> None:
        self._note("before_step")

    def after_step(self, se: StepExecution) -> None:
        self._note("after_step")

    def before_chunk(self, chunk: Chunk) -> None:
        self._note("before_chunk")

    def after_chunk(self, chunk: Chunk) -> None:
        self._note("after_chunk")

    def on_chunk_error(self, chunk: Chunk, error: BaseException) -> None:
        self._note("on_chunk_error")


class TestListenerOrder:
    def test_after_callbacks_run_in_reverse(self, sqlite_engine: Engine) -> None:
        """Listeners nest: before_* in registration order, after_* in reverse."""
        log: list[str] = []
        first, second = Recorder("1", log), Recorder("2", log)
        step = StepBuilder("s").chunk(10).reader([1, 2]).writer(ListWriter[Any]())
        job = (
            JobBuilder("nested")
            .step(step.listener(first).listener(second))
            .listener(first)
            .listener(second)
            .build()
        )
        assert sqlite_engine.start(job).status is BatchStatus.COMPLETED
        assert log == [
            "before_job:1",
            "before_job:2",
            "before_step:1",
            "before_step:2",
            "before_chunk:1",
            "before_chunk:2",
            "after_chunk:2",
            "after_chunk:1",
            "after_step:2",
            "after_step:1",
            "after_job:2",
            "after_job:1",
        ]

    def test_chunk_error_callbacks_run_in_reverse(self, sqlite_engine: Engine) -> None:
        """on_chunk_error, an after-callback of a failed chunk, also runs last-registered first."""
        log: list[str] = []

        def broken(items: list[Any]) -> None:
            raise RuntimeError("disk full")

        step = (
            StepBuilder("s")
            .chunk(10)
            .reader([1])
            .writer(broken)
            .listener(Recorder("1", log))
            .listener(Recorder("2", log))
        )
        execution = sqlite_engine.start(JobBuilder("broken").step(step).build())
        assert execution.status is BatchStatus.FAILED
        errors = [entry for entry in log if entry.startswith("on_chunk_error")]
        assert errors == ["on_chunk_error:2", "on_chunk_error:1"]
