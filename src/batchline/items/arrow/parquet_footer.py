"""Moving a Parquet row group: its footer's byte offsets shifted, nothing else changed.

Arrow writes a Parquet file only from its first byte (a sink already holding data is refused),
so ``ArrowParquetWriter`` encodes each chunk as a file of its own and appends that file's row
group to the output. The row group's offsets then count from the wrong start; this module
rewrites them in the footer (Thrift's compact protocol, the only encoding Parquet footers use),
copying every other byte as it is; ``merge`` then has pyarrow join the moved footers into the
output's footer. The object-store path of the writer joins its part files the same way.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

_MAGIC = b"PAR1"
_SHIFT = "shift"  # an i64 byte offset: add the distance the row group moved

# FileMetaData.row_groups (4) -> RowGroup: columns (1), file_offset (5);
# ColumnChunk: file_offset (2), meta_data (3), offset_index_offset (4), column_index_offset (6);
# ColumnMetaData: data_page_offset (9), index_page_offset (10), dictionary_page_offset (11),
# bloom_filter_offset (14). Field ids from parquet-format's parquet.thrift.
_COLUMN_META: dict[int, Any] = {9: _SHIFT, 10: _SHIFT, 11: _SHIFT, 14: _SHIFT}
_COLUMN_CHUNK: dict[int, Any] = {2: _SHIFT, 3: _COLUMN_META, 4: _SHIFT, 6: _SHIFT}
_ROW_GROUP: dict[int, Any] = {1: _COLUMN_CHUNK, 5: _SHIFT}
_FILE_META: dict[int, Any] = {4: _ROW_GROUP}

_STOP, _TRUE, _FALSE, _BYTE, _I16, _I32, _I64, _DOUBLE, _BINARY = range(9)
_LIST, _SET, _MAP, _STRUCT = 9, 10, 11, 12


class FooterError(ValueError):
    """The bytes are not a Parquet footer this module can read."""


def split_file(data: bytes) -> tuple[bytes, bytes]:
    """A whole Parquet file's bytes as (row group data after the leading magic, footer)."""
    if len(data) < 12 or data[:4] != _MAGIC or data[-4:] != _MAGIC:
        raise FooterError("not a Parquet file (no PAR1 at both ends)")
    length = int.from_bytes(data[-8:-4], "little")
    end = len(data) - 8 - length
    if end < 4:
        raise FooterError(f"footer length {length} does not fit a file of {len(data)} bytes")
    return data[4:end], data[end:-8]


def as_file(footer: bytes) -> bytes:
    """A footer as the bytes of a metadata-only file (what ``pq.read_metadata`` opens)."""
    return _MAGIC + footer + len(footer).to_bytes(4, "little") + _MAGIC


def encode(table: Any, compression: str) -> bytes:
    """``table`` as a whole Parquet file of one row group."""
    import pyarrow.parquet as pq

    out = io.BytesIO()
    pq.write_table(table, out, compression=compression, row_group_size=max(table.num_rows, 1))
    return out.getvalue()


def read_footer(footer: bytes) -> Any:
    """A footer's ``pyarrow.parquet.FileMetaData``."""
    import pyarrow.parquet as pq

    return pq.read_metadata(io.BytesIO(as_file(footer)))


def merge(footers: Sequence[bytes]) -> bytes:
    """Footers (their offsets already moved) as the one that ends the file: their row groups
    in order, then the footer's length and the magic. pyarrow checks their schemas agree."""
    merged = read_footer(footers[0])
    for footer in footers[1:]:
        merged.append_row_groups(read_footer(footer))
    out = io.BytesIO()
    merged.write_metadata_file(out)  # a metadata-only file: the magic, then what we need
    return out.getvalue()[len(_MAGIC) :]


def shift_offsets(footer: bytes, delta: int) -> bytes:
    """The footer (a FileMetaData) with every row group byte offset moved by ``delta``."""
    out = bytearray()
    try:
        end = _Copier(footer, out, delta).struct(0, _FILE_META)
    except IndexError:
        raise FooterError("the footer ends in the middle of a value") from None
    if end != len(footer):
        raise FooterError(f"{len(footer) - end} bytes after the footer's end")
    return bytes(out)


class _Copier:
    def __init__(self, src: bytes, out: bytearray, delta: int) -> None:
        self.src, self.out, self.delta = src, out, delta

    def varint(self, pos: int) -> tuple[int, int]:
        value = shift = 0
        while True:
            byte = self.src[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                return value, pos
            shift += 7
            if shift > 70:
                raise FooterError("a varint longer than ten bytes")

    def copy_varint(self, pos: int) -> int:
        _, end = self.varint(pos)
        self.out += self.src[pos:end]
        return end

    def struct(self, pos: int, spec: dict[int, Any] | None) -> int:
        field = 0
        while True:
            header = self.src[pos]
            pos += 1
            self.out.append(header)
            kind = header & 0x0F
            if kind == _STOP:
                return pos
            if header >> 4:
                field += header >> 4
            else:  # a field id too far from the last one: it follows as a zigzag varint
                raw, end = self.varint(pos)
                self.out += self.src[pos:end]
                pos, field = end, (raw >> 1) ^ -(raw & 1)
            rule = spec.get(field) if spec else None
            if rule == _SHIFT and kind == _I64:
                pos = self.shifted(pos)
            else:
                pos = self.value(pos, kind, rule if isinstance(rule, dict) else None)

    def shifted(self, pos: int) -> int:
        raw, pos = self.varint(pos)
        value = (raw >> 1) ^ -(raw & 1)
        if value > 0:  # 0 is "not set" (a deprecated ColumnChunk.file_offset, say)
            value += self.delta
        raw = (value << 1) ^ (value >> 63)
        while raw >= 0x80:
            self.out.append((raw & 0x7F) | 0x80)
            raw >>= 7
        self.out.append(raw)
        return pos

    def value(self, pos: int, kind: int, spec: dict[int, Any] | None) -> int:
        if kind in (_TRUE, _FALSE):
            return pos
        if kind == _BYTE:
            self.out.append(self.src[pos])
            return pos + 1
        if kind in (_I16, _I32, _I64):
            return self.copy_varint(pos)
        if kind == _DOUBLE:
            self.out += self.src[pos : pos + 8]
            return pos + 8
        if kind == _BINARY:
            length, end = self.varint(pos)
            self.out += self.src[pos : end + length]
            return end + length
        if kind in (_LIST, _SET):
            header = self.src[pos]
            self.out.append(header)
            pos += 1
            size, element = header >> 4, header & 0x0F
            if size == 15:
                start = pos
                size, pos = self.varint(pos)
                self.out += self.src[start:pos]
            for _ in range(size):
                # booleans in a container take a byte each
                pos = self.value(pos, _BYTE if element in (_TRUE, _FALSE) else element, spec)
            return pos
        if kind == _MAP:
            start = pos
            size, pos = self.varint(pos)
            self.out += self.src[start:pos]
            if size:
                types = self.src[pos]
                self.out.append(types)
                pos += 1
                key, val = types >> 4, types & 0x0F
                for _ in range(size):
                    pos = self.value(pos, _BYTE if key in (_TRUE, _FALSE) else key, None)
                    pos = self.value(pos, _BYTE if val in (_TRUE, _FALSE) else val, None)
            return pos
        if kind == _STRUCT:
            return self.struct(pos, spec)
        raise FooterError(f"unknown Thrift type {kind}")
