"""A writer that inserts mapping items into a table through the chunk's connection."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from batchline.errors import ConfigurationError
from batchline.items.base import Chunk


class SqlInsertWriter:
    """``executemany`` INSERT of dict items into ``table``, inside the chunk's transaction."""

    def __init__(self, table: sa.Table) -> None:
        self.table = table

    def write(self, items: Sequence[Mapping[str, Any]], chunk: Chunk) -> None:
        if chunk.connection is None:
            raise ConfigurationError(
                f"SqlInsertWriter({self.table.name}) needs a step with an SQL transaction manager"
            )
        if items:
            chunk.connection.execute(self.table.insert(), [dict(item) for item in items])
