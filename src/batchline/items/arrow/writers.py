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
from batchline.items.arrow.text import selected
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
        rows = [row for batch in items for row in batch.to_pylist()]
        super().write(rows, chunk)


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
        views = {pa.string_view(): pa.large_string(), pa.binary_view(): pa.large_binary()}
        for table in tables:  # Arrow's CSV writer has no views
            table = selected(table, self.columns, repr(self))
            for i, field in enumerate(table.schema):
                if field.type in views:
                    table = table.set_column(i, field.name, table.column(i).cast(views[field.type]))
            pacsv.write_csv(
                table,
                out,
                pacsv.WriteOptions(
                    include_header=False, delimiter=self.delimiter, quoting_style="needed"
                ),
            )
        return out.getvalue().decode("utf-8")


def _header_line(names: Sequence[str], delimiter: str) -> str:
    """The names as a CSV line, quoted where a name holds the delimiter, a quote or a line
    end (joined as they were, such a header read back had other columns)."""
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="\n").writerow(names)
    return out.getvalue()[:-1]
