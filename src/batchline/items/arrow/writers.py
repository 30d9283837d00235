"""ArrowSqlWriter (any SQLAlchemy table) and ArrowCsvWriter (a restartable CSV file), for
columnar steps. PostgresCopyWriter and MySqlLoadDataWriter take record batches themselves."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from batchline.errors import ConfigurationError
from batchline.items.arrow.blocks import pyarrow
from batchline.items.arrow.text import first_refused, is_bytes, selected
from batchline.items.base import Chunk
from batchline.items.files.writer import FileWriter
from batchline.items.sql_writers import SqlWriter


class ArrowSqlWriter(SqlWriter):
    """Record batches into an SQLAlchemy table, as ``SqlWriter`` writes rows (insert or
    upsert, in the chunk's transaction, on any database). The rows go through Python: on
    PostgreSQL and MySQL the bulk writers are much faster."""

    def __init__(self, table: sa.Table, **options: Any) -> None:
        super().__init__(table, **options)

    def write(self, items: Sequence[Any], chunk: Chunk) -> None:
        sqlite = isinstance(chunk.connection, sa.Connection) and (
            chunk.connection.dialect.name == "sqlite"
        )
        rows: list[dict[str, Any]] = []
        for batch in items:
            _nested_into_json(batch.schema, self.table, repr(self))
            if sqlite:
                _refuse_nan(batch, repr(self), len(rows))
            rows.extend(_in_microseconds(batch, repr(self), len(rows)).to_pylist())
        super().write(rows, chunk)


def _nested_into_json(schema: Any, table: sa.Table, writer: str) -> None:
    """A struct, map or list column goes to a JSON column (a list to an ARRAY too): into any
    other the driver would fail naming a parameter's index ("Error binding parameter 2",
    "cannot adapt type 'dict'"), not the column."""
    pa = pyarrow()
    for field in schema:
        kind = field.type
        nested = pa.types.is_struct(kind) or pa.types.is_map(kind)
        listed = pa.types.is_list(kind) or pa.types.is_large_list(kind)
        if not (nested or listed) or field.name not in table.c:
            continue
        target = table.c[field.name].type
        if isinstance(target, sa.JSON) or (listed and isinstance(target, sa.ARRAY)):
            continue
        raise ConfigurationError(
            f"{writer}: column {field.name!r} ({kind}) holds "
            f"{'objects' if nested else 'lists'}, which a {target} column cannot take: make it "
            f"a JSON column{' or an ARRAY' if listed else ''}, or turn the values into text first"
        )


def _refuse_nan(batch: Any, writer: str, before: int) -> None:
    """SQLite stores a NaN as NULL, without a word: a NaN is a ValueError naming its row."""
    import pyarrow.compute as pc

    pa = pyarrow()
    for i, field in enumerate(batch.schema):
        if pa.types.is_floating(field.type):
            nan = pc.is_nan(batch.column(i))
            if pc.any(nan).as_py():
                row = pc.index(nan, True).as_py()
                raise ValueError(
                    f"{writer}: column {field.name!r} ({field.type}), row {before + row + 1} of "
                    "the chunk: NaN, which SQLite would store as NULL"
                )


# Python's datetime, and every driver, keeps microseconds: a nanosecond value would reach the
# database truncated (pandas' Timestamp) or fail in pyarrow. It is refused, as
# MySqlLoadDataWriter refuses it, so that what is stored is what the batch held.
def _in_microseconds(batch: Any, writer: str, before: int) -> Any:
    """The batch with its nanosecond columns in microseconds; a value with nanoseconds is a
    ValueError naming the writer, the column and its row in the chunk."""
    for i, field in enumerate(batch.schema):
        to = _microseconds_of(field.type)
        if to is None:
            continue
        column = batch.column(i)
        try:
            column = column.cast(to)
        except ValueError:  # ArrowInvalid: a value would lose its nanoseconds
            row = first_refused(lambda c: c.cast(to), column)  # noqa: B023  (called here)
            value = column.slice(row, 1).cast("string")[0].as_py()
            raise ValueError(
                f"{writer}: column {field.name!r} ({field.type}), row {before + row + 1} of the "
                f"chunk: {value} has nanoseconds, which the database cannot hold (cast the "
                "column to microseconds first, rounding or truncating as you mean to)"
            ) from None
        batch = batch.set_column(i, field.name, column)
    return batch


def _microseconds_of(arrow_type: Any) -> Any:
    """The microsecond type for a nanosecond timestamp, time or duration; None otherwise."""
    pa = pyarrow()
    if getattr(arrow_type, "unit", None) != "ns":
        return None
    if pa.types.is_timestamp(arrow_type):
        return pa.timestamp("us", arrow_type.tz)
    if pa.types.is_time64(arrow_type):
        return pa.time64("us")
    if pa.types.is_duration(arrow_type):
        return pa.duration("us")
    return None


class ArrowCsvWriter(FileWriter[Any]):
    """Record batches into a CSV file, by Arrow's C++ writer; restartable as the row file
    writers are (the committed length is kept, a restart cuts the file back to it; the footer
    is written when the step completes). ``columns`` selects and orders the columns, and names
    them in the header line (``header=False``: none). Other options are FileWriter's."""

    def __init__(
        self,
        path: str,
        columns: Sequence[str],
        *,
        header: bool = True,
        delimiter: str = ",",
        **options: Any,
    ) -> None:
        self.columns = list(columns)
        if not self.columns:
            raise ConfigurationError(f"ArrowCsvWriter({path!r}) needs column names")
        if len(delimiter) != 1 or delimiter in '"\r\n':
            raise ConfigurationError(
                f"ArrowCsvWriter({path!r}): the delimiter must be one character other than a "
                f"quote or a line end, not {delimiter!r}"
            )
        self.delimiter = delimiter
        heading = _header_line(self.columns, delimiter) if header else None
        super().__init__(path, header=heading, **options)

    def __repr__(self) -> str:
        return f"ArrowCsvWriter({self.path!r})"

    def write(self, items: Sequence[Any], chunk: Chunk) -> None:
        super().write(items, chunk)
        self.written += sum(item.num_rows for item in items) - len(items)  # rows, not batches

    def format(self, items: Sequence[Any]) -> str:
        import pyarrow.csv as pacsv

        pa = pyarrow()
        tables = [b if isinstance(b, pa.Table) else pa.Table.from_batches([b]) for b in items]
        out = io.BytesIO()
        # The header's line end on every line; named only when it is not Arrow's default, so
        # the default needs no pyarrow that knows the option.
        eol = {} if self.line_separator == "\n" else {"eol": self.line_separator}
        options = pacsv.WriteOptions(
            include_header=False, delimiter=self.delimiter, quoting_style="needed", **eol
        )
        done = 0
        for table in tables:
            pacsv.write_csv(
                self._as_written(selected(table, self.columns, repr(self)), done), out, options
            )
            done += table.num_rows
        return out.getvalue().decode("utf-8")

    def _as_written(self, table: Any, before: int) -> Any:
        """The columns in types Arrow's CSV writer takes and quotes as they need: views as
        their plain types (it has none), bytes checked to be text, and, for a delimiter that
        a number, date or time may hold, every column as text (Arrow quotes only strings)."""
        pa = pyarrow()
        views = {pa.string_view(): pa.large_string(), pa.binary_view(): pa.large_binary()}
        quote_all = self.delimiter.isalnum() or self.delimiter in "+-.: "
        for i, field in enumerate(table.schema):
            column = table.column(i)
            if field.type in views:
                column = column.cast(views[field.type])
            if is_bytes(field.type):
                column = self._utf8(column, field, before)
            elif quote_all and not _is_text(field.type):
                column = column.cast(pa.large_string())
            if column is not table.column(i):
                table = table.set_column(i, field.name, column)
        return table

    def _utf8(self, column: Any, field: Any, before: int) -> Any:
        """Bytes as the text they are; bytes that are not UTF-8 are a ValueError naming the
        column and the row (Arrow's own names neither)."""
        pa = pyarrow()
        try:
            return column.cast(pa.large_string())
        except pa.ArrowInvalid:
            row = first_refused(lambda c: c.cast(pa.large_string()), column)
            raw = column.slice(row, 1).cast(pa.large_binary())[0].as_py()
            raise ValueError(
                f"{self!r}: column {field.name!r} ({field.type}), row {before + row + 1} of the "
                f"chunk: {raw[:40]!r} is not UTF-8 text, which a CSV file holds"
            ) from None


def _is_text(arrow_type: Any) -> bool:
    pa = pyarrow()
    t = arrow_type.value_type if pa.types.is_dictionary(arrow_type) else arrow_type
    return bool(pa.types.is_string(t) or pa.types.is_large_string(t))


def _header_line(names: Sequence[str], delimiter: str) -> str:
    """The names as a CSV line, quoted where a name holds the delimiter, a quote or a line
    end (joined as they were, such a header read back had other columns)."""
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="\n").writerow(names)
    return out.getvalue()[:-1]
