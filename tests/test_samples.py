"""Progress samples: a running step's counters recorded every few seconds with a chunk's commit,
once more when the step ends, and deleted with the executions purge deletes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from batchline import BatchStatus, Engine, JobBuilder, ListWriter, SqlJobRepository, StepBuilder
from batchline.model import StepExecution, utcnow
from batchline.partitioners.ranges import LOWER, UPPER, IntegerRangePartitioner
from batchline.repository.purge import purge
from batchline.repository.schema import step_sample


class FakeClock:
    """The sampler's clock: moved by the job's processor, one second per item."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def tick(self, item: Any) -> Any:
        self.now += 1.0
        return item


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sampling(db_url: str, clock: FakeClock) -> Iterator[Engine]:
    """An engine whose repository samples every 5 (fake) seconds."""
    repository = SqlJobRepository(db_url, sample_interval=5.0, sample_clock=clock)
    with Engine(repository, heartbeat_interval=0.5, lease=5) as eng:
        yield eng


def count_job(clock: FakeClock, items: int = 20) -> Any:
    step = StepBuilder("load").chunk(2).reader(list(range(items))).processor(clock.tick)
    return JobBuilder("sampled").step(step.writer(ListWriter())).build()


def sample_rows(engine: Engine) -> int:
    bind = engine.repository.engine  # type: ignore[attr-defined]
    with bind.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(step_sample)).scalar_one())


class TestSamplesDuringAChunkJob:
    def test_one_sample_per_interval_and_one_at_the_end(
        self, sampling: Engine, clock: FakeClock
    ) -> None:
        """Chunks of 2 items at 1 s an item, sampled every 5 s: at 6, 12 and 18 items read,
        then the final counts; nothing on the other chunks."""
        execution = sampling.start(count_job(clock), {"run": 1})
        assert execution.status is BatchStatus.COMPLETED
        samples = sampling.progress_samples(execution.id)
        assert [s.read_count for s in samples] == [6, 12, 18, 20]
        assert [s.write_count for s in samples] == [6, 12, 18, 20]
        (step,) = sampling.step_executions(execution.id)
        assert {(s.step_execution_id, s.step_name) for s in samples} == {(step.id, "load")}
        times = [s.time for s in samples]
        assert times == sorted(times)
        assert step.start_time is not None and step.start_time <= times[0] <= utcnow()

    def test_the_last_sample_holds_the_final_counters(self, sampling: Engine) -> None:
        """Filtered and skipped items are in the samples too; the last equals the step's end."""

        def judge(item: int) -> int | None:
            if item % 7 == 0:
                raise KeyError(item)
            return None if item % 5 == 0 else item

        step = (
            StepBuilder("judged")
            .chunk(4)
            .reader(list(range(1, 41)))
            .processor(judge)
            .writer(ListWriter())
            .skip(KeyError, limit=None)
        )
        execution = sampling.start(JobBuilder("judging").step(step).build(), {"run": 2})
        assert execution.status is BatchStatus.COMPLETED
        (ended,) = sampling.step_executions(execution.id)
        last = sampling.progress_samples(execution.id)[-1]
        assert (last.read_count, last.write_count, last.filter_count, last.skip_count) == (
            ended.read_count,
            ended.write_count,
            ended.filter_count,
            ended.read_skip_count + ended.process_skip_count + ended.write_skip_count,
        )
        assert (last.filter_count, last.skip_count) == (7, 5)

    def test_each_partition_is_sampled(self, sampling: Engine, clock: FakeClock) -> None:
        """A partitioned chunk step: samples for every partition and the manager's total."""

        def numbers(se: StepExecution) -> range:
            return range(int(se.context[LOWER]), int(se.context[UPPER]) + 1)

        worker = StepBuilder("part").chunk(2).reader(numbers).processor(clock.tick)
        step = StepBuilder("split").partition(
            worker.writer(lambda step: ListWriter()), IntegerRangePartitioner(1, 30), grid_size=3
        )
        execution = sampling.start(JobBuilder("parts").step(step).build(), {"run": 3})
        assert execution.status is BatchStatus.COMPLETED
        samples = sampling.progress_samples(execution.id)
        by_step: dict[str, list[int]] = {}
        for s in samples:
            by_step.setdefault(s.step_name, []).append(s.read_count)
        assert sorted(by_step) == ["split", "split:0000", "split:0001", "split:0002"]
        assert all(counts[-1] == 10 for name, counts in by_step.items() if ":" in name)
        assert by_step["split"] == [30]  # the manager: its summed counters, at its end

    def test_no_interval_no_samples(self, db_url: str, clock: FakeClock) -> None:
        """sample_interval=None records nothing, not even at a step's end."""
        repository = SqlJobRepository(db_url, sample_interval=None)
        with Engine(repository, heartbeat_interval=0.5, lease=5) as engine:
            execution = engine.start(count_job(clock), {"run": 4})
            assert execution.status is BatchStatus.COMPLETED
            assert engine.progress_samples(execution.id) == []

    def test_every_chunk_with_interval_zero(self, db_url: str, clock: FakeClock) -> None:
        """sample_interval=0 samples every chunk commit (and the end)."""
        repository = SqlJobRepository(db_url, sample_interval=0, sample_clock=clock)
        with Engine(repository, heartbeat_interval=0.5, lease=5) as engine:
            execution = engine.start(count_job(clock, items=6), {"run": 5})
            reads = [s.read_count for s in engine.progress_samples(execution.id)]
        assert reads == [2, 4, 6, 6]


class TestPurge:
    def test_purge_deletes_the_samples_of_what_it_deletes(
        self, sampling: Engine, clock: FakeClock
    ) -> None:
        """Purged executions take their samples along; a kept execution keeps its own."""
        old = sampling.start(count_job(clock), {"run": "old"})
        assert sample_rows(sampling) == 4
        cutoff = utcnow() + dt.timedelta(microseconds=1)
        clock.now = 0.0
        kept = sampling.start(count_job(clock), {"run": "new"})
        result = purge(sampling.repository, cutoff)
        assert result.job_executions == 1
        assert result.deleted[step_sample.name] == 4
        assert sampling.progress_samples(old.id) == []
        assert len(sampling.progress_samples(kept.id)) == 4
        assert sample_rows(sampling) == 4
