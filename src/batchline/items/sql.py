"""``SqlInsertWriter``: the plain INSERT writer (kept by this name; see ``sql_writers``)."""

from __future__ import annotations

import sqlalchemy as sa

from batchline.items.sql_writers import SqlWriter


class SqlInsertWriter(SqlWriter):
    """``executemany`` INSERT of items into ``table``, inside the chunk's transaction."""

    def __init__(self, table: sa.Table, *, batch_size: int = 1000) -> None:
        super().__init__(table, mode="insert", batch_size=batch_size)
