"""A writer that writes each chunk to several writers, in the chunk's one transaction.

Each part gets the same items and the same Chunk (so SQL writers share the chunk's connection,
and file writers follow its commit or rollback). The composite is a stream and passes
``open``, ``update``, ``close`` and ``complete`` on to the parts that have them; two file writers
among the parts need different ``name=`` so their positions do not share context keys.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from batchline.errors import ConfigurationError
from batchline.items.base import Chunk, ItemStream, ItemWriter, as_writer
from batchline.model import ExecutionContext


class CompositeWriter:
    """Writes every chunk to each of ``writers`` in order (ItemWriters or functions)."""

    def __init__(self, *writers: Any) -> None:
        if not writers:
            raise ConfigurationError("a CompositeWriter needs at least one writer")
        parts: list[ItemWriter[Any]] = []
        for w in writers:
            built = as_writer(w, factory=False)
            assert isinstance(built, ItemWriter)
            parts.append(built)
        self.writers = parts
        self._streams = [w for w in parts if isinstance(w, ItemStream)]
        self._opened: list[ItemStream] = []

    def __repr__(self) -> str:
        return f"CompositeWriter({', '.join(map(repr, self.writers))})"

    def write(self, items: Sequence[Any], chunk: Chunk) -> None:
        for writer in self.writers:
            writer.write(items, chunk)

    def open(self, context: ExecutionContext) -> None:
        self._opened = []
        try:
            for stream in self._streams:
                stream.open(context)
                self._opened.append(stream)
        except BaseException:
            self.close()
            raise

    def update(self, context: ExecutionContext) -> None:
        for stream in self._streams:
            stream.update(context)

    def complete(self) -> None:
        for stream in self._streams:
            done = getattr(stream, "complete", None)
            if callable(done):
                done()

    def close(self) -> None:
        """Close every part opened, last first, even when one fails; then raise the first."""
        error: BaseException | None = None
        for stream in reversed(self._opened):
            try:
                stream.close()
            except BaseException as exc:
                error = error or exc
        self._opened = []
        if error is not None:
            raise error
