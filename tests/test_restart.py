"""Restart: a job failing at chunk k fails clearly, and its restart resumes at chunk k.

A two-step job: ``prepare`` (a task that counts its runs), then ``load`` (a chunk step reading
ITEMS five at a time and inserting into a table through the chunk's connection). Item 113, the
13th, in chunk 3, fails once in the processor or in the writer.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
import sqlalchemy as sa

from batchline import (
    BatchStatus,
    Chunk,
    Engine,
    IterableReader,
    Job,
    JobBuilder,
    JobExecution,
    JobInstanceAlreadyComplete,
    JobParameters,
    JobRestartRefused,
    NoSuchExecution,
    ParameterError,
    SqlInsertWriter,
    StepBuilder,
    StepExecution,
)

ITEMS = list(range(101, 124))  # 23 items: chunks 101-105, ..., 111-115 (k=3), ..., 121-123
CHUNK = 5
BAD = 113  # 13th item, in chunk 3
PARAMS = JobParameters({"date": dt.date(2026, 1, 2)}, non_identifying={"note": "first try"})

tables = sa.MetaData()
loaded = sa.Table(
    "restart_loaded",
    tables,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("item", sa.Integer, nullable=False),
)


class RecordingReader(IterableReader[int]):
    """An IterableReader that records every item it returns."""

    def __init__(self, items: list[int], seen: list[int]) -> None:
        super().__init__(items)
        self.seen = seen

    def read(self) -> int | None:
        item = super().read()
        if item is not None:
            self.seen.append(item)
        return item


@dataclass
class Harness:
    """The job and what it did, per job execution id."""

    engine: Engine
    failing: str
    restartable: bool = True
    prepared: int = 0
    bad: set[int] = field(default_factory=lambda: {BAD})  # each fails once
    reads: dict[int, list[int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.bind: sa.Engine = self.engine.repository.engine  # type: ignore[attr-defined]
        tables.create_all(self.bind)
        self.insert = SqlInsertWriter(loaded)
        self.job: Job = self.engine.register(self.build())

    def build(self) -> Job:
        def prepare(se: StepExecution) -> None:
            self.prepared += 1

        def reader(se: StepExecution) -> RecordingReader:
            return RecordingReader(ITEMS, self.reads.setdefault(se.job_execution_id, []))

        def process(item: int) -> dict[str, int]:
            if self.failing == "processor" and item in self.bad:
                self.bad.discard(item)
                raise ValueError(f"cannot process {item}")
            return {"item": item}

        def write(items: Sequence[dict[str, Any]], chunk: Chunk) -> None:
            self.insert.write(items, chunk)  # rolled back with the chunk when we raise below
            failed = sorted(self.bad & {item["item"] for item in items})
            if self.failing == "writer" and failed:
                self.bad.discard(failed[0])
                raise ValueError(f"cannot write {failed[0]}")

        load = StepBuilder("load").chunk(CHUNK).reader(reader).processor(process).writer(write)
        return (
            JobBuilder("nightly_load")
            .step(StepBuilder("prepare").task(prepare))
            .step(load)
            .restartable(self.restartable)
            .build()
        )

    def loaded_items(self) -> list[int]:
        with self.bind.connect() as conn:
            return sorted(conn.execute(sa.select(loaded.c.item)).scalars())

    def load_step(self, execution: JobExecution) -> StepExecution:
        (step,) = [s for s in self.engine.step_executions(execution.id) if s.step_name == "load"]
        return step


@pytest.fixture(params=["processor", "writer"])
def harness(request: pytest.FixtureRequest, engine: Engine) -> Harness:
    return Harness(engine, request.param)


class TestFailureAtChunk:
    def test_execution_fails_with_job_step_and_item_named(self, harness: Harness) -> None:
        """Item 13 failing fails step and job with job, step, chunk, item named; chunks 1-2 kept."""
        first = harness.engine.start("nightly_load", PARAMS)
        stored = harness.engine.get_execution(first.id)
        assert first.status is stored.status is BatchStatus.FAILED
        assert stored.exit_status.code == "FAILED"
        step = harness.load_step(first)
        assert step.status is BatchStatus.FAILED
        position = "processing item 13" if harness.failing == "processor" else "items 11-15"
        for message in (step.exit_status.description, stored.exit_status.description):
            assert "job 'nightly_load' step 'load' chunk 3" in message
            assert position in message
            assert f"cannot {'process' if harness.failing == 'processor' else 'write'} 113" in (
                message
            )
        assert "step 'load' FAILED" in stored.exit_status.description
        assert harness.loaded_items() == ITEMS[:10]
        assert (step.read_count, step.write_count, step.commit_count, step.rollback_count) == (
            10,
            10,
            2,
            1,
        )


class TestRestartResumes:
    @pytest.mark.parametrize(
        ("harness", "by"),
        [("processor", "execution_id"), ("writer", "job_name")],
        indirect=["harness"],
    )
    def test_restart_resumes_at_failed_chunk_and_skips_completed_step(
        self, harness: Harness, by: str
    ) -> None:
        """Restart: same instance and params, done step skipped, resumes at chunk 3, once each."""
        engine = harness.engine
        first = engine.start("nightly_load", PARAMS)
        assert first.status is BatchStatus.FAILED
        if by == "execution_id":
            second = engine.restart(first.id)
        else:
            second = engine.restart(job_name="nightly_load")

        assert second.status is BatchStatus.COMPLETED, second.exit_status
        assert second.id != first.id
        assert second.instance.id == first.instance.id
        assert engine.get_execution(second.id).parameters == PARAMS
        assert [e.id for e in engine.list_executions("nightly_load")] == [second.id, first.id]
        assert harness.prepared == 1
        assert [s.step_name for s in engine.step_executions(second.id)] == ["load"]
        assert harness.reads[first.id][0] == ITEMS[0]
        assert harness.reads[second.id][0] == ITEMS[10]  # first item of chunk 3
        assert harness.loaded_items() == ITEMS

        before, after = harness.load_step(first), harness.load_step(second)
        assert (after.read_count, after.write_count, after.commit_count) == (13, 13, 3)
        assert before.read_count + after.read_count == len(ITEMS)
        assert before.write_count + after.write_count == len(ITEMS)
        assert before.commit_count + after.commit_count == 5
        assert before.rollback_count + after.rollback_count == 1

    def test_failure_after_restart_names_absolute_item_position(self, harness: Harness) -> None:
        """A failure after a restart names chunk and item positions in the whole input."""
        engine = harness.engine
        first = engine.start("nightly_load", PARAMS)
        harness.bad.add(118)  # 18th item, in chunk 4 of the input
        second = engine.restart(first.id)
        assert second.status is BatchStatus.FAILED
        message = harness.load_step(second).exit_status.description
        assert "job 'nightly_load' step 'load' chunk 4" in message
        position = "processing item 18" if harness.failing == "processor" else "items 16-20"
        assert position in message, message.splitlines()[0]
        third = engine.restart(second.id)
        assert third.status is BatchStatus.COMPLETED, third.exit_status
        assert harness.reads[third.id][0] == ITEMS[15]
        assert harness.loaded_items() == ITEMS


class TestLaunchRefusals:
    def test_completed_instance_refuses_start_and_restart(self, engine: Engine) -> None:
        """A COMPLETED instance refuses start and restart; new identifying parameters run anew."""
        harness = Harness(engine, "none")
        done = engine.start("nightly_load", PARAMS)
        assert done.status is BatchStatus.COMPLETED
        same = JobParameters({"date": dt.date(2026, 1, 2)}, non_identifying={"note": "again"})
        with pytest.raises(JobInstanceAlreadyComplete, match="nightly_load") as refused:
            engine.start("nightly_load", same)
        assert f"execution {done.id}" in str(refused.value)
        with pytest.raises(JobInstanceAlreadyComplete):
            engine.restart(done.id)
        assert [e.id for e in engine.list_executions("nightly_load")] == [done.id]

        other = engine.start("nightly_load", {"date": dt.date(2026, 1, 3)})
        assert other.status is BatchStatus.COMPLETED
        assert other.instance.id != done.instance.id
        assert harness.prepared == 2

    def test_not_restartable_job_refuses_restart(self, engine: Engine) -> None:
        """A failed restartable=False job refuses restart and re-start, naming the job."""
        harness = Harness(engine, "processor", restartable=False)
        failed = engine.start("nightly_load", PARAMS)
        assert failed.status is BatchStatus.FAILED
        with pytest.raises(JobRestartRefused, match=r"'nightly_load'.*not restartable"):
            engine.restart(failed.id)
        with pytest.raises(JobRestartRefused, match="not restartable"):
            engine.start("nightly_load", PARAMS)
        assert [e.id for e in engine.list_executions("nightly_load")] == [failed.id]
        assert harness.prepared == 1


class TestOlderExecutions:
    def test_abandoning_an_older_execution_ends_the_instance(self, engine: Engine) -> None:
        """An abandoned older execution makes its instance refuse restart and start (Spring)."""
        Harness(engine, "processor", bad={BAD, BAD + 1})
        first = engine.start("nightly_load", PARAMS)
        second = engine.restart(first.id)
        assert second.status is BatchStatus.FAILED
        assert engine.abandon(first.id).status is BatchStatus.ABANDONED
        with pytest.raises(JobInstanceAlreadyComplete, match=f"abandoned .execution {first.id}"):
            engine.restart(second.id)
        with pytest.raises(JobInstanceAlreadyComplete, match="abandoned"):
            engine.start("nightly_load", PARAMS)
        assert len(engine.list_executions("nightly_load")) == 2

    def test_only_the_last_execution_restarts(self, engine: Engine) -> None:
        """Restarting an older FAILED execution is refused, naming the last one to restart."""
        Harness(engine, "processor", bad={BAD, BAD + 1})
        first = engine.start("nightly_load", PARAMS)
        second = engine.restart(first.id)
        with pytest.raises(JobRestartRefused, match=f"restart execution {second.id} instead"):
            engine.restart(first.id)
        assert len(engine.list_executions("nightly_load")) == 2


class TestRestartByNameChoosesTheRightInstance:
    def test_newer_completed_instance_does_not_hide_an_older_failure(
        self, sqlite_engine: Engine
    ) -> None:
        """Restart by job name resumes the newest failed instance, even if a newer one completed."""
        broken = {"day": 1}

        def task(step: StepExecution) -> None:
            if step.parameters["day"] == broken["day"]:
                raise RuntimeError("bad input for day 1")

        job = sqlite_engine.register(
            JobBuilder("by_name").step(StepBuilder("only").task(task)).build()
        )
        failed = sqlite_engine.start(job, {"day": 1})
        assert sqlite_engine.start(job, {"day": 2}).status is BatchStatus.COMPLETED
        broken["day"] = 0
        again = sqlite_engine.restart(job_name="by_name")
        assert again.instance.id == failed.instance.id
        assert again.status is BatchStatus.COMPLETED
        with pytest.raises(NoSuchExecution, match="no failed or stopped execution"):
            sqlite_engine.restart(job_name="by_name")


class TestJobContextOnRestart:
    def test_restart_starts_from_the_last_job_context(self, engine: Engine) -> None:
        """Step 1 publishes a value in the job context, step 2 fails; the restart's step 2
        (step 1 is skipped as completed) sees the value."""
        seen: list[object] = []
        failing = {"on": True}

        def publish(se: StepExecution) -> None:
            assert se.job_execution is not None
            se.job_execution.context["token"] = "abc-42"

        def consume(se: StepExecution) -> None:
            assert se.job_execution is not None
            seen.append(se.job_execution.context.get("token"))
            if failing["on"]:
                raise RuntimeError("step 2 down")

        job = (
            JobBuilder("ctx")
            .step(StepBuilder("publish").task(publish))
            .step(StepBuilder("consume").task(consume))
            .build()
        )
        first = engine.start(job, {"day": "1"})
        assert first.status is BatchStatus.FAILED
        failing["on"] = False
        engine.register(job, replace=True)
        second = engine.restart(first.id)
        assert second.status is BatchStatus.COMPLETED
        assert seen == ["abc-42", "abc-42"]
        assert engine.get_execution(second.id).context["token"] == "abc-42"


class TestRestartValidates:
    def test_restart_refuses_parameters_the_job_no_longer_accepts(self, engine: Engine) -> None:
        """A job re-registered with a new required parameter refuses the restart of an
        execution launched without it, as start does, and records nothing."""
        failing = {"on": True}

        def task(se: StepExecution) -> None:
            if failing["on"]:
                raise RuntimeError("down")

        old = JobBuilder("revalidated").step(StepBuilder("only").task(task)).build()
        first = engine.start(old, {"day": "1"})
        assert first.status is BatchStatus.FAILED
        failing["on"] = False
        engine.register(
            JobBuilder("revalidated")
            .step(StepBuilder("only").task(task))
            .require("region")
            .build(),
            replace=True,
        )
        with pytest.raises(ParameterError, match=r"missing required parameter.*region"):
            engine.restart(first.id)
        with pytest.raises(ParameterError, match="region"):
            engine.restart(job_name="revalidated")
        assert [e.id for e in engine.list_executions("revalidated")] == [first.id]
