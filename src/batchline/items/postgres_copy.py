"""PostgreSQL COPY writer: the fastest way into a PostgreSQL table, in the chunk's transaction.

Needs psycopg 3 (the ``postgres`` extra) and a step whose transaction manager is on PostgreSQL.
The rows are streamed with ``cursor.copy()`` on the very connection of the chunk's transaction,
so they commit or roll back with the chunk (and with the step's progress when the job
repository shares that database): a restart neither loses nor repeats a row.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from batchline.errors import ConfigurationError
from batchline.items import copy_rows
from batchline.items.arrow.text import EncodeError, check_types, csv_text, is_arrow, selected
from batchline.items.base import Chunk
from batchline.items.driver_errors import as_sqlalchemy
from batchline.items.rows import tuple_getter


class PostgresCopyWriter:
    """``COPY table (columns) FROM STDIN`` of the chunk's items.

    Items are tuples/lists in column order, or mappings, dataclasses or objects whose values
    are taken by column name (all items of a chunk have one shape). Values are adapted by
    psycopg: None is NULL, str/int/Decimal/date/datetime/bool as their SQL types.
    ``threaded=True`` sends the data from a background thread while Python formats the next rows.

    With ``csv_records=True`` the items are raw CSV records (bytes, from CsvRecordReader) sent
    as they are with ``FORMAT csv``: PostgreSQL parses them, as ``\\copy`` does, and Python only
    finds where records end. ``delimiter`` and ``encoding`` describe the file.

    Items may also be pyarrow record batches (a columnar step): they go as binary COPY built
    column by column (``binary=False``, or a column type it does not encode: CSV text by Arrow).
    """

    # Waits on the database with the GIL released: a chunk step reads ahead meanwhile. Set
    # after each chunk: typed rows, adapted value by value by psycopg's formatter, keep the
    # GIL busy, and a thread reading ahead would only take turns with it.
    overlaps_reads = True

    def __init__(
        self,
        table: str | sa.Table,
        columns: Sequence[str] | None = None,
        *,
        schema: str | None = None,
        threaded: bool = False,
        csv_records: bool = False,
        delimiter: str = ",",
        encoding: str | None = None,
        binary: bool = True,
    ) -> None:
        if isinstance(table, sa.Table):
            self.table = table.name
            self.schema = schema or table.schema
            self.columns = list(columns) if columns else [c.name for c in table.columns]
        else:
            self.table = table
            self.schema = schema
            self.columns = list(columns) if columns else []
        self.threaded = threaded
        self.csv_records = csv_records
        self.delimiter = delimiter
        self.encoding = encoding
        self.binary = binary
        self._encoders: dict[Any, Any] = {}

    def __repr__(self) -> str:
        return f"PostgresCopyWriter({self.table!r})"

    def write(self, items: Sequence[Any], chunk: Chunk) -> None:
        if not items:
            return
        driver = _psycopg_connection(chunk.connection, self.table)
        from psycopg import sql

        target = sql.Identifier(*([self.schema] if self.schema else []), self.table)
        if is_arrow(items[0]):
            with as_sqlalchemy(chunk.connection, f"COPY {self.table} FROM STDIN"):
                self._write_arrow(driver, target, items)
            return
        columns = (
            sql.SQL(" ({})").format(sql.SQL(", ").join(map(sql.Identifier, self.columns)))
            if self.columns
            else sql.SQL("")
        )
        options: Any = sql.SQL("")
        if self.csv_records:
            options = sql.SQL(" (FORMAT csv, DELIMITER {}{})").format(
                sql.Literal(self.delimiter),
                sql.SQL(", ENCODING {}").format(sql.Literal(self.encoding))
                if self.encoding
                else sql.SQL(""),
            )
        statement = sql.SQL("COPY {}{} FROM STDIN{}").format(target, columns, options)
        with as_sqlalchemy(chunk.connection, f"COPY {self.table} FROM STDIN"):
            self._copy(driver, statement, items)

    def _copy(self, driver: Any, statement: Any, items: Sequence[Any]) -> None:
        from psycopg.copy import QueuedLibpqWriter

        if self.csv_records:
            with driver.cursor() as cursor, cursor.copy(statement) as copy:
                data: Any = b"".join(items) if isinstance(items[0], bytes) else "".join(items)
                for start in range(0, len(data), _SLICE):
                    copy.write(data[start : start + _SLICE])
            return
        get = tuple_getter(items[0], self.columns)
        sequences = isinstance(items[0], list | tuple)  # rows already: no call per item
        first = items[0] if sequences else get(items[0])
        block = None
        if _all_text(first):
            block = _text_block(items if sequences else list(map(get, items)))
        self.overlaps_reads = block is not None
        with driver.cursor() as cursor:
            writer = QueuedLibpqWriter(cursor) if self.threaded else None
            with cursor.copy(statement, writer=writer) as copy:
                if block is not None:
                    for start in range(0, len(block), _SLICE):
                        copy.write(block[start : start + _SLICE])
                    return
                rows = items if sequences else map(get, items)
                fmt = copy_rows.formatter()
                if fmt is None:
                    deque(map(copy.write_row, rows), maxlen=0)
                    return
                # psycopg's own row formatter, a block of rows per C loop (items/copy_rows.py).
                tx = copy_rows.transformer(cursor)
                for data in copy_rows.blocks(rows, fmt, tx):
                    copy.write(data)

    def _write_arrow(self, driver: Any, target: Any, batches: Sequence[Any]) -> None:
        """Record batches (a columnar step): binary COPY encoded column by column when every
        column's type allows (items/arrow/binary_copy.py), else CSV text by Arrow's C++ writer;
        a slice of rows at a time, so the server reads one while the next is encoded."""
        import psycopg
        from psycopg import sql

        from batchline.items.arrow import binary_copy

        names = list(self.columns) or list(batches[0].schema.names)
        batches = [selected(b, names, repr(self)) for b in batches if b.num_rows]
        if not batches:
            return
        # an encoder per schema: the batches of a chunk (a processor's outputs) may differ
        encoders = [self._binary_encoder(driver, names, b.schema) for b in batches]
        binary = all(e is not None for e in encoders)
        if not binary:
            for batch in batches:
                check_types(batch.schema, repr(self))
        options = sql.SQL("FORMAT binary" if binary else "FORMAT csv")
        statement = sql.SQL("COPY {} ({}) FROM STDIN ({})").format(
            target, sql.SQL(", ").join(map(sql.Identifier, names)), options
        )
        self.overlaps_reads = True
        done = 0
        with driver.cursor() as cursor, cursor.copy(statement) as copy:
            if binary:
                copy.write(binary_copy.HEADER)
            for batch, encode in zip(batches, encoders, strict=True):
                for start in range(0, batch.num_rows, _ARROW_SLICE):
                    piece = batch.slice(start, _ARROW_SLICE)
                    try:
                        copy.write(encode(piece) if binary else csv_text(piece))
                    except EncodeError as exc:
                        # the class the server raises for a value it refuses (sqlalchemy's
                        # DataError), so the CSV and binary paths skip alike
                        raise psycopg.DataError(
                            f"{self!r}: column {exc.column!r} ({exc.kind}), row "
                            f"{done + start + exc.row + 1} of the chunk: {exc.reason}"
                        ) from None
                done += batch.num_rows
            if binary:
                copy.write(binary_copy.TRAILER)

    def _binary_encoder(self, driver: Any, names: list[str], schema: Any) -> Any:
        """The binary encoder for batches of this schema (the table's column types are asked
        once per schema), or None when a column's type is not one it encodes."""
        if not self.binary:
            return None
        from batchline.items.arrow import binary_copy

        key = (tuple(names), schema)
        if key not in self._encoders:
            with driver.cursor() as cursor:
                types = binary_copy.column_types(cursor, self.schema, self.table, names)
            self._encoders[key] = binary_copy.encoder(types, schema)
        return self._encoders[key]


