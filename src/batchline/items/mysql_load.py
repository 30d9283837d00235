"""MySQL/MariaDB ``LOAD DATA LOCAL INFILE`` writer: the fastest way the servers document into a
table, in the chunk's transaction.

Each chunk is rendered as tab-separated text (``\\N`` for NULL; backslash, tab, newline, CR and
NUL escaped with a backslash), a slice at a time into a named pipe that PyMySQL reads for the
server (load_feed.py: the server parses while the rest is rendered), and loaded through the
chunk's own connection, so the rows commit or roll back with the chunk (and with the step's
progress when the job repository shares the database): a restart neither loses nor repeats a
row.

Needs PyMySQL and ``local_infile`` allowed on both sides: the server's ``local_infile``
variable ON (``SHOW VARIABLES LIKE 'local_infile'``; ``local_infile=1`` under ``[mysqld]``, or
``SET GLOBAL local_infile = 1``) and the client's option (``?local_infile=1`` in the URL of the
step's transaction manager, i.e. the engine's repository URL when they share the database).

With LOCAL the server turns data errors into warnings (it cannot stop the file half-way), so
the writer asks for the warnings of each load and fails the chunk on any, naming the first,
and checks that every row was inserted: a bad value never passes silently.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Sequence
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from batchline.errors import BatchlineError, ConfigurationError
from batchline.items.arrow.text import (
    EncodeError,
    as_table,
    as_text,
    check_types,
    csv_bytes,
    is_arrow,
    is_bytes,
    selected,
)
from batchline.items.base import Chunk
from batchline.items.driver_errors import as_sqlalchemy
from batchline.items.load_feed import LoadFeed
from batchline.items.rows import tuple_getter

_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\x00": "\\0"})


_DUPLICATE_KEY = 1062  # ER_DUP_ENTRY
# A duplicate key, MariaDB's failed CHECK (ER_CONSTRAINT_FAILED), MySQL's.
_CONSTRAINT_FAILED = frozenset({_DUPLICATE_KEY, 4025, 3819})
# Rows rendered at a time into the pipe the server reads (load_feed.py): the server parses
# one piece while the next is rendered.
_ROWS_A_PIECE = 4_096


class LoadDataError(BatchlineError):
    """The server reported warnings for a load, or inserted fewer rows than the chunk holds."""


class MySqlLoadDataWriter:
    """``LOAD DATA LOCAL INFILE`` of the chunk's items into ``table``.

    Items are tuples/lists in column order, or mappings, dataclasses or objects whose values
    are taken by column name. Values: None, str, int, float, bool, Decimal, date, datetime,
    time. ``columns`` defaults to the table's columns when ``table`` is an ``sa.Table``.
    ``folder`` is where the pipe the server reads is made, in a private folder of its own (the
    system's temporary folder by default).
    """

    # Waits on the database with the GIL released: a chunk step reads ahead meanwhile.
    overlaps_reads = True

    def __init__(
        self,
        table: str | sa.Table,
        columns: Sequence[str] | None = None,
        *,
        folder: str | None = None,
    ) -> None:
        if isinstance(table, sa.Table):
            self.table = table.name
            self.schema = table.schema
            self.columns = list(columns) if columns else [c.name for c in table.columns]
        else:
            self.table = table
            self.schema = None
            self.columns = list(columns) if columns else []
        if not self.columns:
            raise ConfigurationError(f"MySqlLoadDataWriter({self.table!r}) needs column names")
        self.folder = folder
        self._render: Callable[[Sequence[Any]], str] | None = None

    def __repr__(self) -> str:
        return f"MySqlLoadDataWriter({self.table!r})"

    def write(self, items: Sequence[Any], chunk: Chunk) -> None:
        if not items:
            return
        driver = _pymysql_connection(chunk.connection, self.table)
        if is_arrow(items[0]):
            self._load_arrow(driver, chunk, items)
            return
        get = tuple_getter(items[0], self.columns)
        rows = items if isinstance(items[0], list | tuple) else list(map(get, items))
        if self._render is None:
            self._render = _row_renderer(len(self.columns))
        render = self._render
        pieces = (
            "".join(map(render, rows[i : i + _ROWS_A_PIECE])).encode("utf-8")
            for i in range(0, len(rows), _ROWS_A_PIECE)
        )
        quote = chunk.connection.dialect.identifier_preparer.quote
        target = ".".join(quote(part) for part in (self.schema, self.table) if part)
        statement = (
            f"LOAD DATA LOCAL INFILE %s INTO TABLE {target} CHARACTER SET utf8mb4 "
            "FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' "
            f"({', '.join(map(quote, self.columns))})"
        )
        self._load(driver, chunk, statement, pieces, len(rows))

    def _load_arrow(self, driver: Any, chunk: Chunk, batches: Sequence[Any]) -> None:
        """Record batches (a columnar step): CSV by Arrow's C++ writer, strings quoted, NULL
        unquoted for null, booleans as 0 and 1, bytes as hex the statement unhexes (the
        server would read raw bytes as utf8mb4 text)."""
        label = repr(self)
        batches = [selected(b, self.columns, label) for b in batches if b.num_rows]
        if not batches:
            return
        for batch in batches:
            check_types(batch.schema, label)
        hexed = {f.name for b in batches for f in b.schema if is_bytes(f.type)}
        quote = chunk.connection.dialect.identifier_preparer.quote
        target = ".".join(quote(part) for part in (self.schema, self.table) if part)
        fields = [f"@h{i}" if c in hexed else quote(c) for i, c in enumerate(self.columns)]
        unhex = [f"{quote(c)} = UNHEX(@h{i})" for i, c in enumerate(self.columns) if c in hexed]
        statement = (
            f"LOAD DATA LOCAL INFILE %s INTO TABLE {target} CHARACTER SET utf8mb4 "
            "FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"' ESCAPED BY '' "
            f"LINES TERMINATED BY '\\n' ({', '.join(fields)})"
            + (f" SET {', '.join(unhex)}" if unhex else "")
        )
        pieces = self._arrow_pieces(batches, hexed)
        self._load(driver, chunk, statement, pieces, sum(b.num_rows for b in batches))

    def _arrow_pieces(self, batches: Sequence[Any], hexed: set[str]) -> Iterator[bytes]:
        """The batches' CSV a slice at a time (rendered by the feed's thread), each batch on
        its own: a processor's outputs may differ in schema."""
        done = 0
        for batch in batches:
            for start in range(0, batch.num_rows, _ROWS_A_PIECE):
                piece = as_table(batch.slice(start, _ROWS_A_PIECE))
                try:
                    yield csv_bytes(as_text(piece, mysql=True, hexed=hexed), null="NULL")
                except EncodeError as exc:
                    raise LoadDataError(
                        f"{self!r}: column {exc.column!r} ({exc.kind}), row "
                        f"{done + start + exc.row + 1} of the chunk: {exc.reason}"
                    ) from None
            done += batch.num_rows

    def _load(
        self, driver: Any, chunk: Chunk, statement: str, pieces: Iterable[bytes], rows: int
    ) -> None:
        feed = LoadFeed(pieces, self.folder)
        try:
            with as_sqlalchemy(chunk.connection, statement), driver.cursor() as cursor:
                loaded = _execute(driver, cursor, statement, feed.path)
                cursor.execute("SHOW WARNINGS LIMIT 3")
                warnings = cursor.fetchall()
        finally:
            feed.close()
        if feed.error is not None:  # the rows after it were not sent: the chunk fails
            raise feed.error
        duplicate = next((w for w in warnings if w[1] in _CONSTRAINT_FAILED), None)
        if duplicate is not None:
            # LOCAL turns a duplicate key or a failed CHECK into a warning; the INSERT paths
            # raise it as an IntegrityError, and so does this writer, so one .skip() fits
            # every writer.
            dbapi = chunk.connection.dialect.loaded_dbapi
            raise sa.exc.IntegrityError(
                statement, None, dbapi.IntegrityError(duplicate[1], duplicate[2])
            )
        if warnings:
            first = "; ".join(f"{w[0]} {w[1]}: {w[2]}" for w in warnings)
            raise LoadDataError(f"{self!r}: the server warned while loading the chunk: {first}")
        if loaded != rows:
            raise LoadDataError(f"{self!r}: {loaded} rows loaded of the chunk's {rows}")


