"""The job repository's tables, as SQLAlchemy Core metadata.

The Alembic migrations in ``migrations/versions`` create exactly this schema; a test compares the
two. Every lookup the engine makes has an index; the invariants are constraints:

- one instance per (job_name, job_key): ``uq_job_instance_name_key``;
- one running execution per instance: ``running_instance_id`` is the instance id while the
  execution runs and NULL after; its unique constraint lets only one be non-NULL;
- one execution per step name per job execution: ``uq_step_execution_job_step``;
- one StepContext per (instance, step): ``uq_step_context_instance_step``.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects import mysql

metadata = MetaData()

# BigInteger ids, but SQLite only autoincrements a column declared INTEGER PRIMARY KEY.
Id = BigInteger().with_variant(Integer(), "sqlite")
# MySQL DATETIME keeps whole seconds unless asked for microseconds.
Timestamp = DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")

job_instance = Table(
    "batch_job_instance",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("job_name", String(100), nullable=False),
    Column("job_key", String(64), nullable=False),
    Column("last_execution_id", Id, nullable=True),
    Column("create_time", Timestamp, nullable=False),
    UniqueConstraint("job_name", "job_key", name="uq_job_instance_name_key"),
    Index("ix_job_instance_name_id", "job_name", "id"),
    # A job's last execution: the greatest last_execution_id of its instances, one index read.
    Index("ix_job_instance_name_last", "job_name", "last_execution_id"),
)

job_execution = Table(
    "batch_job_execution",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column(
        "job_instance_id",
        Id,
        ForeignKey("batch_job_instance.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("version", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("exit_code", String(64), nullable=False),
    Column("exit_message", Text, nullable=False),
    Column("parameters", Text, nullable=False),
    Column("context", Text, nullable=False),
    Column("create_time", Timestamp, nullable=False),
    Column("start_time", Timestamp, nullable=True),
    Column("end_time", Timestamp, nullable=True),
    Column("last_updated", Timestamp, nullable=True),
    Column("heartbeat", Timestamp, nullable=True),
    Column("owner", String(200), nullable=True),
    Column("running_instance_id", Id, nullable=True),
    # The instance's job name, copied: a job's executions newest first is a walk down
    # (job_name, id) instead of a join that reads every execution of the job.
    Column("job_name", String(100), nullable=False),
    # A queued execution waits for a worker's claim until then (recover leaves it alone).
    Column("claim_deadline", Timestamp, nullable=True),
    UniqueConstraint("running_instance_id", name="uq_job_execution_running"),
    Index("ix_job_execution_instance", "job_instance_id"),
    Index("ix_job_execution_status", "status"),
    Index("ix_job_execution_create_time", "create_time"),
    Index("ix_job_execution_status_id", "status", "id"),
    Index("ix_job_execution_name_id", "job_name", "id"),
    Index("ix_job_execution_name_status_id", "job_name", "status", "id"),
)

# Executions by job and status, with the durations of those that have one (summary.py): moved
# in the transaction of every status change, so the overview reads a few rows, not the history.
job_summary = Table(
    "batch_job_summary",
    metadata,
    Column("job_name", String(100), primary_key=True),
    Column("status", String(16), primary_key=True),
    Column("executions", BigInteger, nullable=False),
    Column("timed", BigInteger, nullable=False),
    Column("seconds", Double, nullable=False),
)

# Each execution's parameter values as text (summary.py): the parameter filter's index.
execution_parameter = Table(
    "batch_execution_parameter",
    metadata,
    Column(
        "job_execution_id",
        Id,
        ForeignKey("batch_job_execution.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("name", String(100), primary_key=True),
    Column("value", String(200), nullable=False),
    Index("ix_execution_parameter_value", "name", "value", "job_execution_id"),
)

step_execution = Table(
    "batch_step_execution",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column(
        "job_execution_id",
        Id,
        ForeignKey("batch_job_execution.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("step_name", String(100), nullable=False),
    Column("version", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("exit_code", String(64), nullable=False),
    Column("exit_message", Text, nullable=False),
    Column("context", Text, nullable=False),
    Column("read_count", BigInteger, nullable=False),
    Column("write_count", BigInteger, nullable=False),
    Column("filter_count", BigInteger, nullable=False),
    Column("commit_count", BigInteger, nullable=False),
    Column("rollback_count", BigInteger, nullable=False),
    Column("read_skip_count", BigInteger, nullable=False),
    Column("process_skip_count", BigInteger, nullable=False),
    Column("write_skip_count", BigInteger, nullable=False),
    Column("start_time", Timestamp, nullable=True),
    Column("end_time", Timestamp, nullable=True),
    Column("last_updated", Timestamp, nullable=True),
    UniqueConstraint("job_execution_id", "step_name", name="uq_step_execution_job_step"),
)

step_context = Table(
    "batch_step_context",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column(
        "job_instance_id",
        Id,
        ForeignKey("batch_job_instance.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("step_name", String(100), nullable=False),
    Column("start_count", Integer, nullable=False),
    Column("last_step_execution_id", Id, nullable=True),
    Column("last_updated", Timestamp, nullable=True),
    UniqueConstraint("job_instance_id", "step_name", name="uq_step_context_instance_step"),
)

# Skipped items are written in the chunk's transaction, so a rolled-back chunk records none.
skipped_item = Table(
    "batch_skipped_item",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column(
        "step_execution_id",
        Id,
        ForeignKey("batch_step_execution.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("job_execution_id", Id, nullable=False),
    Column("phase", String(8), nullable=False),
    Column("position", String(200), nullable=True),
    Column("item", Text, nullable=True),
    Column("error_type", String(200), nullable=False),
    Column("error_message", Text, nullable=False),
    Column("create_time", Timestamp, nullable=False),
    Index("ix_skipped_item_step_execution", "step_execution_id"),
    Index("ix_skipped_item_job_execution", "job_execution_id"),
)

# Progress samples: a step execution's counters now and then while it runs (at most every
# ``sample_interval`` seconds, in a chunk's own transaction) and once when it ends; the dashboard
# draws throughput from them. Purging an execution deletes its samples (the foreign key).
step_sample = Table(
    "batch_step_sample",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column(
        "step_execution_id",
        Id,
        ForeignKey("batch_step_execution.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("job_execution_id", Id, nullable=False),
    Column("sample_time", Timestamp, nullable=False),
    Column("read_count", BigInteger, nullable=False),
    Column("write_count", BigInteger, nullable=False),
    Column("filter_count", BigInteger, nullable=False),
    Column("skip_count", BigInteger, nullable=False),
    Index("ix_step_sample_step_execution", "step_execution_id"),
    Index("ix_step_sample_job_execution", "job_execution_id", "id"),
)

# Web API tokens: only a SHA-256 of each token is kept, so the table gives no one a token.
api_token = Table(
    "batch_api_token",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False),
    Column("token_hash", String(64), nullable=False),
    Column("scope", String(16), nullable=False),
    Column("create_time", Timestamp, nullable=False),
    Column("revoke_time", Timestamp, nullable=True),
    UniqueConstraint("name", name="uq_api_token_name"),
    UniqueConstraint("token_hash", name="uq_api_token_hash"),
)

# Backfills (migration 0007): one job over a range of values, one instance per value. The row
# keeps what the command said (range text, step, other parameters as JSON) and who runs it; the
# grid itself is read from the instances, so the launch rules stay the only judge of what ran.
# ``owner`` and ``heartbeat``: the process running it, whose lease a resume waits out.
backfill = Table(
    "batch_backfill",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("job_name", String(100), nullable=False),
    Column("range_kind", String(16), nullable=False),
    Column("range_spec", Text, nullable=False),
    Column("step", String(32), nullable=True),
    Column("parameters", Text, nullable=False),
    Column("concurrency", Integer, nullable=False),
    Column("restart_failed", Integer, nullable=False),
    Column("queue_to", String(500), nullable=True),
    Column("queue", String(200), nullable=True),
    Column("status", String(16), nullable=False),
    Column("started_by", String(200), nullable=False),
    Column("owner", String(200), nullable=True),
    Column("create_time", Timestamp, nullable=False),
    Column("end_time", Timestamp, nullable=True),
    Column("heartbeat", Timestamp, nullable=True),
    Column("version", Integer, nullable=False),
    Index("ix_backfill_job_name_id", "job_name", "id"),
    Index("ix_backfill_status_id", "status", "id"),
)

# Browser sessions: the cookie holds a random session secret, the table its SHA-256 and the
# token it was opened with, so every replica knows it and logging out (or revoking the token)
# ends it everywhere; a copied cookie dies with its row.
web_session = Table(
    "batch_web_session",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("session_hash", String(64), nullable=False),
    Column("token_name", String(100), nullable=False),
    Column("create_time", Timestamp, nullable=False),
    Column("expire_time", Timestamp, nullable=False),
    UniqueConstraint("session_hash", name="uq_web_session_hash"),
)

# Schedules an operator paused, by schedule id: every replica's scheduler reads it before
# firing, so a pause holds everywhere at once.
schedule_state = Table(
    "batch_schedule_state",
    metadata,
    Column("schedule_id", String(200), primary_key=True),
    Column("paused", Boolean, nullable=False),
    Column("update_time", Timestamp, nullable=False),
    Column("updated_by", String(100), nullable=False),
)

# Operator actions (start, stop, restart, abandon, recover...): who (the token's name), when,
# on what, and how it ended (done, or refused with the reason).
audit_entry = Table(
    "batch_audit",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("action_time", Timestamp, nullable=False),
    Column("token_name", String(100), nullable=False),
    Column("action", String(32), nullable=False),
    Column("target", String(200), nullable=False),
    Column("job_execution_id", Id, nullable=True),
    Column("outcome", String(16), nullable=False),
    Column("detail", Text, nullable=False),
)

# Log lines of an execution, from every process that worked on it (bounded per execution:
# batchline.repository.logs); purged with the execution through the foreign key.
execution_log = Table(
    "batch_execution_log",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column(
        "job_execution_id",
        Id,
        ForeignKey("batch_job_execution.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("step_execution_id", Id, nullable=True),
    Column("step_name", String(100), nullable=True),
    Column("log_time", Timestamp, nullable=False),
    Column("level", Integer, nullable=False),
    Column("logger", String(200), nullable=False),
    Column("source", String(200), nullable=False),
    Column("message", Text, nullable=False),
    Index("ix_execution_log_execution_id", "job_execution_id", "id"),
    Index("ix_execution_log_execution_level", "job_execution_id", "level", "id"),
)

# Lines an execution's cap turned away (one row per execution, counted up by each writer).
execution_log_dropped = Table(
    "batch_execution_log_dropped",
    metadata,
    Column(
        "job_execution_id",
        Id,
        ForeignKey("batch_job_execution.id", ondelete="CASCADE"),
        primary_key=True,
        autoincrement=False,
    ),
    Column("dropped", BigInteger, nullable=False),
)

# Alerts: one row per (execution, kind), claimed (inserted) before the alert is sent, so of
# several servers watching one repository exactly one sends it; the outcome is kept.
alert_sent = Table(
    "batch_alert",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column(
        "job_execution_id",
        Id,
        ForeignKey("batch_job_execution.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("kind", String(16), nullable=False),
    Column("claim_time", Timestamp, nullable=False),
    Column("claimed_by", String(200), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("detail", Text, nullable=False),
    UniqueConstraint("job_execution_id", "kind", name="uq_alert_execution_kind"),
)
