"""A chunk step keeps the cyclic GC off what lived before it (steps/gc_freeze.py): frozen while
it runs, handed back at its end whatever the outcome, never touching a freeze it did not make,
and nothing older than the step kept past it."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from typing import Any

import pytest

from batchline import BatchStatus, Engine, JobBuilder, StepBuilder
from batchline.items.memory import ListWriter


@pytest.fixture(autouse=True)
def nothing_frozen() -> Iterator[None]:
    gc.unfreeze()  # whatever an earlier test in this process left
    yield
    gc.unfreeze()


class Cycle:
    def __init__(self) -> None:
        self.me = self


def _job(seen: list[int], *, freeze: bool | None = None, fail_at: int = 0) -> Any:
    def process(item: int) -> int:
        seen.append(gc.get_freeze_count())
        if item == fail_at:
            raise RuntimeError(f"item {item} refused")
        return item

    step = StepBuilder("copy").chunk(10).reader(list(range(1, 51))).processor(process)
    step = step.writer(ListWriter("out"))
    if freeze is not None:
        step = step.gc_freeze(freeze)
    return JobBuilder(f"gc_freeze_{freeze}_{fail_at}").step(step).build()


def test_objects_older_than_the_step_are_frozen_while_it_runs(sqlite_url: str) -> None:
    before = len(gc.get_objects())
    seen: list[int] = []
    with Engine(sqlite_url) as engine:
        assert engine.start(_job(seen), {}).status is BatchStatus.COMPLETED
        # More than the objects that lived before the step (the engine's among them) were out
        # of the collector's reach while every item was processed; none are after.
        assert len(seen) == 50 and min(seen) >= before
        assert gc.get_freeze_count() == 0


def test_gc_freeze_false_leaves_the_collector_alone(sqlite_url: str) -> None:
    seen: list[int] = []
    with Engine(sqlite_url) as engine:
        assert engine.start(_job(seen, freeze=False), {}).status is BatchStatus.COMPLETED
    assert seen == [0] * 50


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
    seen: list[int] = []

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
