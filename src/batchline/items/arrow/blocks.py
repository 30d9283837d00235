"""Columnar readers of line files (CSV, JSON Lines) by blocks of bytes, restartable by offset.

A block is read from the file (``block_size`` bytes), cut back to its last record boundary and
parsed by Arrow's C++ reader on all cores; a chunk takes rows from it, and a chunk may span two
blocks. What commits with a chunk is the byte offset where its current block starts and ends,
the rows of that block already taken, and the line number of the block's first line (and, read
without a schema, the types inferred from the first block): a restart reads exactly that block
again, parsed to the same types, and skips those rows, whatever the batch size of either run.

A block Arrow refuses (a row with the wrong number of fields, a value its column type cannot
take) is split in halves at record boundaries and each half parsed again, down to the single
records that fail: those are read errors (``ItemReadError`` with file, line and raw text), the
step's read skips, and every other row of the block is read. Arrow's streaming reader is not
used for this reason: it gives no byte offsets, and one bad row loses its whole batch.
"""

from __future__ import annotations

import base64
import io
import zlib
from collections.abc import Sequence
from typing import Any

from batchline.errors import ConfigurationError, ItemReadError
from batchline.items.files.storage import StorageOptions, filesystem
from batchline.model import ExecutionContext

BLOCK_SIZE = 1 << 22


def pyarrow() -> Any:
    try:
        import pyarrow
    except ImportError:
        raise ConfigurationError(
            "columnar steps need pyarrow: pip install 'batchline[arrow]'"
        ) from None
    return pyarrow


class _Block:
    """A parsed block: its good rows (a table), and its bad records placed among them."""

    __slots__ = ("end", "errors", "line", "start", "table", "taken")

    def __init__(self, start: int, end: int, line: int, table: Any, errors: list[Any]) -> None:
        self.start, self.end, self.line = start, end, line
        self.table = table
        # (good rows before it, the error), in file order
        self.errors: list[tuple[int, ItemReadError]] = errors
        self.taken = 0


