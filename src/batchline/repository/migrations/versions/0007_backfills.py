"""Backfills: a job over a range of parameter values, recorded so a resume runs what is missing.

Revision ID: 0007
Revises: 0004
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

from batchline.repository.migrations.ops import create_index, create_table

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Timestamp = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    create_table(
        "batch_backfill",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("job_name", sa.String(100), nullable=False),
        sa.Column("range_kind", sa.String(16), nullable=False),
        sa.Column("range_spec", sa.Text, nullable=False),
        sa.Column("step", sa.String(32), nullable=True),
        sa.Column("parameters", sa.Text, nullable=False),
        sa.Column("concurrency", sa.Integer, nullable=False),
        sa.Column("restart_failed", sa.Integer, nullable=False),
        sa.Column("queue_to", sa.String(500), nullable=True),
        sa.Column("queue", sa.String(200), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_by", sa.String(200), nullable=False),
        sa.Column("owner", sa.String(200), nullable=True),
        sa.Column("create_time", Timestamp, nullable=False),
        sa.Column("end_time", Timestamp, nullable=True),
        sa.Column("heartbeat", Timestamp, nullable=True),
        sa.Column("version", sa.Integer, nullable=False),
    )
    create_index("ix_backfill_job_name_id", "batch_backfill", ["job_name", "id"])
    create_index("ix_backfill_status_id", "batch_backfill", ["status", "id"])


def downgrade() -> None:
    op.drop_table("batch_backfill")
