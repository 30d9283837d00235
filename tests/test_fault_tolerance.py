"""Retry, skip and scanning: every good item exactly once, every bad one skipped exactly once."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batchline import (
    BatchStatus,
    Chunk,
    Engine,
    ItemReadError,
    JobBuilder,
    StepBuilder,
)
from batchline.completion import CountOrTimeCompletion
from batchline.faults import Backoff
from tests.backends import fresh_database

_runs = itertools.count()


class Transient(Exception):
    """Goes away after a few attempts."""


class Permanent(Exception):
    """Never goes away: the item must be skipped."""


def target_table(metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        "ft_target",
        metadata,
        sa.Column("run", sa.Integer, primary_key=True),
        sa.Column("item", sa.Integer, primary_key=True),
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def ft_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    with fresh_database(request.param, tmp_path) as url, Engine(url) as engine:
        yield engine


@dataclass
class Plan:
    """Which items fail where: phase -> {item: remaining transient failures or -1 (forever)}."""

    size: int
    chunk: int
    read: set[int] = field(default_factory=set)
    process: dict[int, int] = field(default_factory=dict)
    write: dict[int, int] = field(default_factory=dict)
    transient_raised: int = 0

    def permanent(self, phase: dict[int, int]) -> set[int]:
        return {item for item, left in phase.items() if left < 0}


@st.composite
def plans(draw: st.DrawFn) -> Plan:
    size = draw(st.integers(1, 60))
    plan = Plan(size=size, chunk=draw(st.integers(1, 9)))
    for item in range(1, size + 1):
        fate = draw(
            st.sampled_from(["ok"] * 6 + ["read", "process-t", "process-p", "write-t", "write-p"])
        )
        if fate == "read":
            plan.read.add(item)
        elif fate.startswith("process"):
            plan.process[item] = draw(st.integers(1, 2)) if fate.endswith("t") else -1
        elif fate.startswith("write"):
            plan.write[item] = draw(st.integers(1, 2)) if fate.endswith("t") else -1
    return plan


class PlannedReader:
    """Reads 1..size; items planned to fail in reading raise ItemReadError after moving past."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.next = 1

    def read(self) -> int | None:
        item = self.next
        if item > self.plan.size:
            return None
        self.next += 1
        if item in self.plan.read:
            raise ItemReadError("unreadable", source="plan", line=item, raw=f"raw-{item}")
        return item


class Recorder:
    """Retry and skip listener that remembers every call."""

    def __init__(self) -> None:
        self.retries = 0
        self.skips: Counter[tuple[str, int]] = Counter()

    def on_retry(self, error: BaseException, attempt: int, phase: str, subject: Any) -> None:
        self.retries += 1

    def on_skip_in_read(self, error: BaseException) -> None:
        assert isinstance(error, ItemReadError)
        self.skips["read", int(error.line or 0)] += 1

    def on_skip_in_process(self, item: int, error: BaseException) -> None:
        self.skips["process", item] += 1

    def on_skip_in_write(self, item: int, error: BaseException) -> None:
        self.skips["write", item] += 1


def planned_job(plan: Plan, table: sa.Table, run: int, recorder: Recorder) -> Any:
    def process(item: int) -> int | None:
        left = plan.process.get(item, 0)
        if left < 0:
            raise Permanent(f"item {item} cannot be processed")
        if left > 0:
            plan.process[item] = left - 1
            plan.transient_raised += 1
            raise Transient(f"item {item} flaked")
        return None if item % 7 == 0 else item

    def write(items: Sequence[int], chunk: Chunk) -> None:
        flaky = [i for i in items if plan.write.get(i, 0) > 0]
        if flaky:
            for i in flaky:
                plan.write[i] -= 1
            plan.transient_raised += 1
            raise Transient(f"items {flaky} flaked")
        chunk.connection.execute(table.insert(), [{"run": run, "item": i} for i in items])
        bad = [i for i in items if plan.write.get(i, 0) < 0]
        if bad:
            raise Permanent(f"items {bad} rejected")

    step = (
        StepBuilder("load")
        .chunk(plan.chunk)
        .reader(lambda _: PlannedReader(plan))
        .processor(process)
        .writer(write)
        .retry([Transient], limit=3, backoff=Backoff.none())
        .skip([Permanent, ItemReadError], limit=None)
        .listener(recorder)
        .build()
    )
    return JobBuilder("planned").step(step).build()


