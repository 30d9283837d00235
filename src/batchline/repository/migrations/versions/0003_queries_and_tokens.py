"""Indexes for the query API's pages, and the web API's tokens (stored hashed).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

from batchline.repository.migrations.ops import create_index, create_table

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Timestamp = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    # A page of executions by status, newest first, is a walk down (status, id).
    create_index("ix_job_execution_status_id", "batch_job_execution", ["status", "id"])
    # A job's instances, newest first.
    create_index("ix_job_instance_name_id", "batch_job_instance", ["job_name", "id"])
    create_table(
        "batch_api_token",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("create_time", Timestamp, nullable=False),
        sa.Column("revoke_time", Timestamp, nullable=True),
        sa.UniqueConstraint("name", name="uq_api_token_name"),
        sa.UniqueConstraint("token_hash", name="uq_api_token_hash"),
    )


def downgrade() -> None:
    op.drop_table("batch_api_token")
    op.drop_index("ix_job_instance_name_id", "batch_job_instance")
    op.drop_index("ix_job_execution_status_id", "batch_job_execution")
