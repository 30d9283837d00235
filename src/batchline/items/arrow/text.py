"""Record batches as CSV text by Arrow's C++ writer, for the databases' bulk loads.

PostgreSQL's ``COPY ... (FORMAT csv)`` and MySQL's ``LOAD DATA`` parse it as they parse a file:
strings always quoted (an empty string is ``""``, a null an empty unquoted field for COPY and
``NULL`` for LOAD DATA), quotes doubled. PostgreSQL gets binary COPY instead when every column
type allows (binary_copy.py): the server then parses nothing (see docs/how-to/columnar.md).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any


def is_arrow(item: Any) -> bool:
    """Whether a writer's item is a pyarrow batch or table (without importing pyarrow)."""
    cls = type(item)
    return cls.__module__.startswith("pyarrow") and cls.__name__ in ("RecordBatch", "Table")


def csv_text(
    batches: Sequence[Any],
    columns: Sequence[str] | None,
    *,
    null: str = "",
    bools_as_ints: bool = False,
) -> tuple[bytes, list[str]]:
    """The batches' rows as CSV (no header), and the columns written in order: ``columns``
    when given (selected by name), else the batches' own."""
    table = csv_table(batches, columns, bools_as_ints=bools_as_ints)
    return csv_bytes(table, null=null), list(table.column_names)


def csv_table(
    batches: Sequence[Any], columns: Sequence[str] | None, *, bools_as_ints: bool = False
) -> Any:
    """The batches as one table of the columns to write (``columns`` when given), booleans as
    0 and 1 when asked: what ``csv_bytes`` renders, whole or a slice at a time."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if all(isinstance(b, pa.RecordBatch) for b in batches):
        table = pa.Table.from_batches(batches)
    else:
        table = pa.concat_tables(
            [b if isinstance(b, pa.Table) else pa.Table.from_batches([b]) for b in batches]
        )
    if columns:
        table = table.select(list(columns))
    if bools_as_ints:
        for i, field in enumerate(table.schema):
            if pa.types.is_boolean(field.type):
                table = table.set_column(i, field.name, pc.cast(table.column(i), pa.int8()))
    return table


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
