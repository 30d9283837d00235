"""In-memory reader and writer, for tests and small jobs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Generic, TypeVar

from batchline.errors import ConfigurationError, ItemReadError
from batchline.items.base import Chunk
from batchline.items.rollback import Write, WriteTracker
from batchline.model import ExecutionContext

T = TypeVar("T")


class ListReader(Generic[T]):
    """Reads a list (a copy taken at construction); restarts at the index saved at the commit."""

    def __init__(self, items: Sequence[T], name: str = "reader") -> None:
        self.items = list(items)
        self.name = name
        self.index = 0

    def estimated_size(self) -> int:
        """The number of items, for the progress display's ETA."""
        return len(self.items)

    def open(self, context: ExecutionContext) -> None:
        self.index = int(context.get(f"{self.name}.index", 0))

    def read(self) -> T | None:
        if self.index >= len(self.items):
            return None
        item = self.items[self.index]
        self.index += 1
        if item is None:  # None means the end of the input to the step: a None item cannot pass
            raise ItemReadError(f"item {self.index} of the list is None")
        return item

    def update(self, context: ExecutionContext) -> None:
        context[f"{self.name}.index"] = self.index

    def close(self) -> None:
        pass

    def __repr__(self) -> str:
        return f"ListReader({len(self.items)} items)"


class ListWriter(Generic[T]):
    """Appends every written item to ``items``, as a file writer would to its file.

    It keeps the count committed at each commit and, reopened with that context, cuts ``items``
    back to it; a chunk rolled back and written again within a run replaces its first attempt
    (see ``rollback.py``).
    """

    def __init__(self, name: str = "writer") -> None:
        if not isinstance(name, str):  # ListWriter given as a factory gets a StepExecution
            raise ConfigurationError(
                f"ListWriter: name must be a string, got {type(name).__name__} (as a writer "
                "factory, use lambda step: ListWriter())"
            )
        self.name = name
        self.items: list[T] = []
        self.chunks: list[int] = []
        self._tracker = WriteTracker(self._snapshot, self._restore)
        self._mark = (0, 0)  # items and chunks where the current chunk began

    def open(self, context: ExecutionContext) -> None:
        saved = context.get(f"{self.name}.count")
        if saved is None:
            self.items.clear()
            self.chunks.clear()
        else:
            del self.items[int(saved) :]
            del self.chunks[int(context.get(f"{self.name}.chunks", len(self.chunks))) :]
        self._tracker.reset()

    def write(self, items: Sequence[T], chunk: Chunk) -> None:
        state = self._tracker.begin(chunk)
        if state is Write.NEW_CHUNK:
            self._mark = (len(self.items), len(self.chunks))
        elif state is Write.ROLLED_BACK:
            self._restore(self._mark)
        self._tracker.watch(chunk)
        self.items.extend(items)
        self.chunks.append(len(items))

    def _snapshot(self) -> tuple[int, int]:
        return len(self.items), len(self.chunks)

    def _restore(self, state: tuple[int, int]) -> None:
        del self.items[state[0] :]
        del self.chunks[state[1] :]

    def update(self, context: ExecutionContext) -> None:
        context[f"{self.name}.count"] = len(self.items)
        context[f"{self.name}.chunks"] = len(self.chunks)

    def close(self) -> None:
        pass

    def __repr__(self) -> str:
        return f"ListWriter({len(self.items)} items)"
