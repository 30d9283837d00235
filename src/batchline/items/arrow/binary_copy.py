"""Record batches as PostgreSQL binary COPY data, built column by column with numpy.

The server reads binary COPY without parsing text (no digit-by-digit integers, dates or
numerics), which is where ``\\copy`` of a CSV file spends its time. Each value is written in its
target column's binary format, so the encoder asks the table its column types first
(``column_types``) and encodes only those it knows: smallint, integer, bigint, real, double
precision, boolean, date, timestamp, timestamptz, text, varchar, char, bytea, and numeric from
Arrow decimals of up to 18 digits. ``encoder`` returns None for anything else, and the writer
then sends CSV text. A value its column cannot hold (an overflow, a NUL in text) is an
``EncodeError`` naming the column and row, as the server would refuse it: the server checks a
binary value's range less than its text (a float4 overflows to infinity, an int32 would wrap).

A row is ``int16 field count`` then per field ``int32 length`` (-1 for NULL) and the bytes;
the whole COPY starts with the signature and ends with ``int16 -1``. Each column gives its
length words (numpy) and its values as an Arrow binary array (null where NULL); Arrow's
``binary_join_element_wise`` then lays each row's words and values end to end in C++, one pass
over the bytes (a numpy scatter per field, its index arrays as large as the data, cost several
times more).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from typing import Any

from batchline.items.arrow.text import EncodeError, first_refused

HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
TRAILER = b"\xff\xff"
_PG_EPOCH_DAYS = 10_957  # 2000-01-01 - 1970-01-01
_PG_EPOCH_MICROS = _PG_EPOCH_DAYS * 86_400 * 1_000_000
# PostgreSQL's own limits (IS_VALID_DATE, IS_VALID_TIMESTAMP), since 1970: beyond them an int32
# day count would wrap, or land on the infinity sentinels.
_PG_DAYS = (-2_451_545 + _PG_EPOCH_DAYS, 2_145_031_949 + _PG_EPOCH_DAYS)
_PG_MIN_MICROS = -211_813_488_000_000_000 + _PG_EPOCH_MICROS

# (lengths, values): per row the value's byte length (-1 for NULL), as numpy int64; the values
# as an Arrow binary or large_binary array of the column's length, null where NULL.
Encoded = tuple[Any, Any]
Encode = Callable[[Any], Encoded]


def column_types(cursor: Any, schema: str | None, table: str, names: Sequence[str]) -> list[str]:
    """The target columns' types as ``format_type`` spells them, in ``names``' order."""
    qualified = f'"{schema}"."{table}"' if schema else f'"{table}"'
    cursor.execute(
        "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
        "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
        (qualified,),
    )
    found = dict(cursor.fetchall())
    return [found.get(name, "?") for name in names]


def encoder(types: Sequence[str], schema: Any) -> Callable[[Any], bytes] | None:
    """A function from a batch (columns in ``types``' order) to its binary rows (no header),
    or None when some column cannot be encoded here."""
    import pyarrow as pa

    try:
        import numpy  # noqa: F401 (pyarrow works without it; the CSV path then)
    except ImportError:
        return None
    encoders: list[Encode] = []
    for pg_type, field in zip(types, schema, strict=True):
        made = _column_encoder(pg_type, field.type, pa)
        if made is None:
            return None
        encoders.append(made)

    def encode(batch: Any) -> bytes:
        return _rows(batch, encoders, list(schema.names), list(types))

    return encode


def _rows(batch: Any, encoders: list[Encode], names: list[str], types: list[str]) -> bytes:
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    n = batch.num_rows
    if n == 0:
        return b""
    parts: list[Any] = [pa.scalar(struct.pack(">h", len(encoders)), pa.large_binary())]
    for i, enc in enumerate(encoders):
        column = batch.column(i)
        try:
            lengths, values = enc(column)
        except ValueError as exc:  # ArrowInvalid too: a cast out of range
            reason = " ".join(str(exc).split())
            raise EncodeError(names[i], types[i], first_refused(enc, column), reason) from None
        parts += [_binary(lengths.astype(">i4"), None, n), values]
    nothing = pa.scalar(b"", pa.large_binary())  # the separator, and a NULL's value
    rows = pc.binary_join_element_wise(*parts, nothing, null_handling="replace")
    offsets = np.frombuffer(rows.buffers()[1], dtype=np.int64)[rows.offset : rows.offset + n + 1]
    data: bytes = rows.buffers()[2][int(offsets[0]) : int(offsets[-1])].to_pybytes()
    return data


def _binary(rows: Any, valid: Any, n: int) -> Any:
    """Fixed-width byte rows, a (valid rows, width) uint8 array, as an Arrow binary array of
    ``n`` rows, null where ``valid`` (None: every row) is False."""
    import numpy as np
    import pyarrow as pa

    width = rows.shape[1] if rows.ndim == 2 else rows.dtype.itemsize
    raw = np.ascontiguousarray(rows).view(np.uint8).reshape(-1, width)
    if valid is None:
        buffers = [None, pa.py_buffer(raw)]
        return pa.FixedSizeBinaryArray.from_buffers(pa.binary(width), n, buffers).cast(
            pa.large_binary()
        )
    full = np.zeros((n, width), dtype=np.uint8)
    full[valid] = raw
    bitmap = pa.py_buffer(np.packbits(valid, bitorder="little"))
    return pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(width), n, [bitmap, pa.py_buffer(full)]
    ).cast(pa.large_binary())


def _valid(column: Any) -> Any:
    import numpy as np

    if column.null_count == 0:
        return None
    return np.asarray(column.is_valid().to_numpy(zero_copy_only=False), dtype=bool)


def _fixed(values_of: Callable[[Any], Any], width: int) -> Encode:
    """An encoder of a fixed-width type: ``values_of(column)`` gives big-endian numpy values."""
    import numpy as np

    def encode(column: Any) -> Encoded:
        valid = _valid(column)
        n = len(column)
        lengths = np.full(n, width, dtype=np.int64)
        if valid is not None:
            lengths[~valid] = -1
            column = column.drop_null()  # values for the valid rows only, in order
        return lengths, _binary(values_of(column), valid, n)

    return encode


def _column_encoder(pg_type: str, arrow_type: Any, pa: Any) -> Encode | None:
    import numpy as np
    import pyarrow.compute as pc

    def cast(to: Any, dtype: str) -> Callable[[Any], Any]:
        return lambda c: pc.cast(c, to).to_numpy(zero_copy_only=False).astype(dtype)

    integer = pa.types.is_integer(arrow_type)
    floating = pa.types.is_floating(arrow_type)
    if pg_type == "bigint" and integer:
        return _fixed(cast(pa.int64(), ">i8"), 8)
    if pg_type == "integer" and integer:
        return _fixed(cast(pa.int32(), ">i4"), 4)
    if pg_type == "smallint" and integer:
        return _fixed(cast(pa.int16(), ">i2"), 2)
    if pg_type == "double precision" and (floating or integer):
        return _fixed(_floats(">f8", pg_type), 8)
    if pg_type == "real" and (floating or integer):
        return _fixed(_floats(">f4", pg_type), 4)
    if pg_type == "boolean" and pa.types.is_boolean(arrow_type):
        return _fixed(cast(pa.bool_(), "u1"), 1)
    if pg_type == "date" and pa.types.is_date(arrow_type):

        def days(c: Any) -> Any:
            since_1970 = pc.cast(c, pa.date32()).cast(pa.int32()).to_numpy(zero_copy_only=False)
            since_1970 = since_1970.astype(np.int64)
            if len(c) and (since_1970.min() < _PG_DAYS[0] or since_1970.max() >= _PG_DAYS[1]):
                raise ValueError("date out of range")
            return (since_1970 - _PG_EPOCH_DAYS).astype(">i4")

        return _fixed(days, 4)
    if pg_type.startswith("timestamp") and pa.types.is_timestamp(arrow_type):
        with_zone = "with time zone" in pg_type
        if with_zone != (arrow_type.tz is not None):
            return None

        def micros(c: Any) -> Any:
            if arrow_type.unit == "ns":
                # rounded half to even, as the server rounds the text of the CSV path
                us, rest = np.divmod(c.cast(pa.int64()).to_numpy(zero_copy_only=False), 1000)
                us += (rest > 500) | ((rest == 500) & (us % 2 == 1))
            else:
                us = pc.cast(c, pa.timestamp("us", arrow_type.tz)).cast(pa.int64())
                us = us.to_numpy(zero_copy_only=False)
            if len(c) and us.min() < _PG_MIN_MICROS:
                raise ValueError("timestamp out of range")
            return (us - _PG_EPOCH_MICROS).astype(">i8")

        return _fixed(micros, 8)
    if pg_type.startswith("numeric") and pa.types.is_decimal(arrow_type):
        return _numeric(arrow_type.precision, arrow_type.scale, pa)
    text = pg_type == "text" or pg_type.startswith(("character varying", "character("))
    if text and (pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type)):
        return _text
    if text and pa.types.is_string_view(arrow_type):
        return lambda c: _text(c.cast(pa.large_string()))
    if pg_type == "bytea" and (
        pa.types.is_binary(arrow_type) or pa.types.is_large_binary(arrow_type)
    ):
        return _text
    if pg_type == "bytea" and (
        pa.types.is_binary_view(arrow_type) or pa.types.is_fixed_size_binary(arrow_type)
    ):
        return lambda c: _text(c.cast(pa.large_binary()))
    return None


def _floats(dtype: str, pg_type: str) -> Callable[[Any], Any]:
    """Numbers as float8 or float4 values: the server rounds an integer's text as numpy does,
    and refuses a float too large for its type (numpy would make it infinite)."""
    import numpy as np

    def values(c: Any) -> Any:
        wide = c.to_numpy(zero_copy_only=False)
        with np.errstate(over="ignore"):
            out = wide.astype(dtype)
        over = np.isinf(out) & np.isfinite(wide)
        if over.any():
            raise ValueError(f"{float(wide[over][0])!r} is out of range for type {pg_type}")
        return out

    return values


def _text(column: Any) -> Encoded:
    """Strings (text, varchar, char) or bytes (bytea) as they are: offsets and one buffer."""
    import numpy as np
    import pyarrow as pa

    large = pa.types.is_large_string(column.type) or pa.types.is_large_binary(column.type)
    buffers = column.buffers()
    offsets = np.frombuffer(buffers[1], dtype=np.int64 if large else np.int32)
    offsets = offsets[column.offset : column.offset + len(column) + 1].astype(np.int64)
    data = np.frombuffer(buffers[2], dtype=np.uint8) if buffers[2] is not None else None
    lengths = np.diff(offsets)
    text = pa.types.is_string(column.type) or pa.types.is_large_string(column.type)
    if text and data is not None and (data[offsets[0] : offsets[-1]] == 0).any():
        raise ValueError("PostgreSQL text cannot contain NUL (0x00) characters")
    valid = _valid(column)
    if valid is not None:
        lengths = np.where(valid, lengths, -1)
    return lengths, column.cast(pa.large_binary())


def _numeric(precision: int, scale: int, pa: Any) -> Encode | None:
    """Arrow decimals as PostgreSQL numeric: base-10000 digits, a fixed count per column (the
    server drops leading and trailing zero digits)."""
    import numpy as np

    align = (-scale) % 4
    if precision + align > 18 or scale < 0:
        return None  # the unscaled value would not fit an int64
    groups = max(1, -(-(precision + align) // 4))
    fraction = (scale + align) // 4
    width = 8 + 2 * groups
    factor = 10**align

    def encode(column: Any) -> Encoded:
        n = len(column)
        if column.type.byte_width != 16:  # decimal32, 64 or 256: as the 128-bit layout read here
            column = column.cast(pa.decimal128(precision, scale))
        raw = np.frombuffer(column.buffers()[1], dtype="<i8")
        unscaled = raw[2 * column.offset : 2 * (column.offset + n) : 2] * factor
        valid = _valid(column)
        lengths = np.full(n, width, dtype=np.int64)
        if valid is not None:
            lengths[~valid] = -1
        header = np.empty((n, 4), dtype=">i2")
        header[:, 0] = groups
        header[:, 1] = groups - 1 - fraction
        header[:, 2] = np.where(unscaled < 0, 0x4000, 0)
        header[:, 3] = scale
        digits = np.empty((n, groups), dtype=">i2")
        rest = np.abs(unscaled)
        for g in range(groups - 1, -1, -1):
            digits[:, g] = rest % 10_000
            rest //= 10_000
        both = np.concatenate([header, digits], axis=1).astype(">i2")  # concatenate: native
        values = both.view(np.uint8).reshape(n, width)
        return lengths, _binary(values if valid is None else values[valid], valid, n)

    return encode
