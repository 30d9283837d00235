"""The console's pages at a million executions: the job name on each execution with its
indexes, per-job summary rows, and an indexed side table of parameter values.

Revision ID: 0008
Revises: 0004
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from batchline.repository.migrations.ops import create_index, create_table

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _columns(table: str) -> set[str]:
    return {c["name"] for c in sa.inspect(op.get_bind()).get_columns(table)}


def upgrade() -> None:
    bind = op.get_bind()
    if "job_name" not in _columns("batch_job_execution"):
        # A default lets SQLite add a NOT NULL column without rebuilding the table (a rebuild
        # would cascade-delete the step executions); the others drop it once filled.
        op.add_column(
            "batch_job_execution",
            sa.Column("job_name", sa.String(100), nullable=False, server_default=""),
        )
    op.execute(
        "UPDATE batch_job_execution SET job_name = (SELECT i.job_name FROM batch_job_instance i"
        " WHERE i.id = batch_job_execution.job_instance_id) WHERE job_name = ''"
    )
    if bind.dialect.name != "sqlite":
        op.alter_column(
            "batch_job_execution",
            "job_name",
            existing_type=sa.String(100),
            existing_nullable=False,
            server_default=None,
        )
    create_index("ix_job_execution_name_id", "batch_job_execution", ["job_name", "id"])
    create_index(
        "ix_job_execution_name_status_id", "batch_job_execution", ["job_name", "status", "id"]
    )
    create_index(
        "ix_job_instance_name_last", "batch_job_instance", ["job_name", "last_execution_id"]
    )
    create_table(
        "batch_job_summary",
        sa.Column("job_name", sa.String(100), primary_key=True),
        sa.Column("status", sa.String(16), primary_key=True),
        sa.Column("executions", sa.BigInteger, nullable=False),
        sa.Column("timed", sa.BigInteger, nullable=False),
        sa.Column("seconds", sa.Double, nullable=False),
    )
    create_table(
        "batch_execution_parameter",
        sa.Column(
            "job_execution_id",
            Id,
            sa.ForeignKey("batch_job_execution.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("value", sa.String(200), nullable=False),
    )
    create_index(
        "ix_execution_parameter_value",
        "batch_execution_parameter",
        ["name", "value", "job_execution_id"],
    )
    from batchline.repository import summary

    summary.rebuild(bind)


def downgrade() -> None:
    op.drop_table("batch_execution_parameter")
    op.drop_table("batch_job_summary")
    op.drop_index("ix_job_instance_name_last", "batch_job_instance")
    op.drop_index("ix_job_execution_name_status_id", "batch_job_execution")
    op.drop_index("ix_job_execution_name_id", "batch_job_execution")
    with op.batch_alter_table("batch_job_execution") as batch:
        batch.drop_column("job_name")