class TestFailurePatterns:
    @settings(
        max_examples=30,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(plan=plans())
    def test_exactly_once_under_random_failures(self, ft_engine: Engine, plan: Plan) -> None:
        """Good items are written once, bad ones skipped and recorded once, counters add up."""
        metadata = sa.MetaData()
        table = target_table(metadata)
        metadata.create_all(ft_engine.repository.engine)  # type: ignore[attr-defined]
        run = next(_runs)
        recorder = Recorder()
        bad_process = plan.permanent(plan.process)
        bad_write = plan.permanent(plan.write)
        execution = ft_engine.start(planned_job(plan, table, run, recorder), {"run": run})

        assert execution.status is BatchStatus.COMPLETED, execution.exit_status.description
        everything = set(range(1, plan.size + 1))
        filtered = {i for i in everything - plan.read - bad_process if i % 7 == 0}
        bad_write -= filtered  # a filtered item never reaches the writer
        expected = everything - plan.read - bad_process - bad_write - filtered
        with ft_engine.repository.engine.connect() as conn:  # type: ignore[attr-defined]
            rows = conn.execute(sa.select(table.c.item).where(table.c.run == run)).scalars()
            written = Counter(rows)
        assert set(written) == expected
        assert all(count == 1 for count in written.values())

        step = execution.step_executions[0]
        assert step.read_skip_count == len(plan.read)
        assert step.process_skip_count == len(bad_process)
        assert step.write_skip_count == len(bad_write)
        assert step.write_count == len(expected)
        assert step.filter_count == len(filtered)
        assert step.read_count == (
            step.write_count + step.filter_count + step.process_skip_count + step.write_skip_count
        )

        recorded = ft_engine.repository.skipped_items(execution.id)
        by_phase = Counter((s.phase, s.position) for s in recorded)
        assert all(count == 1 for count in by_phase.values())
        assert {int(s.item or 0) for s in recorded if s.phase == "process"} == bad_process
        assert {int(s.item or 0) for s in recorded if s.phase == "write"} == bad_write
        assert {s.item for s in recorded if s.phase == "read"} == {f"raw-{i}" for i in plan.read}
        expected_skips = (
            {("read", i) for i in plan.read}
            | {("process", i) for i in bad_process}
            | {("write", i) for i in bad_write}
        )
        assert set(recorder.skips) == expected_skips
        assert all(count == 1 for count in recorder.skips.values())
        assert recorder.retries == plan.transient_raised


class TestSkipLimit:
    def test_limit_exceeded_fails_then_restart_resumes(self, ft_engine: Engine) -> None:
        """Past the skip limit the step FAILS naming the limit and cause; a restart resumes."""
        bad = {"items": {13, 14, 15}}

        def process(item: int) -> int:
            if item in bad["items"]:
                raise ValueError(f"bad amount in item {item}")
            return item

        out: list[int] = []
        step = (
            StepBuilder("load")
            .chunk(5)
            .reader(list(range(1, 31)))
            .processor(process)
            .writer(lambda items: out.extend(items))
            .skip([ValueError], limit=2)
            .build()
        )
        job = ft_engine.register(JobBuilder("limited").step(step).build())
        first = ft_engine.start(job, {"day": 1})
        assert first.status is BatchStatus.FAILED
        message = first.step_executions[0].exit_status.description
        assert "skip limit 2 exceeded" in message
        assert "bad amount in item 15" in message
        assert first.step_executions[0].commit_count == 2  # chunks 1-5 and 6-10

        bad["items"] = set()  # the data is fixed
        second = ft_engine.restart(first.id)
        assert second.status is BatchStatus.COMPLETED
        assert second.step_executions[0].read_count == 20  # items 11-30, not from the start
        assert sorted(out) == list(range(1, 31))


class TestScanning:
    def test_bad_items_isolated_good_ones_committed(self, ft_engine: Engine) -> None:
        """A chunk whose write fails midway is rewritten item by item: only bad items skipped."""
        metadata = sa.MetaData()
        table = target_table(metadata)
        metadata.create_all(ft_engine.repository.engine)  # type: ignore[attr-defined]
        rejected = {4, 7, 8, 19}
        calls: list[int] = []

        def write(items: Sequence[int], chunk: Chunk) -> None:
            calls.append(len(items))
            for item in items:  # writes the items before the bad one, then fails
                if item in rejected:
                    raise Permanent(f"constraint violated by {item}")
                chunk.connection.execute(table.insert().values(run=0, item=item))

        processed: Counter[int] = Counter()

        def process(item: int) -> int:
            processed[item] += 1
            return item

        step = (
            StepBuilder("load")
            .chunk(10)
            .reader(list(range(1, 26)))
            .processor(process)
            .writer(write)
            .skip([Permanent], limit=10)
            .build()
        )
        execution = ft_engine.start(JobBuilder("scan").step(step).build(), {"run": 0})
        assert execution.status is BatchStatus.COMPLETED
        with ft_engine.repository.engine.connect() as conn:  # type: ignore[attr-defined]
            rows = sorted(conn.execute(sa.select(table.c.item)).scalars())
        assert rows == sorted(set(range(1, 26)) - rejected)
        se = execution.step_executions[0]
        assert (se.write_count, se.write_skip_count, se.filter_count) == (21, 4, 0)
        assert set(processed.values()) == {1}  # outputs kept: the processor ran once per item
        skipped = ft_engine.repository.skipped_items(execution.id)
        assert sorted(int(s.item or 0) for s in skipped) == sorted(rejected)
        assert all(s.error_type.endswith("Permanent") for s in skipped)

    def test_reprocess_on_scan_runs_the_processor_again(self, sqlite_engine: Engine) -> None:
        """With reprocess_on_scan, scanning calls the processor again for each item."""
        processed: Counter[int] = Counter()

        def process(item: int) -> int:
            processed[item] += 1
            return item

        def write(items: Sequence[int]) -> None:
            if 3 in items:
                raise Permanent("3 rejected")

        step = (
            StepBuilder("load")
            .chunk(5)
            .reader([1, 2, 3, 4, 5])
            .processor(process)
            .writer(write)
            .skip([Permanent])
            .reprocess_on_scan()
            .build()
        )
        execution = sqlite_engine.start(JobBuilder("rescan").step(step).build())
        assert execution.status is BatchStatus.COMPLETED
        assert dict(processed) == {1: 2, 2: 2, 3: 2, 4: 2, 5: 2}
        assert execution.step_executions[0].write_count == 4


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class TestCompletionPolicies:
    def test_time_bound_commits_a_slow_readers_items(self, sqlite_engine: Engine) -> None:
        """With 1000 items or 5 s, a reader taking 1 s per item commits every 5 items."""
        clock = FakeClock()
        chunk_sizes: list[int] = []

        def slow_items(_: object) -> Iterator[int]:
            for item in range(1, 13):
                clock.now += 1.0  # each read takes a second of the fake clock
                yield item

        step = (
            StepBuilder("slow")
            .chunk(1000)
            .completion_policy(CountOrTimeCompletion(1000, 5.0, clock=clock))
            .reader(slow_items)
            .writer(lambda items: chunk_sizes.append(len(items)))
            .build()
        )
        execution = sqlite_engine.start(JobBuilder("slow").step(step).build())
        assert execution.status is BatchStatus.COMPLETED
        assert chunk_sizes == [5, 5, 2]

    def test_count_bound_still_applies(self, sqlite_engine: Engine) -> None:
        """Whichever comes first: 3 items arrive before the time bound, so chunks hold 3."""
        sizes: list[int] = []
        step = (
            StepBuilder("fast")
            .chunk(3, seconds=60)
            .reader(list(range(7)))
            .writer(lambda items: sizes.append(len(items)))
            .build()
        )
        sqlite_engine.start(JobBuilder("fast").step(step).build())
        assert sizes == [3, 3, 1]
