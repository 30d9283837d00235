"""Progress shown for steps and partitions: from item counts where known, "unknown" rather than
a guess from partition keys."""

from __future__ import annotations

import datetime as dt

from batchline import BatchStatus, Engine, JobBuilder, ListWriter, StepBuilder
from batchline.items.base import IterableReader, reader_size
from batchline.model import StepExecution
from batchline.partitioners.ranges import LOWER, UPPER
from batchline.web.models import step, steps

NOW = dt.datetime(2026, 1, 1, 12, 0, 10)


def _running(name: str, read: int, **context: object) -> StepExecution:
    se = StepExecution(id=1, job_execution_id=1, step_name=name)
    se.start_time = NOW - dt.timedelta(seconds=10)
    se.set_status(BatchStatus.STARTED)
    se.read_count = read
    for key, value in context.items():
        se.context[key] = value
    return se


class TestPartitionProgress:
    def test_key_range_is_not_an_item_count(self) -> None:
        """A partition over keys 1..100 that has read 300 items (several per key) is not shown
        at 100% with ETA 0 s: its progress is unknown."""
        part = step(_running("spread:0000", 300, **{LOWER: 1, UPPER: 100}), NOW)
        assert (part.expected, part.progress, part.eta_seconds) == (None, None, None)

    def test_reader_estimate_gives_the_partitions_progress(self) -> None:
        """With its reader's estimate (900 items), the same partition is a third done, and the
        partitioned step sums its partitions."""
        part = _running("spread:0000", 300, **{LOWER: 1, UPPER: 100, "batchline.expected": 900})
        part.id = 2
        manager = _running("spread", 0)
        made = {s.name: s for s in steps([manager, part], NOW)}
        assert made["spread:0000"].progress == 0.3333 and made["spread:0000"].eta_seconds == 20.0
        assert (made["spread"].expected, made["spread"].progress) == (900, 0.3333)

    def test_more_read_than_estimated_is_unknown_while_running(self) -> None:
        """A wrong estimate says unknown while the step runs, and done once it completed."""
        se = _running("load", 150, **{"batchline.expected": 100})
        assert step(se, NOW).progress is None
        se.status = BatchStatus.COMPLETED  # as read back from the repository
        assert step(se, NOW).progress == 1.0


class TestPlainStepProgress:
    def test_list_and_range_readers_tell_their_size(self) -> None:
        """The reader a list or range is wrapped in still says how many items it holds."""
        assert reader_size(IterableReader([1, 2, 3])) == 3
        assert reader_size(IterableReader(range(10, 20))) == 10
        assert reader_size(IterableReader(x for x in [1])) is None

    def test_chunk_step_over_a_list_records_its_expected_items(self, engine: Engine) -> None:
        """A plain chunk step reading a list (or a factory's range) stores how many it expects,
        so the dashboard shows its progress."""
        listed = StepBuilder("listed").chunk(3).reader(list(range(7))).writer(ListWriter())
        ranged = StepBuilder("ranged").chunk(3).reader(lambda se: range(5)).writer(ListWriter())
        engine.register(JobBuilder("sized").step(listed).step(ranged).build())
        execution = engine.start("sized")
        found = {s.step_name: s for s in engine.get_execution(execution.id).step_executions}
        assert found["listed"].context["batchline.expected"] == 7
        assert found["ranged"].context["batchline.expected"] == 5
