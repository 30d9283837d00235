"""Skipped items: what a fault-tolerant step skipped, where, and why.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

from batchline.repository.migrations.ops import create_index, create_table

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Timestamp = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    create_table(
        "batch_skipped_item",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column(
            "step_execution_id",
            Id,
            sa.ForeignKey("batch_step_execution.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("job_execution_id", Id, nullable=False),
        sa.Column("phase", sa.String(8), nullable=False),
        sa.Column("position", sa.String(200), nullable=True),
        sa.Column("item", sa.Text, nullable=True),
        sa.Column("error_type", sa.String(200), nullable=False),
        sa.Column("error_message", sa.Text, nullable=False),
        sa.Column("create_time", Timestamp, nullable=False),
    )
    create_index("ix_skipped_item_step_execution", "batch_skipped_item", ["step_execution_id"])
    create_index("ix_skipped_item_job_execution", "batch_skipped_item", ["job_execution_id"])


def downgrade() -> None:
    op.drop_table("batch_skipped_item")
