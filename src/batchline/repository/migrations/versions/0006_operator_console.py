"""The operator's console: browser sessions, the audit of operator actions, schedule states,
execution logs, alerts sent.

Revision ID: 0006
Revises: 0004
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

from batchline.repository.migrations.ops import create_index, create_table

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Timestamp = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    create_table(
        "batch_web_session",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("session_hash", sa.String(64), nullable=False),
        sa.Column("token_name", sa.String(100), nullable=False),
        sa.Column("create_time", Timestamp, nullable=False),
        sa.Column("expire_time", Timestamp, nullable=False),
        sa.UniqueConstraint("session_hash", name="uq_web_session_hash"),
    )
    create_table(
        "batch_schedule_state",
        sa.Column("schedule_id", sa.String(200), primary_key=True),
        sa.Column("paused", sa.Boolean, nullable=False),
        sa.Column("update_time", Timestamp, nullable=False),
        sa.Column("updated_by", sa.String(100), nullable=False),
    )
    create_table(
        "batch_audit",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("action_time", Timestamp, nullable=False),
        sa.Column("token_name", sa.String(100), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("target", sa.String(200), nullable=False),
        sa.Column("job_execution_id", Id, nullable=True),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
    )
    create_table(
        "batch_execution_log",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column(
            "job_execution_id",
            Id,
            sa.ForeignKey("batch_job_execution.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("step_execution_id", Id, nullable=True),
        sa.Column("step_name", sa.String(100), nullable=True),
        sa.Column("log_time", Timestamp, nullable=False),
        sa.Column("level", sa.Integer, nullable=False),
        sa.Column("logger", sa.String(200), nullable=False),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
    )
    create_index("ix_execution_log_execution_id", "batch_execution_log", ["job_execution_id", "id"])
    create_index(
        "ix_execution_log_execution_level",
        "batch_execution_log",
        ["job_execution_id", "level", "id"],
    )
    create_table(
        "batch_execution_log_dropped",
        sa.Column(
            "job_execution_id",
            Id,
            sa.ForeignKey("batch_job_execution.id", ondelete="CASCADE"),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column("dropped", sa.BigInteger, nullable=False),
    )
    create_table(
        "batch_alert",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column(
            "job_execution_id",
            Id,
            sa.ForeignKey("batch_job_execution.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("claim_time", Timestamp, nullable=False),
        sa.Column("claimed_by", sa.String(200), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.UniqueConstraint("job_execution_id", "kind", name="uq_alert_execution_kind"),
    )


def downgrade() -> None:
    op.drop_table("batch_alert")
    op.drop_table("batch_execution_log_dropped")
    op.drop_table("batch_execution_log")
    op.drop_table("batch_audit")
    op.drop_table("batch_schedule_state")
    op.drop_table("batch_web_session")
