"""PartitionStep on threads: plan, counters, failure, stop and restart, on real databases.

Every job copies ``part_source`` (ids 1..400) into ``part_target`` in four partitions of 100 rows
(``copy:0000`` .. ``copy:0003``), 20 rows per chunk, data and progress in one transaction.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from batchline import (
    BatchStatus,
    Engine,
    ExitStatus,
    JobBuilder,
    JobExecution,
    SqlInsertWriter,
    StepBuilder,
    StepExecution,
)
from batchline.partitioners import TablePartitioner, TableRangeReader
from batchline.steps.partition import PLAN_KEY, Partition, PartitionerSpec
from batchline.steps.partition_threads import ThreadPartitionHandler
from batchline.testing import eventually
from tests.backends import fresh_database
from tests.jobs.partition_jobs import CHUNK, copied, create_tables, expected, target

NAMES = [f"copy:{i:04d}" for i in range(4)]


@pytest.fixture(params=["sqlite", "postgresql"])
def sql_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database on SQLite and on PostgreSQL."""
    with fresh_database(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def copy_engine(sql_url: str) -> Iterator[Engine]:
    """An Engine whose repository database also holds the copy's source and target tables."""
    with Engine(sql_url, heartbeat_interval=0.5, lease=5) as engine:
        create_tables(sql_url)
        yield engine


@pytest.fixture
def sqlite_copy_engine(sqlite_url: str) -> Iterator[Engine]:
    """The same on SQLite only, for the tests of behaviour that no backend changes."""
    with Engine(sqlite_url, heartbeat_interval=0.5, lease=5) as engine:
        create_tables(sqlite_url)
        yield engine


def url_of(engine: Engine) -> str:
    bind: sa.Engine = engine.repository.engine  # type: ignore[attr-defined]
    return bind.url.render_as_string(hide_password=False)


def copy_job(
    engine: Engine,
    process: Any = None,
    *,
    partitioner: PartitionerSpec | None = None,
    on_failure: Any = "stop",
    listeners: Sequence[Any] = (),
    worker_listeners: Sequence[Any] = (),
    aggregator: Any = None,
    name: str = "partition_test_copy",
) -> Any:
    """The copy job; ``process(row)`` runs first on every row (to fail or to wait)."""
    bind: sa.Engine = engine.repository.engine  # type: ignore[attr-defined]

    def to_target(row: dict[str, Any]) -> dict[str, Any]:
        if process is not None:
            process(row)
        return {"source_id": row["id"], "payload": row["payload"]}

    worker = (
        StepBuilder("copy_rows")
        .chunk(CHUNK)
        .reader(lambda se: TableRangeReader.for_partition(se, bind, "part_source", "id"))
        .processor(to_target)
        .writer(SqlInsertWriter(target))
    )
    for listener in worker_listeners:
        worker.listener(listener)
    step = StepBuilder("copy").partition(
        worker,
        partitioner or TablePartitioner(bind, "part_source", "id"),
        grid_size=4,
        handler=ThreadPartitionHandler(workers=4),
        on_failure=on_failure,
        aggregator=aggregator,
    )
    for listener in listeners:
        step.listener(listener)
    return JobBuilder(name).step(step).build()


def steps_of(engine: Engine, execution: JobExecution) -> dict[str, StepExecution]:
    return {s.step_name: s for s in engine.step_executions(execution.id)}


class Recorder:
    """A partition listener and an aggregator that record what they were called with."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.plan: list[Partition] = []
        self.errors: list[BaseException] = []
        self.aggregated: list[str] = []

    def before_partition(self, se: StepExecution) -> None:
        self.calls.append("before")

    def after_partition(self, se: StepExecution, partitions: Sequence[Partition]) -> None:
        self.calls.append("after")
        self.plan = list(partitions)

    def on_partition_error(self, se: StepExecution, error: BaseException) -> None:
        self.errors.append(error)

    def aggregate(self, manager: StepExecution, partitions: Sequence[StepExecution]) -> None:
        self.aggregated = [p.step_name for p in partitions]
        manager.context["copied"] = sum(p.write_count for p in partitions)


class TestPartitionedRun:
    def test_partitions_are_step_executions_with_contexts_and_counters(
        self, sqlite_copy_engine: Engine
    ) -> None:
        """Each partition is a StepExecution with its range; the manager holds plan and sums."""
        engine = sqlite_copy_engine
        recorder = Recorder()
        job = copy_job(engine, listeners=[recorder], aggregator=recorder)
        execution = engine.start(job)
        assert execution.status is BatchStatus.COMPLETED, execution.exit_status
        steps = steps_of(engine, execution)
        assert sorted(steps) == ["copy", *NAMES]
        for index, name in enumerate(NAMES):
            part = steps[name]
            assert part.context["partition.min"] == 100 * index + 1
            assert part.context["partition.max"] == 100 * (index + 1)
            assert part.context["part_source.last_key"] == 100 * (index + 1)
            assert (part.read_count, part.write_count, part.commit_count) == (100, 100, 5)
        manager = steps["copy"]
        assert (manager.read_count, manager.write_count, manager.commit_count) == (400, 400, 20)
        assert [p["name"] for p in manager.context[PLAN_KEY]] == NAMES
        assert manager.context["copied"] == 400
        assert recorder.calls == ["before", "after"]
        assert [p.name for p in recorder.plan] == NAMES
        assert recorder.aggregated == NAMES
        assert copied(url_of(engine)) == expected()

    def test_failing_partition_reruns_alone_and_copies_exactly_once(
        self, copy_engine: Engine
    ) -> None:
        """With one partition failing, a restart runs only it, from its last commit."""
        engine = copy_engine
        failing = {"on": True}

        def process(row: dict[str, Any]) -> None:
            if row["id"] == 250 and failing["on"]:
                raise ValueError("row 250 is bad")

        engine.register(copy_job(engine, process, on_failure="continue"))
        first = engine.start("partition_test_copy")
        assert first.status is BatchStatus.FAILED
        before = steps_of(engine, first)
        assert {n: before[n].status for n in NAMES} == {
            "copy:0000": BatchStatus.COMPLETED,
            "copy:0001": BatchStatus.COMPLETED,
            "copy:0002": BatchStatus.FAILED,
            "copy:0003": BatchStatus.COMPLETED,
        }
        manager = before["copy"]
        assert manager.status is BatchStatus.FAILED
        assert "partition 'copy:0002' failed" in manager.exit_status.description
        assert "row 250 is bad" in manager.exit_status.description  # the partition's cause
        assert before["copy:0002"].write_count == 40  # ids 201-240 committed
        assert manager.write_count == 340

        failing["on"] = False
        second = engine.restart(first.id)
        assert second.status is BatchStatus.COMPLETED, second.exit_status
        after = steps_of(engine, second)
        assert sorted(after) == ["copy", "copy:0002"]
        assert after["copy:0002"].read_count == 60  # ids 241-300
        assert after["copy"].read_count == 60
        assert after["copy"].context[PLAN_KEY] == manager.context[PLAN_KEY]
        assert copied(url_of(engine)) == expected()

    def test_failure_stops_the_other_partitions_after_their_chunk(
        self, sqlite_copy_engine: Engine
    ) -> None:
        """A failed partition stops its siblings at their next chunk boundary, STOPPED."""
        engine = sqlite_copy_engine
        failed = threading.Event()
        all_in_third_chunk = threading.Barrier(4, timeout=30)
        failing = {"on": True}

        class FailureSeen:
            def after_step(self, se: StepExecution) -> ExitStatus | None:
                if se.status is BatchStatus.FAILED:
                    failed.set()
                return None

        def process(row: dict[str, Any]) -> None:
            if not failing["on"]:
                return
            if row["id"] % 100 != 50:
                return
            all_in_third_chunk.wait()  # item 50 of every partition is in its third chunk
            if row["id"] == 250:
                raise ValueError("row 250 is bad")
            assert failed.wait(30), "the failing partition never failed"

        engine.register(copy_job(engine, process, worker_listeners=[FailureSeen()]))
        first = engine.start("partition_test_copy")
        assert first.status is BatchStatus.FAILED
        before = steps_of(engine, first)
        assert before["copy:0002"].status is BatchStatus.FAILED
        for name in ("copy:0000", "copy:0001", "copy:0003"):
            assert before[name].status is BatchStatus.STOPPED, name
            assert before[name].read_count == 60, name  # finished the chunk it was in
            assert "another partition" in before[name].exit_status.description
        assert before["copy"].status is BatchStatus.FAILED
        assert "row 250 is bad" in before["copy"].exit_status.description

        failing["on"] = False
        second = engine.restart(first.id)
        assert second.status is BatchStatus.COMPLETED, second.exit_status
        after = steps_of(engine, second)
        assert sorted(after) == ["copy", *NAMES]
        assert after["copy"].read_count == 400 - 3 * 60 - 40
        assert copied(url_of(engine)) == expected()

    def test_stop_reaches_every_partition_and_restart_completes(self, copy_engine: Engine) -> None:
        """A stop ends every running partition and the step STOPPED; a restart completes."""
        engine = copy_engine
        gate = threading.Event()

        def process(row: dict[str, Any]) -> None:
            if row["id"] % 100 == 30:  # each partition waits inside its second chunk
                assert gate.wait(30), "the test never opened the gate"

        engine.register(copy_job(engine, process))
        handle = engine.start_async("partition_test_copy")

        def all_committed() -> bool:
            parts = [s for s in engine.step_executions(handle.execution_id) if ":" in s.step_name]
            return len(parts) == 4 and all(p.commit_count >= 1 for p in parts)

        try:
            eventually(all_committed, interval=0.02, message="a partition never committed")
            engine.stop(handle.execution_id)
        finally:
            gate.set()
        first = handle.wait(60)
        assert first.status is BatchStatus.STOPPED
        before = steps_of(engine, first)
        assert {n: before[n].status for n in ["copy", *NAMES]} == dict.fromkeys(
            ["copy", *NAMES], BatchStatus.STOPPED
        )
        assert all(before[n].read_count == 40 for n in NAMES)  # no chunk after the stop

        second = engine.restart(first.id)
        assert second.status is BatchStatus.COMPLETED, second.exit_status
        after = steps_of(engine, second)
        assert all(after[n].read_count == 60 for n in NAMES)
        assert copied(url_of(engine)) == expected()


class TestPlan:
    def test_partitioner_failure_leaves_the_step_restartable(
        self, sqlite_copy_engine: Engine
    ) -> None:
        """A partitioner that raises fails the step; the restart partitions afresh (#4736)."""
        engine = sqlite_copy_engine
        bind = engine.repository.engine  # type: ignore[attr-defined]
        calls = {"n": 0}

        def partitioner(se: StepExecution) -> TablePartitioner:
            calls["n"] += 1
            if calls["n"] == 1:
                raise OSError("source not reachable")
            return TablePartitioner(bind, "part_source", "id")

        recorder = Recorder()
        engine.register(copy_job(engine, partitioner=partitioner, listeners=[recorder]))
        first = engine.start("partition_test_copy")
        assert first.status is BatchStatus.FAILED
        assert "the partitioner failed" in steps_of(engine, first)["copy"].exit_status.description
        assert [type(e) for e in recorder.errors] == [OSError]
        second = engine.restart(first.id)
        assert second.status is BatchStatus.COMPLETED, second.exit_status
        assert calls["n"] == 2
        assert copied(url_of(engine)) == expected()

    def test_restart_reuses_the_stored_plan(self, sqlite_copy_engine: Engine) -> None:
        """A restart takes the plan from the manager's context, never from the partitioner."""
        engine = sqlite_copy_engine
        failing = {"on": True}

        def process(row: dict[str, Any]) -> None:
            if row["id"] == 20 and failing["on"]:
                raise ValueError("row 20 is bad")

        engine.register(copy_job(engine, process))
        first = engine.start("partition_test_copy")
        assert first.status is BatchStatus.FAILED

        def exploding(se: StepExecution) -> TablePartitioner:
            raise AssertionError("the partitioner was asked again on a restart")

        engine.register(copy_job(engine, partitioner=exploding), replace=True)
        second = engine.restart(first.id)
        assert second.status is BatchStatus.COMPLETED, second.exit_status
        assert copied(url_of(engine)) == expected()

    def test_rerun_of_a_completed_step_plans_afresh(self, sqlite_copy_engine: Engine) -> None:
        """A manager allowed to start again when complete plans again and reruns every partition."""
        engine = sqlite_copy_engine
        bind = engine.repository.engine  # type: ignore[attr-defined]
        worker = StepBuilder("count").task(lambda se: None)
        step = (
            StepBuilder("count")
            .partition(worker, TablePartitioner(bind, "part_source", "id"), grid_size=2)
            .allow_start_if_complete()
        )
        job = JobBuilder("rerun").step(step).step(StepBuilder("fail").task(fail_once())).build()
        engine.register(job)
        first = engine.start("rerun")
        assert first.status is BatchStatus.FAILED
        second = engine.restart(first.id)
        assert second.status is BatchStatus.COMPLETED
        assert sorted(steps_of(engine, second)) == ["count", "count:0000", "count:0001", "fail"]


class TestThreadSafety:
    def test_a_reader_object_shared_by_thread_partitions_is_refused(
        self, sqlite_engine: Engine
    ) -> None:
        """One reader object cannot serve partitions on threads: the step fails saying so."""
        from batchline import IterableReader

        worker = StepBuilder("w").chunk(5).reader(IterableReader([1, 2, 3])).writer(print)
        job = JobBuilder("shared_reader").step(StepBuilder("p").partition(worker, _Fixed())).build()
        execution = sqlite_engine.start(job)
        assert execution.status is BatchStatus.FAILED
        assert "reader factory" in execution.exit_status.description

    def test_a_list_writer_shared_by_thread_partitions_is_refused(
        self, sqlite_engine: Engine
    ) -> None:
        """A ListWriter object given to a thread-partitioned worker: the step fails naming the
        writer and the factory to give, instead of partitions cutting each other's items."""
        from batchline import ListWriter

        worker = (
            StepBuilder("w")
            .chunk(5)
            .reader(lambda se: iter(range(se.context["n"] * 10)))
            .writer(ListWriter())
        )
        job = JobBuilder("shared_list").step(StepBuilder("p").partition(worker, _Fixed())).build()
        execution = sqlite_engine.start(job)
        assert execution.status is BatchStatus.FAILED
        assert "share the worker's writer object; give a writer factory" in (
            execution.exit_status.description
        )


class _Fixed:
    def partition(self, grid_size: int) -> list[dict[str, Any]]:
        return [{"n": 1}, {"n": 2}]


def fail_once() -> Any:
    state = {"failed": False}

    def task(se: StepExecution) -> None:
        if not state["failed"]:
            state["failed"] = True
            raise RuntimeError("first run fails")

    return task
