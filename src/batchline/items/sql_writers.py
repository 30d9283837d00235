"""Batched INSERT and upsert of items through the chunk's connection, on any SQLAlchemy dialect.

The rows go into the chunk's transaction, so they commit with the step's progress (when the job
repository shares the database) and a restart neither loses nor repeats one. Upserts use the
dialect's own statement (PostgreSQL and SQLite ``ON CONFLICT``, MySQL/MariaDB ``ON DUPLICATE
KEY UPDATE``); on any other dialect an UPDATE by key, then an INSERT of the rows it missed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import sqlalchemy as sa

from batchline.errors import ConfigurationError
from batchline.items.base import Chunk
from batchline.items.driver_errors import as_sqlalchemy, checks_as_integrity
from batchline.items.rows import as_dict, tuple_getter

Mode = Literal["insert", "upsert"]


class SqlWriter:
    """Writes items (mappings, dataclasses, objects) as rows of ``table``.

    ``mode="upsert"`` needs ``key``, the columns of a primary key or unique constraint; a row
    whose key exists has its other columns (or ``update_columns``) replaced. ``columns`` picks
    which of the item's values to write; ``to_row`` replaces the item-to-dict conversion.
    """

    # Waits on the database with the GIL released: a chunk step reads ahead meanwhile.
    overlaps_reads = True

    def __init__(
        self,
        table: sa.Table,
        *,
        mode: Mode = "insert",
        key: Sequence[str] | None = None,
        update_columns: Sequence[str] | None = None,
        columns: Sequence[str] | None = None,
        batch_size: int = 1000,
        to_row: Callable[[Any], dict[str, Any]] | None = None,
    ) -> None:
        if mode not in ("insert", "upsert"):
            raise ConfigurationError(f"SqlWriter({table.name}): mode must be insert or upsert")
        if mode == "upsert" and not key:
            raise ConfigurationError(f"SqlWriter({table.name}): an upsert needs key=[columns]")
        unknown = [c for c in [*(key or ()), *(columns or ())] if c not in table.c]
        if unknown:
            raise ConfigurationError(f"SqlWriter({table.name}): no column(s) {unknown}")
        self.table = table
        self.mode = mode
        self.key = list(key or ())
        self.update_columns = list(update_columns) if update_columns is not None else None
        self.columns = list(columns) if columns else None
        self.batch_size = batch_size
        self._to_row = to_row
        self._plans: dict[tuple[Any, ...], _Plan | None] = {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.table.name}, mode={self.mode!r})"

    def write(self, items: Sequence[Any], chunk: Chunk) -> None:
        conn = chunk.connection
        if not isinstance(conn, sa.Connection):
            raise ConfigurationError(
                f"{self!r} needs a step with an SQL transaction manager (no connection)"
            )
        if not items:
            return
        with checks_as_integrity():
            self._write(conn, items)

    def _write(self, conn: sa.Connection, items: Sequence[Any]) -> None:
        if self.mode == "insert" and self._to_row is None:
            plan = self._direct_plan(conn, items[0])
            if plan is not None:
                if plan.prefix and self._rendered(conn, plan, items):
                    return
                for start in range(0, len(items), self.batch_size):
                    batch = items[start : start + self.batch_size]
                    conn.exec_driver_sql(plan.statement, list(map(plan.row, batch)))
                return
        to_row = self._to_row or (lambda item: as_dict(item, self.columns))
        rows = [to_row(item) for item in items]
        for start in range(0, len(rows), self.batch_size):
            batch = rows[start : start + self.batch_size]
            if self.mode == "insert":
                conn.execute(self.table.insert(), batch)
            else:
                self._upsert(conn, _last_per_key(batch, self.key))

    def _rendered(self, conn: sa.Connection, plan: _Plan, items: Sequence[Any]) -> bool:
        """PyMySQL: the multi-row INSERTs rendered here (items/mysql_values.py) and sent as
        they are, at less than half the cost of its ``executemany``; False when the server's
        escaping differs (NO_BACKSLASH_ESCAPES), which leaves it to ``executemany``."""
        from batchline.items import mysql_values

        driver = conn.connection.driver_connection
        if driver is None or driver.server_status & mysql_values.NO_BACKSLASH_ESCAPES:
            return False
        rows = list(map(plan.get, items))
        if plan.render is None:
            plan.render = mysql_values.row_renderer(rows[0], driver.escape)
        with as_sqlalchemy(conn, plan.prefix), driver.cursor() as cursor:
            for text in mysql_values.statements(plan.prefix, rows, plan.render, self.batch_size):
                cursor.execute(text)  # no arguments: PyMySQL sends the text as it is
        return True

    def _direct_plan(self, conn: sa.Connection, sample: Any) -> _Plan | None:
        """The INSERT and a row function for the driver's own ``executemany``, when nothing
        SQLAlchemy would do per row is needed; None otherwise (the statement path).

        MySQL/MariaDB drivers turn ``executemany`` of an INSERT into multi-row INSERTs, and
        sqlite3 runs it in C; SQLAlchemy's per-row work (a dict per item, parameter
        processing, rendering its own multi-row VALUES) costs as much again. So when no column
        written has a bind processor on this dialect and no column left out has a Python-side
        default, the statement is compiled once (bind names ``p0``, ``p1``... so no column
        name is ever part of a parameter name) and the items' values go straight to the
        driver. PostgreSQL keeps the statement path (``PostgresCopyWriter`` is its fast path).
        """
        dialect = conn.dialect
        if dialect.name not in ("mysql", "mariadb", "sqlite"):
            return None
        names = self.columns or _item_names(sample)
        if names is None:
            return None
        key = (dialect.name, dialect.driver, type(sample), tuple(names))
        if key in self._plans:
            return self._plans[key]
        plan = self._make_plan(dialect, sample, names)
        self._plans[key] = plan
        return plan

    def _make_plan(self, dialect: sa.Dialect, sample: Any, names: Sequence[str]) -> _Plan | None:
        table = self.table
        if isinstance(sample, list | tuple) and len(sample) != len(names):
            return None  # the statement path says what is wrong
        if any(name not in table.c for name in names):
            return None  # the statement path names the culprit
        written = [table.c[name] for name in names]
        if any(c.type._cached_bind_processor(dialect) is not None for c in written):
            return None
        left_out = [c for c in table.c if c.name not in set(names)]
        if any(c.default is not None for c in left_out):
            return None
        binds = [f"p{i}" for i in range(len(names))]
        stmt = sa.insert(table).values(
            {column: sa.bindparam(bind) for column, bind in zip(written, binds, strict=True)}
        )
        compiled = stmt.compile(dialect=dialect)
        get = tuple_getter(sample, names)
        prefix = ""
        if dialect.name in ("mysql", "mariadb") and dialect.driver == "pymysql":
            quote = dialect.identifier_preparer
            columns = ", ".join(quote.quote(name) for name in names)
            prefix = f"INSERT INTO {quote.format_table(table)} ({columns}) VALUES "
        if dialect.positional:
            if list(compiled.positiontup or ()) != binds:
                return None
            return _Plan(str(compiled), get, get, prefix)
        if set(compiled.params) != set(binds):
            return None
        keys = tuple(binds)
        return _Plan(
            str(compiled), lambda item: dict(zip(keys, get(item), strict=True)), get, prefix
        )

    def _upsert(self, conn: sa.Connection, rows: list[dict[str, Any]]) -> None:
        dialect = conn.dialect.name
        names = self.update_columns
        if names is None:
            names = [c for c in rows[0] if c not in self.key]
        if dialect in ("postgresql", "sqlite"):
            from sqlalchemy.dialects import postgresql, sqlite

            module: Any = postgresql if dialect == "postgresql" else sqlite
            stmt = module.insert(self.table)
            if names:
                done = stmt.on_conflict_do_update(
                    index_elements=self.key, set_={c: stmt.excluded[c] for c in names}
                )
            else:
                done = stmt.on_conflict_do_nothing(index_elements=self.key)
            conn.execute(done, rows)
        elif dialect in ("mysql", "mariadb"):
            from sqlalchemy.dialects.mysql import insert as mysql_insert

            mstmt = mysql_insert(self.table)
            targets = names or self.key[:1]  # no-op update keeps the row
            conn.execute(
                mstmt.on_duplicate_key_update({c: mstmt.inserted[c] for c in targets}), rows
            )
        else:
            self._update_then_insert(conn, rows, names)

    def _update_then_insert(
        self, conn: sa.Connection, rows: list[dict[str, Any]], names: list[str]
    ) -> None:
        where = sa.and_(*(self.table.c[k] == sa.bindparam(f"k_{k}") for k in self.key))
        missing = []
        for row in rows:
            params = {f"k_{k}": row[k] for k in self.key}
            if names:
                values = {c: row[c] for c in names}
                found = conn.execute(self.table.update().where(where).values(values), params)
                if found.rowcount:
                    continue
            elif conn.execute(sa.select(sa.literal(1)).where(where), params).first():
                continue
            missing.append(row)
        if missing:
            conn.execute(self.table.insert(), missing)


@dataclasses.dataclass
class _Plan:
    """How items go straight to the driver: ``statement`` with ``row(item)`` as parameters
    for ``executemany``; on PyMySQL also ``prefix`` (the INSERT up to VALUES), ``get`` (an
    item's values in column order) and the row renderer, made from the first chunk."""

    statement: str
    row: Callable[[Any], Any]
    get: Callable[[Any], Any]
    prefix: str
    render: Callable[[Sequence[Any]], str] | None = None


def _item_names(item: Any) -> list[str] | None:
    """The column names an item carries by itself (a mapping's keys, a dataclass's fields)."""
    if isinstance(item, Mapping):
        return [str(k) for k in item]
    if dataclasses.is_dataclass(item) and not isinstance(item, type):
        return [f.name for f in dataclasses.fields(item)]
    return None


def _last_per_key(rows: list[dict[str, Any]], key: list[str]) -> list[dict[str, Any]]:
    """One row per key, the last one: an upsert statement may not touch a row twice."""
    by_key = {tuple(row[k] for k in key): row for row in rows}
    return list(by_key.values()) if len(by_key) < len(rows) else rows
