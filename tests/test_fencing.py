"""A lease is a fence: a process that cannot prove it holds its execution writes nothing more.

The process-level campaign (SIGSTOP past the lease) is tests/test_frozen.py; these are the parts
one by one: no footer from a step that did not complete, no file write after the lease is lost,
recovery that never declares a renewed execution dead, and the exclusive lock on output files.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import time
from pathlib import Path
from typing import Any

import pytest

from batchline import (
    BatchStatus,
    ConfigurationError,
    DelimitedWriter,
    Engine,
    ExecutionContext,
    FixedWidthWriter,
    JobBuilder,
    JobExecutionAlreadyRunning,
    JobParameters,
    JsonLinesWriter,
    LeaseLost,
    OutputInUse,
    StepBuilder,
)
from batchline.model import utcnow
from batchline.testing import eventually


def rows(n: int) -> list[dict[str, Any]]:
    return [{"id": i, "name": f"item {i}"} for i in range(1, n + 1)]


def _writer(path: Path) -> DelimitedWriter:
    return DelimitedWriter(
        str(path), fields=["id", "name"], header=True, footer=lambda n: f"# {n} rows"
    )


def _silence_heartbeat(engine: Engine) -> None:
    """Stop the engine's heartbeat thread (the test's window into it): only chunks beat."""
    engine._closed.set()
    engine._heart.join()


class TestFooter:
    def test_a_failed_step_writes_no_footer_and_the_restart_writes_one(
        self, sqlite_engine: Engine, tmp_path: Path
    ) -> None:
        """Item 7 fails: the file holds the committed chunks and no footer; after the restart
        it holds every row and one footer, at its end."""
        target = tmp_path / "out.csv"
        failing = {"on": True}

        def process(row: dict[str, Any]) -> dict[str, Any]:
            if failing["on"] and row["id"] == 7:
                raise RuntimeError("seven")
            return row

        step = StepBuilder("s").chunk(3).reader(rows(10)).processor(process)
        job = JobBuilder("footer").step(step.writer(_writer(target))).build()
        failed = sqlite_engine.start(job)
        sqlite_engine.register(job)
        assert failed.status is BatchStatus.FAILED
        assert target.read_text().splitlines() == [
            "id,name",
            *(f"{i},item {i}" for i in range(1, 7)),
        ]
        failing["on"] = False
        assert sqlite_engine.restart(failed.id).status is BatchStatus.COMPLETED
        lines = target.read_text().splitlines()
        assert lines == ["id,name", *(f"{i},item {i}" for i in range(1, 11)), "# 10 rows"]

    def test_a_stopped_step_writes_no_footer(self, sqlite_engine: Engine, tmp_path: Path) -> None:
        """A step stopped after its first chunk leaves its file without a footer."""
        target = tmp_path / "out.csv"

        class StopAfterFirstChunk:
            def after_chunk(self, chunk: Any) -> None:
                execution = chunk.step_execution.job_execution
                sqlite_engine.stop(execution.id)

        step = (
            StepBuilder("s")
            .chunk(3)
            .reader(rows(10))
            .writer(_writer(target))
            .listener(StopAfterFirstChunk())
        )
        stopped = sqlite_engine.start(JobBuilder("stopped").step(step).build())
        assert stopped.status is BatchStatus.STOPPED
        assert "#" not in target.read_text()


class TestLostLease:
    def test_no_file_write_once_another_process_recovered_the_execution(
        self, sqlite_url: str, tmp_path: Path
    ) -> None:
        """After chunk 2 another process marks the execution FAILED (as recover does); once the
        heartbeat reports the lease lost, the step writes no further byte and fails naming it."""
        target = tmp_path / "out.csv"
        with Engine(sqlite_url, heartbeat_interval=0.1, lease=30) as engine:
            taken = {"done": False}

            def process(row: dict[str, Any]) -> dict[str, Any]:
                if row["id"] == 7 and not taken["done"]:
                    taken["done"] = True
                    [running] = engine.list_executions("leased")
                    with Engine(sqlite_url) as other:
                        other.repository.mark_failed(running.id, "taken over by another process")
                    control = engine._running[running.id]  # the test's window into the engine
                    eventually(
                        lambda: control.stopping, timeout=10, message="the heartbeat never saw it"
                    )
                return row

            step = StepBuilder("s").chunk(3).reader(rows(12)).processor(process)
            job = JobBuilder("leased").step(step.writer(_writer(target))).build()
            execution = engine.start(job)
        assert execution.status is BatchStatus.FAILED
        # The row was ended by the other process: its account stands, ours is in failures.
        assert execution.exit_status.description == "taken over by another process"
        [lost] = [f for f in execution.failures if isinstance(f, LeaseLost)]
        assert "no longer running in the repository" in str(lost)
        assert target.read_text().splitlines() == [
            "id,name",
            *(f"{i},item {i}" for i in range(1, 7)),
        ]

    def test_a_stale_lease_refuses_the_write(self, sqlite_url: str, tmp_path: Path) -> None:
        """With no heartbeat accepted for longer than the lease, the next chunk writes nothing."""
        target = tmp_path / "out.csv"
        with Engine(sqlite_url, heartbeat_interval=0.2, lease=0.5) as engine:
            _silence_heartbeat(engine)

            def process(row: dict[str, Any]) -> dict[str, Any]:
                if row["id"] == 4:
                    time.sleep(0.6)  # no heartbeat comes: the lease runs out
                return row

            step = StepBuilder("s").chunk(3).reader(rows(9)).processor(process)
            job = JobBuilder("stale").step(step.writer(_writer(target))).build()
            execution = engine.start(job)
        assert execution.status is BatchStatus.FAILED
        assert "past the 0.5s lease" in execution.exit_status.description
        assert target.read_text().splitlines() == ["id,name", "1,item 1", "2,item 2", "3,item 3"]


class TestThawed:
    def test_no_heartbeat_once_a_thread_saw_the_lease_run_out(
        self, db_url: str, tmp_path: Path
    ) -> None:
        """Once the chunk's thread has seen the lease run out (a thawed process), the engine's
        heartbeat renews it no more: the repository's heartbeat stays where it was, so a
        restart can recover the execution, and the step fails on the lost lease."""
        target = tmp_path / "out.csv"
        with Engine(db_url, heartbeat_interval=0.1, lease=5) as engine:
            beats: list[dt.datetime | None] = []

            def process(row: dict[str, Any]) -> dict[str, Any]:
                if row["id"] == 4 and not beats:
                    [running] = engine.list_executions("thawed")
                    lease = engine._running[running.id].lease  # the test's window into it
                    assert lease is not None
                    lease._renewed -= 60  # how a minute frozen looks to this process's clock
                    with pytest.raises(LeaseLost):
                        lease.check("a thawed chunk")
                    beats.append(engine.repository.heartbeat_of(running.id))
                    time.sleep(1.0)  # ten heartbeat intervals
                    beats.append(engine.repository.heartbeat_of(running.id))
                return row

            step = StepBuilder("s").chunk(3).reader(rows(9)).processor(process)
            job = JobBuilder("thawed").step(step.writer(_writer(target))).build()
            execution = engine.start(job)
        assert execution.status is BatchStatus.FAILED
        assert "lease" in execution.exit_status.description
        assert beats[0] is not None and beats[1] == beats[0]


class TestChunkHeartbeat:
    def test_chunk_commits_keep_the_lease_when_the_engine_does_not_beat(
        self, db_url: str, tmp_path: Path
    ) -> None:
        """The engine's heartbeat thread is stopped and the chunks take
        3 s in all against a 1 s lease: the commits carry the heartbeat, the job completes and
        the repository's heartbeat moved."""
        target = tmp_path / "out.csv"
        with Engine(db_url, heartbeat_interval=0.5, lease=1.0) as engine:
            _silence_heartbeat(engine)

            def process(row: dict[str, Any]) -> dict[str, Any]:
                time.sleep(0.1)
                return row

            step = StepBuilder("s").chunk(2).reader(rows(30)).processor(process)
            job = JobBuilder("beating").step(step.writer(_writer(target))).build()
            launched = utcnow()
            execution = engine.start(job)
            beat = engine.repository.heartbeat_of(execution.id)
        assert execution.status is BatchStatus.COMPLETED, execution.exit_status.description
        assert beat is not None and beat >= launched + dt.timedelta(seconds=2)


