"""The local Parquet file an ``ArrowParquetWriter`` grows a row group per chunk, cut back to the
last committed row group on restart.

In ``<target>.parts/`` live ``data.parquet`` (the magic, then each chunk's row group, appended)
and ``footers`` (each chunk's footer, its offsets already moved to where its row group lies,
as a 4-byte length and the Thrift bytes). The step's context records the committed length of
the data and the number of committed row groups: a restart truncates ``data.parquet`` to that
length and keeps the footers of those groups. When the step completes, the footers are merged
into the file's own footer and the file is moved into place. Each row group is encoded once,
by Arrow, and nothing else is written but its footer (a few hundred bytes a column).

Arrow writes no page index or bloom filter here (their bytes hold absolute offsets of their
own, which parquet_footer.py does not move).
"""

from __future__ import annotations

import io
import os
from typing import Any, BinaryIO

from batchline.errors import ConfigurationError
from batchline.items.arrow.blocks import pyarrow
from batchline.items.arrow.parquet_footer import (
    FooterError,
    as_file,
    encode,
    merge,
    read_footer,
    shift_offsets,
    split_file,
)

_MAGIC = b"PAR1"


class AppendedParquet:
    """``data.parquet`` and ``footers`` in the staging folder; positions in bytes."""

    def __init__(self, staging: str, label: str, compression: str) -> None:
        self.staging = staging
        self.label = label  # the writer's path, for errors
        self.compression = compression
        self.data_path = os.path.join(staging, "data.parquet")
        self.footers_path = os.path.join(staging, "footers")
        self._data: BinaryIO | None = None
        self._footers: BinaryIO | None = None
        self.footers: list[bytes] = []  # committed, then pending
        self.groups: list[int] = []  # row groups of each footer
        self.schema: Any = None  # the first row group's Arrow schema
        self._committed = (len(_MAGIC), 0, 0)  # data bytes, footers, footers' bytes

    # --- positions --------------------------------------------------------------------------

    @property
    def size(self) -> int:
        """The data's length with the pending row groups."""
        return self._stream(self._data).tell()

    @property
    def is_open(self) -> bool:
        return self._data is not None

    @property
    def row_groups(self) -> int:
        return sum(self.groups)

    # --- life -------------------------------------------------------------------------------

    def start_new(self) -> None:
        os.makedirs(self.staging, exist_ok=True)
        self._data = open(self.data_path, "w+b")  # noqa: SIM115  (kept open across chunks)
        self._data.write(_MAGIC)
        self._footers = open(self.footers_path, "w+b")  # noqa: SIM115
        self.footers, self.groups, self.schema = [], [], None
        self._committed = (len(_MAGIC), 0, 0)

    def resume(self, size: int, groups: int, target: str) -> None:
        """Back to the commit that recorded ``size`` bytes and ``groups`` row groups."""
        if not os.path.exists(self.data_path):
            if not os.path.exists(target):
                raise ConfigurationError(
                    f"{self.label}: restarting after {groups} committed row groups, but neither "
                    f"{self.data_path} nor the file exists"
                )
            self._take_back(target)
        self._data = open(self.data_path, "r+b")  # noqa: SIM115
        found = os.fstat(self._data.fileno()).st_size
        if found < size:
            raise ConfigurationError(
                f"{self.label}: restarting at byte {size} of {self.data_path}, but it holds only "
                f"{found} bytes (changed since the last commit?)"
            )
        self._data.truncate(size)
        self._data.seek(size)
        # a footers file that is gone describes no row group: the check below says so
        exists = os.path.exists(self.footers_path)
        self._footers = open(self.footers_path, "r+b" if exists else "w+b")  # noqa: SIM115
        self.footers, self.groups, self.schema = [], [], None
        kept = 0
        while self.row_groups < groups:
            head = self._footers.read(4)
            footer = self._footers.read(int.from_bytes(head, "little")) if len(head) == 4 else b""
            if not footer:
                raise ConfigurationError(
                    f"{self.label}: restarting after {groups} committed row groups, but "
                    f"{self.footers_path} describes only {self.row_groups}"
                )
            self._keep(footer)
            kept = self._footers.tell()
        self._footers.truncate(kept)
        self._footers.seek(kept)
        self._committed = (size, len(self.footers), kept)

    def _take_back(self, target: str) -> None:
        """The file was moved into place but the step's end was not recorded: it becomes the
        data again, its footer the one entry of ``footers``."""
        os.makedirs(self.staging, exist_ok=True)
        with open(target, "rb") as f:
            f.seek(-8, os.SEEK_END)
            tail = f.read(8)
            end = f.seek(0, os.SEEK_END) - 8 - int.from_bytes(tail[:4], "little")
            f.seek(end)
            footer = f.read(int.from_bytes(tail[:4], "little"))
        with open(self.footers_path, "wb") as out:
            out.write(len(footer).to_bytes(4, "little") + footer)
        os.replace(target, self.data_path)
        os.truncate(self.data_path, end)

    def append(self, table: Any) -> None:
        """Encode ``table`` as one row group and append it, pending until ``commit``."""
        data, footers = self._stream(self._data), self._stream(self._footers)
        if self.schema is not None and not table.schema.equals(self.schema):
            table = conform(table, self.schema, f"{self.label}: a chunk", "the file")
        body, footer = split_file(encode(table, self.compression))
        moved = shift_offsets(footer, data.tell() - len(_MAGIC))
        data.write(body)
        data.flush()
        footers.write(len(moved).to_bytes(4, "little") + moved)
        footers.flush()
        self._keep(moved)

    def commit(self) -> None:
        self._committed = (self.size, len(self.footers), self._stream(self._footers).tell())

    def rollback(self) -> None:
        size, count, footers_size = self._committed
        data, footers = self._stream(self._data), self._stream(self._footers)
        data.truncate(size)
        data.seek(size)
        footers.truncate(footers_size)
        footers.seek(footers_size)
        del self.footers[count:], self.groups[count:]
        if not self.footers:
            self.schema = None

    def finish(self, target: str) -> bool:
        """The committed row groups, with their merged footer, moved to ``target``; False when
        there are none (nothing is written)."""
        self.rollback()  # only what committed
        if not self.footers:
            self.close()
            return False
        data = self._stream(self._data)
        data.write(merge(self.footers))
        data.flush()
        os.fsync(data.fileno())
        self.close()
        os.replace(self.data_path, target)
        return True

    def close(self) -> None:
        for stream in (self._data, self._footers):
            if stream is not None:
                stream.close()
        self._data = self._footers = None

    # --- helpers ----------------------------------------------------------------------------

    def _keep(self, footer: bytes) -> None:
        import pyarrow.parquet as pq

        pa = pyarrow()
        try:
            meta = read_footer(footer)
        except (pa.ArrowException, OSError, FooterError) as exc:
            raise ConfigurationError(
                f"{self.label}: {self.footers_path} holds a footer that cannot be read ({exc})"
            ) from None
        if self.schema is None:  # as Arrow wrote it (its schema is kept in the footer)
            self.schema = pq.read_schema(io.BytesIO(as_file(footer)))
        self.footers.append(footer)
        self.groups.append(meta.num_row_groups)

    def _stream(self, stream: BinaryIO | None) -> BinaryIO:
        if stream is None:
            raise ConfigurationError(f"{self.label}: the writer is not open")
        return stream


def conform(table: Any, schema: Any, what: str, other: str) -> Any:
    """``table`` (``what``) cast to ``schema`` (``other``'s) where Arrow can: a column null
    throughout a chunk, say. Other columns, or a value the cast would change (an int64 too big
    for int32, a null in a column not nullable), are a ConfigurationError naming the column."""
    pa = pyarrow()
    if table.schema.equals(schema):
        return table
    names, expected = table.schema.names, schema.names
    if names != expected:
        raise ConfigurationError(f"{what} has columns {names}, {other} has {expected}")
    try:
        return table.cast(schema)
    except (ValueError, pa.ArrowNotImplementedError) as exc:  # ArrowInvalid is a ValueError
        column = next(
            (
                f"{f.name} ({_kind(table.schema.field(f.name))}, {other} has {_kind(f)})"
                for f in schema
                if not table.schema.field(f.name).equals(f)
            ),
            "?",
        )
        raise ConfigurationError(
            f"{what}'s column {column} cannot be cast to {other}'s type: "
            f"{' '.join(str(exc).split())}"
        ) from None


def _kind(field: Any) -> str:
    return str(field.type) if field.nullable else f"{field.type} not null"