_SLICE = 1 << 20
# Rows formatted per COPY message from a record batch: about 1 MB of CSV for 10 columns.
_ARROW_SLICE = 10_000
_SPECIAL = ("\\", "\t", "\n", "\r", "\x00")


def _all_text(row: Any) -> bool:
    """Whether a row is all strings (its chunk may then go as one block of COPY text)."""
    return all(value.__class__ is str for value in row)


def _text_block(rows: Sequence[Any]) -> str | None:
    """COPY text for rows whose values are all strings free of escapes and NUL, built by C joins.

    The common case for rows read from a text file, and several times cheaper than adapting
    value by value; None (anything else: numbers, NULLs, tabs...) goes through psycopg's
    ``write_row``, which escapes and adapts every value.
    """
    try:
        flat = "".join(map("".join, rows))
    except TypeError:
        return None
    if any(c in flat for c in _SPECIAL):
        return None
    return "\n".join(map("\t".join, rows)) + "\n"


def _psycopg_connection(connection: Any, table: str) -> Any:
    if not isinstance(connection, sa.Connection):
        raise ConfigurationError(
            f"PostgresCopyWriter({table!r}) needs a step whose transaction manager is on "
            "PostgreSQL (the chunk has no SQL connection)"
        )
    if connection.dialect.name != "postgresql" or connection.dialect.driver != "psycopg":
        raise ConfigurationError(
            f"PostgresCopyWriter({table!r}) needs PostgreSQL through psycopg 3 "
            f"(postgresql+psycopg://...), not {connection.dialect.name}+"
            f"{connection.dialect.driver}"
        )
    return connection.connection.driver_connection
