"""The restartable base of line-based file readers (delimited, fixed-width, JSON Lines).

The file is read in binary and decoded line by line, so the byte offset after each record is
exact. ``update`` saves that offset, the physical line number and the record count; ``open``
re-reads only the preamble and header (for the names), then seeks straight to the offset. In a
compressed file a seek means decompressing again up to the offset: cheap for the header, linear
in the file's size for the position.
"""

from __future__ import annotations

import gzip
import lzma
import zlib
from typing import Any, Generic, TypeVar

from batchline.errors import ItemReadError
from batchline.items.files.storage import InputFile, StorageOptions, open_input
from batchline.items.files.text import TextCodec, WideLines, text_codec
from batchline.model import SKIPPED_ITEM_MAX_CHARS, ExecutionContext

T = TypeVar("T")

# Records per bulk run (read_into).
BULK_RUN = 256

# What a compressed stream cut short or corrupt raises; reading stops there. A plain OSError
# (a disk or network failure) is not one of them: it fails the step. bz2 reports bad data as a
# plain OSError, so for .bz2 files it counts too.
STREAM_ERRORS: tuple[type[Exception], ...] = (
    EOFError,
    zlib.error,
    gzip.BadGzipFile,
    lzma.LZMAError,
)


class LineFileReader(Generic[T]):
    """Opens, positions and closes; subclasses parse records in ``read``."""

    # read() touches only this reader's own file: a chunk step may read ahead in a thread.
    read_ahead_safe = True

    def __init__(
        self,
        path: str,
        *,
        encoding: str = "utf-8",
        errors: str = "strict",
        compression: str | None = "infer",
        storage_options: StorageOptions = None,
        skip_lines: int = 0,
        name: str = "reader",
    ) -> None:
        self.path = str(path)
        self.name = name
        self.skip_lines = skip_lines
        self._codec_spec = text_codec(encoding, errors)
        self._compression = compression
        self._storage_options = storage_options
        self._input: InputFile | None = None
        self._lines: Any = None
        self.codec: TextCodec = self._codec_spec
        self.line = 0  # physical lines consumed
        self.count = 0  # records consumed, good or bad
        self.raw: bytes = b""  # the last physical line, for error messages
        self.pending: ItemReadError | None = None  # found at open, raised by the first read
        self.stream_errors = STREAM_ERRORS
        self.ended = False
        self._broken = False
        # Bulk reads (read_into): on for uncompressed input until they keep missing.
        self.bulk = False
        self._bulk_calls = self._bulk_misses = 0

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.path!r})"

    # --- ItemStream -------------------------------------------------------------------------

    def open(self, context: ExecutionContext) -> None:
        self.close()
        self._input = open_input(
            self.path, compression=self._compression, storage_options=self._storage_options
        )
        stream = self._input.stream
        bz2 = self._input.kind == "bz2"
        self.stream_errors = (*STREAM_ERRORS, OSError) if bz2 else STREAM_ERRORS
        self.ended = self._broken = False
        self.pending = None
        # A miss seeks back: cheap in a plain file, a decompression from the start otherwise.
        self.bulk = self._input.kind is None and self._bulk_allowed()
        self._bulk_calls = self._bulk_misses = 0
        try:
            head = stream.read(4)
        except self.stream_errors as exc:
            head = b""
            self.pending = self.stream_error(exc, 1)
        self.codec, bom = self._codec_spec.sniff(head)
        stream.seek(bom)
        self._lines = WideLines(stream, self.codec) if self.codec.unit > 1 else stream
        self.line = self.count = 0
        if not self.ended:
            for _ in range(self.skip_lines):
                if not self._lines.readline():
                    break
                self.line += 1
            self.start()
        offset = context.get(f"{self.name}.offset")
        if context.get(f"{self.name}.broken"):
            self.ended = True  # the stream broke before the last commit: nothing more to read
            self.pending = None
        elif offset is not None:
            self._lines.seek(int(offset))
            self.line = int(context.get(f"{self.name}.line", 0))
            self.count = int(context.get(f"{self.name}.count", 0))
        self.restart()

    def update(self, context: ExecutionContext) -> None:
        if self._lines is None:
            return
        self.sync_line()
        context[f"{self.name}.offset"] = self._lines.tell()
        context[f"{self.name}.line"] = self.line
        context[f"{self.name}.count"] = self.count
        if self._broken:
            context[f"{self.name}.broken"] = True

    def close(self) -> None:
        if self._input is not None:
            self._input.close()
        self._input = None
        self._lines = None

    def read(self) -> T | None:
        raise NotImplementedError

    # --- bulk reads -------------------------------------------------------------------------

    def read_into(self, items: list[Any], n: int) -> bool:
        """Append up to ``n`` items to ``items``; True when the input ended before. An error
        is raised as ``read()`` raises it, the items before it appended.

        Subclasses read runs of records in C (``_bulk``) and fall back to ``read()`` per
        record from where a run began whenever it holds anything unusual. Runs are short
        (``BULK_RUN``): a run's parsed rows die young, which keeps the cyclic GC cheap."""
        while n > 0 and self.bulk:
            if self._lines is None or self.pending is not None or self.ended:
                break
            run = min(n, BULK_RUN)
            lines = self._lines
            self.sync_line()
            mark = (lines.tell(), self.line, self.count)
            start = len(items)
            self._bulk_calls += 1
            try:
                ended = self._bulk(items, run)
            except Exception:
                ended = None
            if ended is not None:
                if ended:
                    return True
                n -= len(items) - start  # a run may be shorter than asked (see _bulk)
                continue
            del items[start:]
            lines.seek(mark[0])
            self.line, self.count = mark[1], mark[2]
            self.restart()
            self._bulk_misses += 1
            if self._bulk_misses >= 4 and self._bulk_misses * 4 >= self._bulk_calls:
                self.bulk = False  # records out of the ordinary are common here
            if self._read_each(items, run):  # this run by read(), then on
                return True
            n -= run
        return self._read_each(items, n)

    def _read_each(self, items: list[Any], n: int) -> bool:
        read = self.read
        for _ in range(n):
            item = read()
            if item is None:
                return True
            items.append(item)
        return False

    def _bulk_allowed(self) -> bool:
        """Whether ``_bulk`` may stand in for ``read()``: not when a subclass changed it."""
        return False

    def _bulk(self, items: list[Any], n: int) -> bool | None:
        """Up to ``n`` ordinary records appended (at least one unless at the end); True at
        the end of the input, None (and
        anything appended is dropped, the position restored) when the run needs ``read()``."""
        return None

    # --- for subclasses ---------------------------------------------------------------------

    def sync_line(self) -> None:
        """Bring ``line`` up to date, for parsers that count lines lazily."""

    def start(self) -> None:
        """Read the header, if any, from the top of the file (after ``skip_lines``)."""

    def restart(self) -> None:
        """Build the parsing pipeline from the current position."""

    def readline(self) -> bytes:
        """One raw line (empty at the end), counted."""
        raw: bytes = self._lines.readline()
        if raw:
            self.line += 1
            self.raw = raw
        return raw

    def ready(self) -> bool:
        """Open if need be; False at the end; raises an error found while opening."""
        if self._lines is None:
            self.open(ExecutionContext())
        if self.pending is not None:
            pending, self.pending = self.pending, None
            raise pending
        return not self.ended

    def error(
        self, message: str, line: int | None, field: str | None = None, raw: str | None = None
    ) -> ItemReadError:
        if raw is None and self.raw:
            text = self.raw[: SKIPPED_ITEM_MAX_CHARS * 4].decode(self.codec.encoding, "replace")
            raw = text.rstrip("\r\n")[:SKIPPED_ITEM_MAX_CHARS]
        return ItemReadError(message, source=self.path, line=line, field=field, raw=raw)

    def stream_error(self, exc: BaseException, line: int) -> ItemReadError:
        """A compressed stream cut short or corrupt: reading ends here."""
        self.ended = self._broken = True
        what = str(exc).strip() or type(exc).__name__
        return self.error(f"unreadable stream ({what}); nothing after this can be read", line)

    def decode_error(self, exc: UnicodeDecodeError) -> str:
        return f"bytes {exc.object[exc.start : exc.end]!r} are not valid {self.codec.encoding}"
