"""The job repository: instances, executions, step executions, step contexts.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

from batchline.repository.migrations.ops import create_index, create_table

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Timestamp = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    create_table(
        "batch_job_instance",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("job_name", sa.String(100), nullable=False),
        sa.Column("job_key", sa.String(64), nullable=False),
        sa.Column("last_execution_id", Id, nullable=True),
        sa.Column("create_time", Timestamp, nullable=False),
        sa.UniqueConstraint("job_name", "job_key", name="uq_job_instance_name_key"),
    )
    create_table(
        "batch_job_execution",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column(
            "job_instance_id",
            Id,
            sa.ForeignKey("batch_job_instance.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("exit_code", sa.String(64), nullable=False),
        sa.Column("exit_message", sa.Text, nullable=False),
        sa.Column("parameters", sa.Text, nullable=False),
        sa.Column("context", sa.Text, nullable=False),
        sa.Column("create_time", Timestamp, nullable=False),
        sa.Column("start_time", Timestamp, nullable=True),
        sa.Column("end_time", Timestamp, nullable=True),
        sa.Column("last_updated", Timestamp, nullable=True),
        sa.Column("heartbeat", Timestamp, nullable=True),
        sa.Column("owner", sa.String(200), nullable=True),
        sa.Column("running_instance_id", Id, nullable=True),
        sa.UniqueConstraint("running_instance_id", name="uq_job_execution_running"),
    )
    create_index("ix_job_execution_instance", "batch_job_execution", ["job_instance_id"])
    create_index("ix_job_execution_status", "batch_job_execution", ["status"])
    create_index("ix_job_execution_create_time", "batch_job_execution", ["create_time"])
    create_table(
        "batch_step_execution",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column(
            "job_execution_id",
            Id,
            sa.ForeignKey("batch_job_execution.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("step_name", sa.String(100), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("exit_code", sa.String(64), nullable=False),
        sa.Column("exit_message", sa.Text, nullable=False),
        sa.Column("context", sa.Text, nullable=False),
        *(
            sa.Column(name, sa.BigInteger, nullable=False)
            for name in (
                "read_count",
                "write_count",
                "filter_count",
                "commit_count",
                "rollback_count",
                "read_skip_count",
                "process_skip_count",
                "write_skip_count",
            )
        ),
        sa.Column("start_time", Timestamp, nullable=True),
        sa.Column("end_time", Timestamp, nullable=True),
        sa.Column("last_updated", Timestamp, nullable=True),
        sa.UniqueConstraint("job_execution_id", "step_name", name="uq_step_execution_job_step"),
    )
    create_table(
        "batch_step_context",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column(
            "job_instance_id",
            Id,
            sa.ForeignKey("batch_job_instance.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("step_name", sa.String(100), nullable=False),
        sa.Column("start_count", sa.Integer, nullable=False),
        sa.Column("last_step_execution_id", Id, nullable=True),
        sa.Column("last_updated", Timestamp, nullable=True),
        sa.UniqueConstraint("job_instance_id", "step_name", name="uq_step_context_instance_step"),
    )


def downgrade() -> None:
    op.drop_table("batch_step_context")
    op.drop_table("batch_step_execution")
    op.drop_table("batch_job_execution")
    op.drop_table("batch_job_instance")
