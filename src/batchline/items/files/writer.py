"""The restartable base of file writers: committed offset, truncate on restart, header, footer.

``write`` keeps the chunk's text in memory; ``update`` (called just before the chunk commits,
once the step has checked that this process still holds its lease) writes it, flushes the file
and records its length; a restart cuts the file back to that
length, so whatever a killed run wrote after its last commit disappears and the finished file
equals a clean run's byte for byte. A chunk rolled back and
written again within one run (a retry, or a skip policy's scan) is detected from the step's
commit and rollback counts, and an item whose savepoint rolls back during a scan from the
connection's events (see ``rollback.py``): the file keeps only what committed.

The file is held under an exclusive lock (flock) from ``open`` to ``close``: a restart waits
for a stale process that still has it open (see ``storage.open_output``).

With ``compression="gzip"`` the header, each commit and the footer are gzip members of their
own: a gzip file may be a series of members, and a cut between two leaves a valid file.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Callable, Sequence
from typing import BinaryIO, Generic, TypeVar

from batchline.errors import ConfigurationError
from batchline.items.base import Chunk
from batchline.items.files.storage import StorageOptions, compression_of, open_output
from batchline.items.files.text import text_codec
from batchline.items.rollback import Write, WriteTracker
from batchline.model import ExecutionContext

T = TypeVar("T")
Header = str | Callable[[], str] | None
Footer = str | Callable[[int], str] | None


class FileWriter(Generic[T]):
    """Subclasses turn items into text with ``format``; this class does the rest.

    ``header`` is text or a function returning it, written once at the top of a new file;
    ``footer`` is text or a function of the number of items written, written by ``complete``
    once the step has completed (never by a step that failed or stopped). ``fsync`` makes each
    commit survive a power cut, not only a killed process. ``lock_timeout`` is how long ``open``
    waits for another process that still holds the file (OutputInUse after that).
    """

    def __init__(
        self,
        path: str,
        *,
        header: Header = None,
        footer: Footer = None,
        encoding: str = "utf-8",
        errors: str = "strict",
        compression: str | None = "infer",
        line_separator: str = "\n",
        fsync: bool = False,
        storage_options: StorageOptions = None,
        name: str = "writer",
        lock_timeout: float = 60.0,
    ) -> None:
        self.path = str(path)
        self.lock_timeout = lock_timeout
        self.name = name
        self.header = header
        self.footer = footer
        self.codec = text_codec(encoding, errors)
        self.compression = compression_of(self.path, compression)
        if self.compression not in (None, "gzip"):
            raise ConfigurationError(f"{path}: file writers compress with gzip only")
        self.line_separator = line_separator
        self.fsync = fsync
        self._storage_options = storage_options
        self._file: BinaryIO | None = None
        self.written = 0
        self._tracker = WriteTracker(self._snapshot, self._restore)
        self._mark = (0, 0)  # offset and item count where the current chunk began
        self._pending: list[bytes] = []  # the chunk's text, written to the file by update()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.path!r})"

    def format(self, items: Sequence[T]) -> str:
        """The text of these items, each line ended by ``line_separator``."""
        raise NotImplementedError

    def header_text(self) -> str | None:
        return self.header() if callable(self.header) else self.header

    # --- ItemStream / ItemWriter ------------------------------------------------------------

    def open(self, context: ExecutionContext) -> None:
        self.close()
        offset = context.get(f"{self.name}.offset")
        self.written = int(context.get(f"{self.name}.written", 0))
        self._tracker.reset()
        self._pending.clear()
        self._file = open_output(
            self.path,
            None if offset is None else int(offset),
            self._storage_options,
            lock_timeout=self.lock_timeout,
        )
        if offset is None:
            data = self.codec.bom
            header = self.header_text()
            if header is not None:
                data += self.codec.encode(self._line(header))
            if data:
                self._emit(data)

    def write(self, items: Sequence[T], chunk: Chunk) -> None:
        stream = self._stream()
        state = self._tracker.begin(chunk)
        if state is Write.NEW_CHUNK:
            self._mark = (stream.tell(), self.written)
        elif state is Write.ROLLED_BACK:
            self._pending.clear()
            offset, self.written = self._mark
            stream.seek(offset)
            stream.truncate(offset)
        self._tracker.watch(chunk)
        self._pending.append(self.codec.encode(self.format(items)))
        self.written += len(items)

    def _snapshot(self) -> tuple[int, int]:
        return len(self._pending), self.written

    def _restore(self, state: tuple[int, int]) -> None:
        del self._pending[state[0] :]
        self.written = state[1]

    def update(self, context: ExecutionContext) -> None:
        stream = self._stream()
        if self._pending:
            self._emit(b"".join(self._pending))  # one gzip member per commit, however written
            self._pending.clear()
        stream.flush()
        if self.fsync:
            os.fsync(stream.fileno())
        context[f"{self.name}.offset"] = stream.tell()
        context[f"{self.name}.written"] = self.written

    def complete(self) -> None:
        """The step completed: write the footer. A step that failed or stopped writes none (a
        restart goes on where it ended, and a stale process must not add one)."""
        footer = self.footer(self.written) if callable(self.footer) else self.footer
        if footer is not None:
            stream = self._stream()
            self._emit(self.codec.encode(self._line(footer)), stream)
            stream.flush()
            if self.fsync:
                os.fsync(stream.fileno())

    def close(self) -> None:
        stream, self._file = self._file, None
        if stream is not None:
            stream.close()  # and with it the lock on the file

    # --- helpers ----------------------------------------------------------------------------

    def _line(self, text: str) -> str:
        return text if text.endswith(("\n", "\r")) else text + self.line_separator

    def _emit(self, data: bytes, stream: BinaryIO | None = None) -> None:
        if self.compression == "gzip":
            data = gzip.compress(data, mtime=0)
        (stream or self._stream()).write(data)

    def _stream(self) -> BinaryIO:
        if self._file is None:
            raise ConfigurationError(f"{self!r} is not open: open(context) comes first")
        return self._file
