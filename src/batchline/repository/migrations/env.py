"""Alembic environment: always run with a connection handed in by batchline.repository.migrate."""

from __future__ import annotations

from alembic import context

from batchline.repository.database import VERSION_TABLE
from batchline.repository.schema import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=VERSION_TABLE,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