class TestRecovery:
    def test_recover_never_fails_an_execution_that_renewed_its_lease(self, engine: Engine) -> None:
        """mark_failed with stale_before refuses an execution whose heartbeat is newer, in the
        same write (a recover racing a heartbeat)."""
        execution = engine.repository.create_job_execution("alive", JobParameters())
        execution.set_status(BatchStatus.STARTED)
        engine.repository.update_job_execution(execution)
        engine.repository.heartbeat([execution.id])
        long_ago = utcnow() - dt.timedelta(hours=1)
        with pytest.raises(JobExecutionAlreadyRunning, match="renewed its lease"):
            engine.repository.mark_failed(execution.id, "dead?", stale_before=long_ago)
        assert engine.repository.get_job_execution(execution.id).status is BatchStatus.STARTED
        later = utcnow() + dt.timedelta(seconds=5)
        failed = engine.repository.mark_failed(execution.id, "dead", stale_before=later)
        assert failed.status is BatchStatus.FAILED

    def test_no_step_is_created_under_an_execution_that_stopped_running(
        self, engine: Engine
    ) -> None:
        """The repository creates a step execution only under a running job execution: a
        process that lost its execution (recovered, abandoned) creates nothing more."""
        execution = engine.repository.create_job_execution("taken", JobParameters())
        execution.set_status(BatchStatus.STARTED)
        engine.repository.update_job_execution(execution)
        first = engine.repository.create_step_execution(execution, "before", None)
        engine.repository.mark_failed(execution.id, "recovered by another process")
        with pytest.raises(LeaseLost, match="step 'after' is not created"):
            engine.repository.create_step_execution(execution, "after", None)
        assert [s.id for s in engine.step_executions(execution.id)] == [first.id]

    def test_heartbeat_reports_which_executions_are_still_held(self, engine: Engine) -> None:
        """heartbeat returns the executions still running; one marked FAILED elsewhere is not."""
        held = engine.repository.create_job_execution("a", JobParameters({"n": 1}))
        lost = engine.repository.create_job_execution("a", JobParameters({"n": 2}))
        engine.repository.mark_failed(lost.id, "recovered elsewhere")
        assert engine.repository.heartbeat([held.id, lost.id]) == [held.id]


