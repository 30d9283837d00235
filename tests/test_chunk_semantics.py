"""Chunk semantics an outside audit found wrong: skip positions, scanning, chunk listeners.

Each runs on every backend: positions and counters are what the repository records.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from batchline import (
    BatchStatus,
    Chunk,
    Engine,
    ItemReadError,
    JobBuilder,
    StepBuilder,
)


class Bad(Exception):
    pass


class ScriptedReader:
    """Reads 1..n; raises a skippable read error in place of the numbers in ``bad``."""

    def __init__(self, n: int, bad: set[int]) -> None:
        self.next = 1
        self.n = n
        self.bad = bad

    def read(self) -> int | None:
        if self.next > self.n:
            return None
        value, self.next = self.next, self.next + 1
        if value in self.bad:
            raise ItemReadError(f"record {value} unreadable", raw=f"raw-{value}")
        return value


def positions(engine: Engine, execution_id: int) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for skipped in engine.skipped_items(execution_id):
        found.setdefault(skipped.phase, []).append(str(skipped.position))
    return found


class TestSkipPositions:
    def test_process_skip_after_read_skip_in_the_same_chunk(self, engine: Engine) -> None:
        """Record 2 fails to read and item 4 fails to process, both in chunk 1: the process
        skip is at position 4 (the 4th record read), not 3."""

        def process(item: int) -> int:
            if item == 4:
                raise Bad("four")
            return item

        out: list[int] = []
        step = (
            StepBuilder("s")
            .chunk(5)
            .reader(lambda se: ScriptedReader(8, {2}))
            .processor(process)
            .writer(out.extend)
            .skip([ItemReadError, Bad], limit=None)
        )
        execution = engine.start(JobBuilder("positions").step(step).build())
        assert execution.status is BatchStatus.COMPLETED
        assert out == [1, 3, 5, 6, 7, 8]
        assert positions(engine, execution.id) == {"read": ["item 2"], "process": ["item 4"]}

    def test_write_skip_before_filtered_and_skipped_items(self, engine: Engine) -> None:
        """In a chunk of 1..6 where 4 is filtered and 5 skipped in processing, a write failing
        on item 2 is recorded at position 2: later drops do not shift it."""

        def process(item: int) -> int | None:
            if item == 4:
                return None
            if item == 5:
                raise Bad("five")
            return item

        out: list[int] = []

        def write(items: Sequence[int], chunk: Chunk) -> None:
            if 2 in items:
                raise Bad("two")
            out.extend(items)

        step = (
            StepBuilder("s")
            .chunk(6)
            .reader(list(range(1, 7)))
            .processor(process)
            .writer(write)
            .skip([Bad], limit=None)
        )
        execution = engine.start(JobBuilder("wpositions").step(step).build())
        assert execution.status is BatchStatus.COMPLETED
        assert sorted(out) == [1, 3, 6]
        assert positions(engine, execution.id) == {
            "process": ["item 5"],
            "write": ["item 2 of chunk 1"],
        }
        [se] = engine.step_executions(execution.id)
        assert (se.read_count, se.write_count, se.filter_count) == (6, 3, 1)
        assert (se.process_skip_count, se.write_skip_count) == (1, 1)


class TestReprocessOnScan:
    def test_scan_reprocesses_the_inputs_not_the_outputs(self, engine: Engine) -> None:
        """With reprocess_on_scan the processor sees each original item again (never its own
        output), the bad item is skipped, and nothing is written twice."""
        seen: list[Any] = []

        def process(item: int) -> dict[str, int]:
            seen.append(item)
            return {"v": item}

        out: list[dict[str, int]] = []

        def write(items: Sequence[dict[str, int]], chunk: Chunk) -> None:
            if {"v": 2} in items:
                raise Bad("two")
            out.extend(items)

        step = (
            StepBuilder("s")
            .chunk(3)
            .reader([1, 2, 3])
            .processor(process)
            .writer(write)
            .skip([Bad], limit=None)
            .reprocess_on_scan()
        )
        execution = engine.start(JobBuilder("rescan").step(step).build())
        assert execution.status is BatchStatus.COMPLETED
        assert seen == [1, 2, 3, 1, 2, 3]
        assert out == [{"v": 1}, {"v": 3}]
        [se] = engine.step_executions(execution.id)
        assert (se.read_count, se.write_count, se.write_skip_count) == (3, 2, 1)


class Recorder:
    def __init__(self) -> None:
        self.events: list[str] = []
        self.errors: list[BaseException] = []

    def before_chunk(self, chunk: Chunk) -> None:
        self.events.append(f"before:{chunk.number}")

    def after_chunk(self, chunk: Chunk) -> None:
        self.events.append(f"after:{chunk.number}")

    def on_chunk_error(self, chunk: Chunk, error: BaseException) -> None:
        self.events.append(f"error:{chunk.number}")
        self.errors.append(error)


class TestChunkListeners:
    def test_before_and_after_pair_when_input_ends_on_a_boundary(self, engine: Engine) -> None:
        """Four items in chunks of two: every before_chunk has its after_chunk, the empty last
        chunk included."""
        recorder = Recorder()
        step = StepBuilder("s").chunk(2).reader([1, 2, 3, 4]).writer(lambda items: None)
        engine.start(JobBuilder("pairs").step(step.listener(recorder)).build())
        assert recorder.events == [
            "before:1",
            "after:1",
            "before:2",
            "after:2",
            "before:3",
            "after:3",
        ]

    def test_empty_input_pairs_too(self, engine: Engine) -> None:
        """No items at all: one before_chunk, one after_chunk."""
        recorder = Recorder()
        step = StepBuilder("s").chunk(2).reader([]).writer(lambda items: None)
        engine.start(JobBuilder("empty").step(step.listener(recorder)).build())
        assert recorder.events == ["before:1", "after:1"]

    def test_chunk_error_gets_the_writers_exception(self, engine: Engine) -> None:
        """on_chunk_error receives the exception the writer raised, with its message."""
        recorder = Recorder()

        def write(items: Sequence[int], chunk: Chunk) -> None:
            raise Bad("disk on fire")

        step = StepBuilder("s").chunk(2).reader([1, 2]).writer(write).listener(recorder)
        execution = engine.start(JobBuilder("werr").step(step).build())
        assert execution.status is BatchStatus.FAILED
        assert recorder.events == ["before:1", "error:1"]
        [error] = recorder.errors
        assert isinstance(error, Bad)
        assert str(error) == "disk on fire"
