"""Migration steps that can run again: each creates its table or index only when missing.

On MySQL/MariaDB every CREATE commits at once, so a process killed in the middle of a
migration leaves some tables made and no version recorded; the next start runs the same
revision again and must finish the job instead of failing on what is already there.
(SQLite and PostgreSQL roll the whole migration back; for them these checks find nothing.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op


def create_table(name: str, *items: Any) -> None:
    if not sa.inspect(op.get_bind()).has_table(name):
        op.create_table(name, *items)


def create_index(name: str, table: str, columns: Sequence[str]) -> None:
    existing = {index["name"] for index in sa.inspect(op.get_bind()).get_indexes(table)}
    if name not in existing:
        op.create_index(name, table, list(columns))