class TestOutputLock:
    def test_a_file_held_by_another_writer_is_not_cut(self, tmp_path: Path) -> None:
        """While another open file description holds the lock, open waits, then raises
        OutputInUse; the file is left as it was."""
        target = tmp_path / "out.csv"
        target.write_text("id,name\n1,kept\n")
        with target.open("r+b") as holder:
            fcntl.flock(holder.fileno(), fcntl.LOCK_EX)
            writer = _writer(target)
            writer.lock_timeout = 0.3
            with pytest.raises(OutputInUse, match="another process still holds this file"):
                writer.open(ExecutionContext())
        assert target.read_text() == "id,name\n1,kept\n"
        writer.open(ExecutionContext())  # released: now it starts the file afresh
        writer.close()
        assert target.read_text() == "id,name\n"

    @pytest.mark.parametrize("kind", ["delimited", "fixed_width", "jsonl"])
    def test_every_file_writer_takes_lock_timeout(self, tmp_path: Path, kind: str) -> None:
        """Each file writer's constructor takes lock_timeout (it was FileWriter's alone) and
        waits that long, not the default minute, for a file another process holds."""
        target = tmp_path / "out.txt"
        target.write_text("kept\n")
        writers = {
            "delimited": lambda: DelimitedWriter(str(target), fields=["id"], lock_timeout=0.2),
            "fixed_width": lambda: FixedWidthWriter(str(target), [("id", 4)], lock_timeout=0.2),
            "jsonl": lambda: JsonLinesWriter(str(target), lock_timeout=0.2),
        }
        writer = writers[kind]()
        assert writer.lock_timeout == 0.2
        with target.open("r+b") as holder:
            fcntl.flock(holder.fileno(), fcntl.LOCK_EX)
            with pytest.raises(OutputInUse):
                writer.open(ExecutionContext())
        assert target.read_text() == "kept\n"

    def test_a_wrong_csv_format_parameter_is_refused_when_built(self, tmp_path: Path) -> None:
        """An unknown csv format parameter is a one-line ConfigurationError naming the file, at
        construction, not a TypeError at the first chunk's write."""
        with pytest.raises(ConfigurationError, match=r"out\.csv: DelimitedWriter: .*quotechr"):
            DelimitedWriter(str(tmp_path / "out.csv"), fields=["id"], quotechr="'")


class TestFallbackFailure:
    """A process whose step-end write fails records FAILED only on a row it still owns."""

    def _started(self, engine: Engine) -> Any:
        job = JobBuilder("fallback").step(StepBuilder("s").task(lambda se: None)).build()
        engine.register(job)
        repo = engine.repository
        execution = repo.create_job_execution("fallback", JobParameters())
        execution.set_status(BatchStatus.STARTED)
        repo.update_job_execution(execution)
        se = repo.create_step_execution(execution, "s", None)
        se.set_status(BatchStatus.STARTED)
        repo.update_step_execution(se)
        return se

    def test_a_row_offered_to_another_worker_is_left_alone(self, engine: Engine) -> None:
        """The manager offered the partition again (STARTING, one version further) while its
        old worker was frozen; the thawed worker's end write is refused, and its fallback must
        not fail the row another worker is about to claim."""
        from batchline.errors import OptimisticLockingFailure
        from batchline.steps.base import _record_failure_instead

        se = self._started(engine)
        assert engine.repository.reoffer_step_execution(se.id, "worker lost")
        _record_failure_instead(se, engine.repository, OptimisticLockingFailure("changed"))
        assert engine.get_step_execution(se.id).status is BatchStatus.STARTING

    def test_a_row_claimed_elsewhere_is_left_alone(self, engine: Engine) -> None:
        from batchline.errors import OptimisticLockingFailure
        from batchline.steps.base import _record_failure_instead

        se = self._started(engine)
        repo = engine.repository
        assert repo.reoffer_step_execution(se.id, "worker lost")
        other = repo.get_step_execution(se.id)
        other.set_status(BatchStatus.STARTED)
        repo.update_step_execution(other)  # the claim of another worker
        _record_failure_instead(se, repo, OptimisticLockingFailure("changed"))
        assert engine.get_step_execution(se.id).status is BatchStatus.STARTED

    def test_a_row_this_process_left_running_is_failed(self, engine: Engine) -> None:
        from batchline.steps.base import _record_failure_instead

        se = self._started(engine)
        _record_failure_instead(se, engine.repository, RuntimeError("context too large"))
        stored = engine.get_step_execution(se.id)
        assert stored.status is BatchStatus.FAILED
        assert "context too large" in stored.exit_status.description