def _execute(driver: Any, cursor: Any, statement: str, path: str) -> int:
    """The LOAD DATA, its lost connection raised as the driver's error.

    PyMySQL sends the end of the file in a ``finally``: when sending the file lost the server,
    it has closed the connection already, and that last send fails with an AttributeError (no
    socket) that hides "MySQL server has gone away". The step must see the latter: a lost
    connection, which rolled the chunk back."""
    try:
        loaded: int = cursor.execute(statement, (path,))
        return loaded
    except AttributeError as exc:
        lost = exc.__context__
        if getattr(driver, "_sock", True) is not None or not isinstance(lost, driver.Error):
            raise
    raise lost  # outside the handler: its chain stays the driver's own, without the slip


def _field(value: Any) -> str:
    """One value as LOAD DATA text (the renderer's path for anything but its fast classes)."""
    if value is None:
        return "\\N"
    cls = value.__class__
    if cls is str or isinstance(value, str):
        return str(value).translate(_ESCAPES)
    if value is True or value is False:
        return "1" if value else "0"
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    raise LoadDataError(f"cannot load a {cls.__name__} value with LOAD DATA: {value!r}")


def _row_renderer(width: int) -> Callable[[Sequence[Any]], str]:
    """A function from a row to its line: str, int and Decimal inline, the rest by ``_field``."""
    parts = []
    for i in range(width):
        a = f"a{i}"
        parts.append(
            f"{{{a}.translate(E) if {a}.__class__ is str else "
            f"{a} if {a}.__class__ is int else "
            f"format({a}, 'f') if {a}.__class__ is Decimal else F({a})}}"
        )
    names = "".join(f"a{i}, " for i in range(width))
    line = "\\t".join(parts) + "\\n"  # the escapes, as source text of the f-string
    source = f'def render(row):\n    {names}= row\n    return f"{line}"\n'
    scope: dict[str, Any] = {"E": _ESCAPES, "F": _field, "Decimal": Decimal}
    exec(compile(source, "<batchline load data row>", "exec"), scope)
    render: Callable[[Sequence[Any]], str] = scope["render"]
    return render


def _pymysql_connection(connection: Any, table: str) -> Any:
    if not isinstance(connection, sa.Connection):
        raise ConfigurationError(
            f"MySqlLoadDataWriter({table!r}) needs a step whose transaction manager is on "
            "MySQL or MariaDB (the chunk has no SQL connection)"
        )
    dialect = connection.dialect
    if dialect.name not in ("mysql", "mariadb") or dialect.driver != "pymysql":
        raise ConfigurationError(
            f"MySqlLoadDataWriter({table!r}) needs MySQL or MariaDB through PyMySQL "
            f"(mysql+pymysql://...), not {dialect.name}+{dialect.driver}"
        )
    driver = connection.connection.driver_connection
    if not getattr(driver, "_local_infile", False):
        raise ConfigurationError(
            f"MySqlLoadDataWriter({table!r}): the connection does not allow LOAD DATA LOCAL; "
            "add ?local_infile=1 to the database URL (and the server needs local_infile=ON)"
        )
    return driver
