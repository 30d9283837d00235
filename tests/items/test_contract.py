from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from batchline import Chunk, ExecutionContext, ItemReadError, IterableReader
from batchline.items.memory import ListReader, ListWriter
from batchline.testing.contract import ContractViolation, check_reader, check_writer


class OffByOneReader(ListReader[int]):
    """Saves the index of the last item read instead of the next one: repeats an item."""

    def update(self, context: ExecutionContext) -> None:
        context[f"{self.name}.index"] = max(self.index - 1, 0)


class StuckReader:
    """Raises on a bad record without moving past it."""

    def open(self, context: ExecutionContext) -> None:
        self.position = 0

    def read(self) -> int | None:
        if self.position == 1:
            raise ItemReadError("bad", source="mem", line=2)
        self.position += 1
        return self.position

    def update(self, context: ExecutionContext) -> None:
        context["p"] = self.position

    def close(self) -> None:
        pass


class AppendOnlyWriter:
    """Keeps everything it was given, committed or not: duplicates after a restart."""

    store: list[Any] = []

    def open(self, context: ExecutionContext) -> None:
        if not context:
            AppendOnlyWriter.store = []

    def write(self, items: Sequence[Any], chunk: Chunk) -> None:
        AppendOnlyWriter.store.extend(items)

    def update(self, context: ExecutionContext) -> None:
        context["n"] = len(AppendOnlyWriter.store)

    def close(self) -> None:
        pass


class TestKitPasses:
    def test_memory_readers_and_writer(self) -> None:
        """ListReader, IterableReader and ListWriter pass the contract kit."""
        check_reader(
            lambda: ListReader([1, 2, 3, 4, 5]),
            expected=[1, 2, 3, 4, 5],
            empty=lambda: ListReader([]),
        )
        check_reader(lambda: IterableReader(range(7)), expected=list(range(7)), chunk_size=3)
        writer: ListWriter[int] = ListWriter()
        check_writer(lambda: writer, [1, 2, 3, 4, 5], lambda: list(writer.items), chunk_size=2)


class TestKitCatches:
    def test_a_reader_that_repeats_an_item_on_restart(self) -> None:
        """A position saved one item early is reported as a duplicate at a named boundary."""
        with pytest.raises(ContractViolation, match=r"restart after 2 items: .* duplicated \[2\]"):
            check_reader(lambda: OffByOneReader([1, 2, 3, 4]), expected=[1, 2, 3, 4])

    def test_a_reader_stuck_on_a_bad_record(self) -> None:
        """A reader that does not move past a bad record never ends: reported, not hung."""
        with pytest.raises(ContractViolation, match="more than 50 reads without an end"):
            check_reader(lambda: ListReader([1]), malformed=StuckReader, max_items=50)

    def test_a_writer_that_duplicates_after_a_restart(self) -> None:
        """A writer that does not undo uncommitted output fails the restart check."""
        with pytest.raises(
            ContractViolation,
            match=r"restart after 1 committed chunks: .* \[1, 2, 3, 3\] != \[1, 2, 3\]",
        ):
            check_writer(AppendOnlyWriter, [1, 2, 3], lambda: list(AppendOnlyWriter.store))