class LineBlockReader:
    """The base of the block readers: subclasses parse a block of whole records (``_parse``)
    and say where records end (``_boundary``)."""

    read_ahead_safe = True

    def __init__(
        self,
        path: str,
        *,
        block_size: int = BLOCK_SIZE,
        storage_options: StorageOptions = None,
        name: str = "reader",
    ) -> None:
        if block_size < 1:
            raise ConfigurationError(f"{path}: block_size must be >= 1")
        self.path = str(path)
        # ".gzip" too: the row readers read such a file as gzip (storage.compression_of)
        if self.path.lower().endswith((".gz", ".gzip", ".bz2", ".xz", ".zst", ".zip")):
            raise _compressed(self.path)
        self.block_size = block_size
        self.name = name
        self._storage_options = storage_options
        self._file: Any = None
        self._block: _Block | None = None
        self._data_start = 0  # after a header
        self._next = 0  # where the next block starts
        self._next_line = 1
        self._eof = False
        self.count = 0  # rows read, bad ones included
        self.schema: Any = None  # the types asked; subclasses set it
        self._schema: Any = None  # what the blocks are parsed to: asked, or inferred once
        self._schema_text: str | None = None  # the inferred one as committed

    # --- what subclasses provide ----------------------------------------------------------

    def _read_header(self, first: bytes) -> tuple[int, int]:
        """The bytes and lines a header takes at the file's start (none by default)."""
        return 0, 0

    def _parse(self, data: bytes) -> Any:
        """A pyarrow Table of the block's records; raises pyarrow.ArrowInvalid when it cannot."""
        raise NotImplementedError

    def _is_boundary(self, data: bytes, end: int) -> bool:
        """Whether the newline just before ``end`` ends a record (``data`` starts at one)."""
        return True

    def _last_boundary(self, data: bytes, at: int) -> int:
        """The end of the last record ending at or before ``at``; -1 when none does."""
        pos = data.rfind(b"\n", 0, at)
        while pos >= 0 and not self._is_boundary(data, pos + 1):
            pos = data.rfind(b"\n", 0, pos)
        return pos + 1 if pos >= 0 else -1

    def _first_boundary(self, data: bytes, at: int) -> int:
        """The end of the first record ending after ``at``, before the end of ``data``."""
        pos = data.find(b"\n", at)
        while 0 <= pos < len(data) - 1 and not self._is_boundary(data, pos + 1):
            pos = data.find(b"\n", pos + 1)
        return pos + 1 if 0 <= pos < len(data) - 1 else -1

    # --- the stream -----------------------------------------------------------------------

    def open(self, context: ExecutionContext) -> None:
        self.close()
        fs, inner = filesystem(self.path, self._storage_options)
        try:
            self._file = fs.open(inner, "rb")
        except OSError as exc:
            raise ItemReadError(f"cannot open: {exc}", source=self.path) from None
        first = self._file.read(1 << 16)
        # A compressed file under another name would be parsed as text: its bytes read as
        # garbage records (read skips under a skip policy, every row lost) or refused for a
        # reason that names something else (a bare CR).
        kind = _compression(first)
        if kind is not None:
            self.close()
            raise _compressed(self.path, kind)
        header, lines = self._read_header(first)
        self._data_start = header
        key = self.name
        start = int(context.get(f"{key}.offset", header))
        self._next_line = int(context.get(f"{key}.line", 1 + lines))
        self.count = int(context.get(f"{key}.count", 0))
        # A restart goes on with the types inferred from the first block, not from the block it
        # resumes in: those could differ, and then rows counted as taken would be others.
        saved = context.get(f"{key}.schema")
        self._schema = _schema_of(saved) if saved else None
        self._schema_text = saved or None
        self._next = start
        self._eof = False
        end = context.get(f"{key}.end")
        if end is not None:
            block = self._load(start, int(end))
            skip = int(context.get(f"{key}.taken", 0))
            block.taken = skip
            # its bad records before the rows taken were read (and skipped) before the restart
            block.errors = [(at, e) for at, e in block.errors if at > skip]
            self._block = block

    def update(self, context: ExecutionContext) -> None:
        key = self.name
        block = self._block
        if block is None:
            context[f"{key}.offset"] = self._next
            context[f"{key}.line"] = self._next_line
            context.pop(f"{key}.end", None)
            context.pop(f"{key}.taken", None)
        else:
            context[f"{key}.offset"] = block.start
            context[f"{key}.end"] = block.end
            context[f"{key}.line"] = block.line
            context[f"{key}.taken"] = block.taken
        context[f"{key}.count"] = self.count
        if self.schema is None and self._schema is not None:
            if self._schema_text is None:
                self._schema_text = _schema_text(self._schema)
            context[f"{key}.schema"] = self._schema_text

    def close(self) -> None:
        self._block = None
        if self._file is not None:
            self._file.close()
            self._file = None

    # --- reading --------------------------------------------------------------------------

    def read_batch(self, rows: int) -> tuple[Any, list[ItemReadError], bool]:
        """Up to ``rows`` rows as one RecordBatch (None when none are left), the records that
        could not be parsed on the way, and whether the file has ended."""
        if self._file is None:
            self.open(ExecutionContext())
        pieces: list[Any] = []
        errors: list[ItemReadError] = []
        wanted = rows
        while wanted > 0:
            block = self._block
            if block is None:
                block = self._block = self._next_block()
                if block is None:
                    break
            left = block.table.num_rows - block.taken
            take = min(left, wanted)
            if take:
                pieces.append(block.table.slice(block.taken, take))
                block.taken += take
                wanted -= take
            while block.errors and block.errors[0][0] <= block.taken:
                errors.append(block.errors.pop(0)[1])
            if block.taken >= block.table.num_rows and not block.errors:
                self._block = None
        self.count += rows - wanted + len(errors)
        ended = self._block is None and self._eof
        return _one_batch(pieces), errors, ended

    def _next_block(self) -> _Block | None:
        if self._eof:
            return None
        start = self._next
        assert self._file is not None
        self._file.seek(start)
        data = self._file.read(self.block_size)
        while True:
            if len(data) < self.block_size:
                end = len(data)  # the rest of the file
                break
            cut = self._last_boundary(data, len(data))
            if cut > 0:
                end = cut
                break
            more = self._file.read(len(data))  # a record longer than the block
            if not more:
                end = len(data)
                break
            data += more
        if end == 0:
            self._eof = True
            return None
        return self._parsed(start, data[:end])

    def _load(self, start: int, end: int) -> _Block:
        """The block between two offsets committed earlier, parsed again."""
        assert self._file is not None
        self._file.seek(start)
        block = self._parsed(start, self._file.read(end - start))
        return block

    def _parsed(self, start: int, data: bytes) -> _Block:
        line = self._next_line
        pieces: list[Any] = []
        errors: list[tuple[int, ItemReadError]] = []
        self._parse_lenient(data, line, pieces, errors, 0)
        table = _concat(pieces)
        if self._schema is None and table is not None:
            self._schema = table.schema
        if table is None:
            table = self._empty()
        self._next = start + len(data)
        self._next_line = line + data.count(b"\n")
        self._eof = self._next >= self._size()
        return _Block(start, start + len(data), line, table, errors)

    def _size(self) -> int:
        assert self._file is not None
        here = self._file.tell()
        size = self._file.seek(0, io.SEEK_END)
        self._file.seek(here)
        return int(size)

    def _parse_lenient(
        self,
        data: bytes,
        line: int,
        pieces: list[Any],
        errors: list[tuple[int, ItemReadError]],
        before: int,
    ) -> int:
        """Parse ``data``, splitting it around the records Arrow refuses; returns its good rows."""
        pa = pyarrow()
        if not data.strip():
            return 0
        try:
            table = self._parse(data)
        except pa.ArrowInvalid as exc:
            half = self._first_boundary(data, len(data) // 2)
            if half <= 0:  # the last record starts before the middle
                half = self._last_boundary(data, len(data) // 2)
            if half <= 0:
                errors.append((before, self._bad_record(data, line, exc)))
                return 0
            left = self._parse_lenient(data[:half], line, pieces, errors, before)
            right_line = line + data.count(b"\n", 0, half)
            right = self._parse_lenient(data[half:], right_line, pieces, errors, before + left)
            return left + right
        if self._schema is None:
            self._schema = _kept_types(table.schema)
            if self._schema != table.schema:
                table = self._parse(data)  # as text, as every later block will be
        pieces.append(table)
        return int(table.num_rows)

    def _bad_record(self, data: bytes, line: int, exc: Exception) -> ItemReadError:
        text = data.decode("utf-8", "replace").rstrip("\r\n")
        # a record preceded by blank lines starts further down
        stripped = text.lstrip("\r\n")
        line += text[: len(text) - len(stripped)].count("\n")
        reason = " ".join(str(exc).split())
        return ItemReadError(
            f"Arrow cannot parse the record: {reason}",
            source=self.path,
            line=line,
            field=self._field_of(reason, stripped),
            raw=stripped,
        )

    def _field_of(self, reason: str, record: str) -> str | None:
        """The column an Arrow parse error names (or, failing that, the record shows), where
        the format says which."""
        return None

    def _empty(self) -> Any:
        pa = pyarrow()
        schema = self._schema
        return schema.empty_table() if schema is not None else pa.table({})

    def estimated_size(self) -> None:
        return None


# The first bytes of compressed formats; none can start a UTF-8 text file (bz2's "BZh" is
# followed by a level digit and a block magic, which text would not be).
_MAGIC = (
    (b"\x1f\x8b", "gzip"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"\x04\x22\x4d\x18", "lz4"),
    (b"PK\x03\x04", "zip"),
)


def _compression(first: bytes) -> str | None:
    """The compression a file's first bytes show, or None for anything else."""
    for magic, kind in _MAGIC:
        if first.startswith(magic):
            return kind
    bz2_block = first[4:10] in (b"\x31\x41\x59\x26\x53\x59", b"\x17\x72\x45\x38\x50\x90")
    if first[:3] == b"BZh" and first[3:4].isdigit() and bz2_block:
        return "bz2"
    return None


def _compressed(path: str, kind: str | None = None) -> ConfigurationError:
    what = f"{kind}-compressed" if kind else "compressed"
    return ConfigurationError(
        f"{path}: the file is {what}; columnar readers restart at byte offsets, which a "
        "compressed file does not have: decompress it first (or use the row readers)"
    )


def _kept_types(inferred: Any) -> Any:
    """The inferred types kept for the rest of the file. A column empty throughout the first
    block is Arrow's null type, which would refuse every later value: it is kept as text
    instead (as polars infers it), so those values are read, not skipped. So is a null type
    nested in a JSON list or object (``"tags": []`` in every record of the first block)."""
    pa = pyarrow()
    return pa.schema([f.with_type(_texted(f.type)) for f in inferred], metadata=inferred.metadata)


def _texted(kind: Any) -> Any:
    """``kind`` with text wherever it holds Arrow's null type."""
    pa = pyarrow()
    if pa.types.is_null(kind):
        return pa.string()
    if pa.types.is_struct(kind):
        fields = [kind.field(i) for i in range(kind.num_fields)]
        return pa.struct([f.with_type(_texted(f.type)) for f in fields])
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        item = kind.value_field.with_type(_texted(kind.value_type))
        return pa.list_(item) if pa.types.is_list(kind) else pa.large_list(item)
    return kind


def _schema_text(schema: Any) -> str:
    """The schema as context text: compressed, as a wide file's is rewritten at each commit."""
    return base64.b64encode(zlib.compress(schema.serialize().to_pybytes())).decode("ascii")


def _schema_of(text: str) -> Any:
    pa = pyarrow()
    return pa.ipc.read_schema(pa.py_buffer(zlib.decompress(base64.b64decode(text))))


def _concat(tables: Sequence[Any]) -> Any:
    if not tables:
        return None
    if len(tables) == 1:
        return tables[0]
    return pyarrow().concat_tables(tables)


def _one_batch(tables: Sequence[Any]) -> Any:
    """Slices of blocks as one RecordBatch (one copy when they are in several pieces)."""
    if not tables:
        return None
    pa = pyarrow()
    table = tables[0] if len(tables) == 1 else pa.concat_tables(tables)
    batches = table.to_batches()
    if len(batches) != 1:
        batches = table.combine_chunks().to_batches()
    if not batches:
        return pa.RecordBatch.from_pylist([], schema=table.schema)
    return batches[0]
