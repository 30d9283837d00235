"""Progress samples: a step execution's counters over time, for the dashboard's throughput.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

from batchline.repository.migrations.ops import create_index, create_table

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Timestamp = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    create_table(
        "batch_step_sample",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column(
            "step_execution_id",
            Id,
            sa.ForeignKey("batch_step_execution.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("job_execution_id", Id, nullable=False),
        sa.Column("sample_time", Timestamp, nullable=False),
        sa.Column("read_count", sa.BigInteger, nullable=False),
        sa.Column("write_count", sa.BigInteger, nullable=False),
        sa.Column("filter_count", sa.BigInteger, nullable=False),
        sa.Column("skip_count", sa.BigInteger, nullable=False),
    )
    create_index("ix_step_sample_step_execution", "batch_step_sample", ["step_execution_id"])
    create_index("ix_step_sample_job_execution", "batch_step_sample", ["job_execution_id", "id"])


def downgrade() -> None:
    op.drop_table("batch_step_sample")
