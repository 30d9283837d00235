"""Record batches as CSV text by Arrow's C++ writer, for the databases' bulk loads.

PostgreSQL's ``COPY ... (FORMAT csv)`` and MySQL's ``LOAD DATA`` parse it as they parse a file:
strings always quoted (an empty string is ``""``, a null an empty unquoted field for COPY and
``NULL`` for LOAD DATA), quotes doubled. PostgreSQL gets binary COPY instead when every column
type allows (binary_copy.py): the server then parses nothing (see docs/how-to/columnar.md).

Arrow writes some types in a form the servers would misread or that Arrow cannot write at all,
so ``as_text`` converts them first: bytes as hex (a bytea's ``\\x`` form; MySQL unhexes them in
the statement), dictionaries decoded, string views as strings; types neither server could
parse (durations, lists, structs...) are refused naming the column.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Collection, Sequence
from typing import Any

from batchline.errors import ConfigurationError


class EncodeError(ValueError):
    """A value its column cannot hold: ``row`` is its 0-based row in the batch encoded."""

    def __init__(self, column: str, kind: str, row: int, reason: str) -> None:
        super().__init__(f"column {column!r} ({kind}), row {row + 1}: {reason}")
        self.column, self.kind, self.row, self.reason = column, kind, row, reason


def is_arrow(item: Any) -> bool:
    """Whether a writer's item is a pyarrow batch or table (without importing pyarrow)."""
    cls = type(item)
    return cls.__module__.startswith("pyarrow") and cls.__name__ in ("RecordBatch", "Table")


def selected(batch: Any, columns: Sequence[str], writer: str) -> Any:
    """The batch's ``columns`` in that order; a column it lacks, or none at all, is a
    ConfigurationError naming it (Arrow's own is a KeyError naming neither writer nor table)."""
    if not columns:
        raise ConfigurationError(f"{writer}: no columns to write (the batch has none)")
    names = batch.schema.names
    missing = [c for c in columns if c not in names]
    if missing:
        raise ConfigurationError(
            f"{writer}: the batch has no column {missing[0]!r} (it has {', '.join(names)})"
        )
    return batch.select(list(columns))


def is_bytes(arrow_type: Any) -> bool:
    """Whether the type's values are bytes (a dictionary's values too)."""
    import pyarrow as pa

    t = arrow_type.value_type if pa.types.is_dictionary(arrow_type) else arrow_type
    return bool(
        pa.types.is_binary(t)
        or pa.types.is_large_binary(t)
        or pa.types.is_binary_view(t)
        or pa.types.is_fixed_size_binary(t)
    )


def check_types(schema: Any, writer: str) -> None:
    """Refuse, before any row is sent, a column whose values the servers cannot parse as
    text (Arrow writes a duration as a bare number, which an interval reads as seconds)."""
    import pyarrow as pa

    for field in schema:
        t = field.type.value_type if pa.types.is_dictionary(field.type) else field.type
        plain = (
            pa.types.is_integer(t)
            or pa.types.is_floating(t)
            or pa.types.is_decimal(t)
            or pa.types.is_boolean(t)
            or pa.types.is_string(t)
            or pa.types.is_large_string(t)
            or pa.types.is_string_view(t)
            or pa.types.is_date(t)
            or pa.types.is_time(t)
            or pa.types.is_timestamp(t)
            or pa.types.is_null(t)
        )
        if not plain and not is_bytes(t):
            raise ConfigurationError(
                f"{writer}: column {field.name!r} is {t}, which a bulk load cannot take as text"
            )


def as_text(
    table: Any,
    *,
    mysql: bool = False,
    hexed: Collection[str] = (),
) -> Any:
    """The table with its columns in types Arrow writes as the server reads them: bytes (and
    the columns named in ``hexed``) as hex, ``\\x`` before it for PostgreSQL's bytea; for
    MySQL booleans as 0 and 1 and nanoseconds as microseconds (it would warn at the ninth
    digit, even a zero). A value that cannot be written is an EncodeError."""
    import pyarrow as pa
    import pyarrow.compute as pc

    for i, field in enumerate(table.schema):
        column = original = table.column(i)
        t = field.type
        if pa.types.is_dictionary(t):
            column, t = column.cast(t.value_type), t.value_type
        if is_bytes(t) or field.name in hexed:
            prefix = "" if mysql else "\\x"
            values = column.cast(pa.large_binary()).to_pylist()
            hexes = [None if v is None else prefix + v.hex() for v in values]
            column = pa.array(hexes, pa.large_string())
        elif pa.types.is_string_view(t):
            column = column.cast(pa.large_string())
        elif not mysql and (pa.types.is_string(t) or pa.types.is_large_string(t)):
            nul = pc.match_substring(column, "\x00")
            if pc.any(nul).as_py():
                # the server's error names neither the column nor the character
                row = pc.index(nul, True).as_py()
                reason = "PostgreSQL text cannot contain NUL (0x00) characters"
                raise EncodeError(field.name, str(t), row, reason)
        elif mysql and pa.types.is_boolean(t):
            column = column.cast(pa.int8())
        elif mysql and (pa.types.is_timestamp(t) or pa.types.is_time(t)) and t.unit == "ns":
            to = pa.timestamp("us", t.tz) if pa.types.is_timestamp(t) else pa.time64("us")
            column = _cast(column, to, field.name, str(t))
        if column is not original:
            table = table.set_column(i, field.name, column)
    return table


def _cast(column: Any, to: Any, name: str, kind: str) -> Any:
    """``column`` cast to ``to``; a value that would change is an EncodeError naming it."""
    import pyarrow as pa

    try:
        return column.cast(to)
    except pa.ArrowInvalid as exc:
        row = first_refused(lambda c: c.cast(to), column)
        raise EncodeError(name, kind, row, " ".join(str(exc).split())) from None


def first_refused(convert: Callable[[Any], Any], column: Any) -> int:
    """The first row ``convert`` refuses, by halves (it refused the whole column)."""
    start, stop = 0, len(column)
    while stop - start > 1:
        middle = (start + stop) // 2
        try:
            convert(column.slice(start, middle - start))
        except ValueError:
            stop = middle
        else:
            start = middle
    return start


def as_table(item: Any) -> Any:
    """A record batch (or a table) as a table."""
    import pyarrow as pa

    return item if isinstance(item, pa.Table) else pa.Table.from_batches([item])


def csv_text(batch: Any) -> bytes:
    """A batch's rows as COPY's CSV (no header): nulls as empty unquoted fields."""
    return csv_bytes(as_text(as_table(batch)))


def csv_bytes(table: Any, *, null: str = "") -> bytes:
    """A table's rows as CSV text by Arrow's C++ writer (no header, strings quoted where
    needed)."""
    import pyarrow.csv as pacsv

    out = io.BytesIO()
    pacsv.write_csv(
        table,
        out,
        pacsv.WriteOptions(include_header=False, quoting_style="needed", null_string=null),
    )
    return out.getvalue()
