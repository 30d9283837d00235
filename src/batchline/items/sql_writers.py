"""Batched INSERT and upsert of items through the chunk's connection, on any SQLAlchemy dialect.

The rows go into the chunk's transaction, so they commit with the step's progress (when the job
repository shares the database) and a restart neither loses nor repeats one. Upserts use the
dialect's own statement (PostgreSQL and SQLite ``ON CONFLICT``, MySQL/MariaDB ``ON DUPLICATE
KEY UPDATE``); on any other dialect an UPDATE by key, then an INSERT of the rows it missed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

import sqlalchemy as sa

from batchline.errors import ConfigurationError
from batchline.items.base import Chunk
from batchline.items.rows import as_dict

Mode = Literal["insert", "upsert"]


class SqlWriter:
    """Writes items (mappings, dataclasses, objects) as rows of ``table``.

    ``mode="upsert"`` needs ``key``, the columns of a primary key or unique constraint; a row
    whose key exists has its other columns (or ``update_columns``) replaced. ``columns`` picks
    which of the item's values to write; ``to_row`` replaces the item-to-dict conversion.
    """

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

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.table.name}, mode={self.mode!r})"

    def write(self, items: Sequence[Any], chunk: Chunk) -> None:
        conn = chunk.connection
        if not isinstance(conn, sa.Connection):
            raise ConfigurationError(
                f"{self!r} needs a step with an SQL transaction manager (no connection)"
            )
        to_row = self._to_row or (lambda item: as_dict(item, self.columns))
        rows = [to_row(item) for item in items]
        for start in range(0, len(rows), self.batch_size):
            batch = rows[start : start + self.batch_size]
            if self.mode == "insert":
                conn.execute(self.table.insert(), batch)
            else:
                self._upsert(conn, _last_per_key(batch, self.key))

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


def _last_per_key(rows: list[dict[str, Any]], key: list[str]) -> list[dict[str, Any]]:
    """One row per key, the last one: an upsert statement may not touch a row twice."""
    by_key = {tuple(row[k] for k in key): row for row in rows}
    return list(by_key.values()) if len(by_key) < len(rows) else rows
