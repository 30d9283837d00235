"""A long chunk step keeps the cyclic GC off what lived before it (steps/gc_freeze.py): frozen
from the chunk boundary where it has read enough items, handed back at its end whatever the
outcome, never touching a freeze it did not make, nothing older than the step kept past it,
and a small step leaves the GC alone."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from typing import Any

import pytest

from batchline import BatchStatus, Engine, JobBuilder, StepBuilder
from batchline.errors import ConfigurationError
from batchline.items.memory import ListWriter
from batchline.steps.gc_freeze import FREEZE_AFTER


@pytest.fixture(autouse=True)
def nothing_frozen() -> Iterator[None]:
    gc.unfreeze()  # whatever an earlier test in this process left
    yield
    gc.unfreeze()


class Cycle:
    def __init__(self) -> None:
        self.me = self


def _job(seen: list[int], *, after: int | None = 0, fail_at: int = 0, items: int = 50) -> Any:
    """A chunk step of ``items`` items, chunks of 10, recording the freeze count per item;
    ``after``: its gc_freeze threshold (None: gc_freeze(False))."""

    def process(item: int) -> int:
        seen.append(gc.get_freeze_count())
        if item == fail_at:
            raise RuntimeError(f"item {item} refused")
        return item

    step = StepBuilder("copy").chunk(10).reader(list(range(1, items + 1))).processor(process)
    step = step.writer(ListWriter("out"))
    if after is None:
        step = step.gc_freeze(False)
    elif after != FREEZE_AFTER:
        step = step.gc_freeze(after=after)
    return JobBuilder(f"gc_freeze_{after}_{fail_at}_{items}").step(step).build()


def test_objects_older_than_the_step_are_frozen_while_it_runs(sqlite_url: str) -> None:
    with Engine(sqlite_url) as engine:
        gc.collect()
        before = len(gc.get_objects())
        tracked: list[int] = []

        class Count:
            def before_chunk(self, chunk: Any) -> None:
                tracked.append(len(gc.get_objects()))  # what collections still walk

        seen: list[int] = []
        job = _job(seen)
        job.steps[0].listeners.append(Count())
        assert engine.start(job, {}).status is BatchStatus.COMPLETED
        assert len(seen) == 50 and min(seen) > 0
        # Frozen, the process's objects are out of the collector's lists (get_objects walks
        # the same lists); after the step they are back.
        assert max(tracked) < before / 2, (before, tracked)
        assert gc.get_freeze_count() == 0
        assert len(gc.get_objects()) > before / 2


def test_the_freeze_waits_for_the_threshold(sqlite_url: str) -> None:
    seen: list[int] = []
    with Engine(sqlite_url) as engine:
        assert engine.start(_job(seen, after=20), {}).status is BatchStatus.COMPLETED
    # Frozen at the boundary after 20 items: from the third chunk on.
    assert seen[:20] == [0] * 20 and min(seen[20:]) > 0
    assert gc.get_freeze_count() == 0


def test_a_small_step_leaves_the_collector_alone_by_default(sqlite_url: str) -> None:
    seen: list[int] = []
    with Engine(sqlite_url) as engine:
        job = _job(seen, after=FREEZE_AFTER)
        assert engine.start(job, {}).status is BatchStatus.COMPLETED
    assert seen == [0] * 50


def test_gc_freeze_false_leaves_the_collector_alone(sqlite_url: str) -> None:
    seen: list[int] = []
    with Engine(sqlite_url) as engine:
        assert engine.start(_job(seen, after=None), {}).status is BatchStatus.COMPLETED
    assert seen == [0] * 50


def test_a_bad_threshold_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="gc_freeze after must be an int >= 0"):
        StepBuilder("copy").gc_freeze(after=-1)


def test_a_failed_step_unfreezes_too(sqlite_url: str) -> None:
    seen: list[int] = []
    with Engine(sqlite_url) as engine:
        assert engine.start(_job(seen, fail_at=25), {}).status is BatchStatus.FAILED
    assert seen[0] > 0 and gc.get_freeze_count() == 0


def test_a_freeze_the_application_made_is_left_as_it_is(sqlite_url: str) -> None:
    with Engine(sqlite_url) as engine:
        gc.freeze()
        frozen = gc.get_freeze_count()
        seen: list[int] = []
        assert engine.start(_job(seen), {}).status is BatchStatus.COMPLETED
        # The step froze nothing more (frozen objects freed by their last reference leave the
        # count; none join it) and did not unfreeze the application's objects.
        assert len(seen) == 50 and max(seen) <= frozen
        assert 0 < gc.get_freeze_count() <= frozen


def test_cycles_from_before_the_step_are_collected_after_it(sqlite_url: str) -> None:
    gc.collect()
    cycle = Cycle()
    gone = weakref.ref(cycle)
    seen: list[bool] = []

    class Unlink:
        def before_chunk(self, chunk: Any) -> None:
            nonlocal cycle
            cycle = None  # type: ignore[assignment]  # garbage now, but frozen: kept for now
            gc.collect()
            seen.append(gone() is not None)

    job = _job([])
    job.steps[0].listeners.append(Unlink())
    with Engine(sqlite_url) as engine:
        assert engine.start(job, {}).status is BatchStatus.COMPLETED
    assert seen[0] is True  # the freeze kept it out of the collector's reach while the step ran
    gc.collect()
    assert gone() is None
