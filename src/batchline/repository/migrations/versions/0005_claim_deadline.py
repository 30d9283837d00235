"""A queued execution's claim deadline: waiting for a worker is not a dead process.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

Timestamp = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    # Run again after a kill on MariaDB (whose ALTER commits at once): add what is missing.
    columns = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("batch_job_execution")}
    if "claim_deadline" not in columns:
        op.add_column("batch_job_execution", sa.Column("claim_deadline", Timestamp, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("batch_job_execution") as batch:
        batch.drop_column("claim_deadline")
