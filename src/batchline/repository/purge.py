"""Purging old metadata: executions older than a date, with everything that hangs off them.

    result = purge(engine_or_repository, older_than=utcnow() - timedelta(days=90))

A finished job execution created before ``older_than`` is deleted with its step executions and
every row that references them (skipped items, and any table a later migration adds with a
foreign key to them). An instance left with no executions goes too, with its step contexts.

What a restart still needs is kept, so purging never makes a job redo finished work: an
instance's last execution, and an execution whose step execution a step context still points at,
stay while the instance keeps any newer execution. Running executions are never touched. The
work goes by batches of instances, one transaction each, so a large purge holds no long locks.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from batchline.repository import stop_markers, summary
from batchline.repository.database import retrying
from batchline.repository.schema import (
    job_execution,
    job_instance,
    metadata,
    step_context,
    step_execution,
)
from batchline.status import BatchStatus

_RUNNING = [s.value for s in BatchStatus if s.is_running]


@dataclass
class PurgeResult:
    """Rows deleted (or, in a dry run, that would be) per table, and old executions kept."""

    deleted: Counter[str] = field(default_factory=Counter)
    kept: int = 0
    dry_run: bool = False

    @property
    def job_executions(self) -> int:
        return self.deleted[job_execution.name]

    @property
    def job_instances(self) -> int:
        return self.deleted[job_instance.name]


def _as_engine(target: Any) -> Engine:
    if isinstance(target, Engine):
        return target
    from batchline.repository.sql import SqlJobRepository

    if isinstance(target, SqlJobRepository):
        return target.engine
    raise TypeError(f"purge needs an SQLAlchemy Engine or a SqlJobRepository, not {target!r}")


def _naive_utc(moment: dt.datetime) -> dt.datetime:
    # The repository stores naive UTC.
    return moment.astimezone(dt.UTC).replace(tzinfo=None) if moment.tzinfo else moment


def purge(
    target: Any, older_than: dt.datetime, *, dry_run: bool = False, batch_size: int = 500
) -> PurgeResult:
    """Delete executions created before ``older_than`` (naive means UTC); see the module doc."""
    bind = _as_engine(target)
    cutoff = _naive_utc(older_than)
    result = PurgeResult(dry_run=dry_run)
    after = -1
    while True:
        batch = _instances_with_old_executions(bind, cutoff, after, batch_size)
        if not batch:
            return result

        def one_batch(ids: list[int] = batch) -> tuple[Counter[str], int, list[int]]:
            with bind.begin() as conn:
                return _purge_instances(conn, ids, cutoff, dry_run)

        deleted, kept, gone = retrying(one_batch)
        if not dry_run:  # SQLite hands the ids out again: their stop markers go with them
            stop_markers.clear(stop_markers.marker_base(bind), gone)
        result.deleted.update(deleted)
        result.kept += kept
        after = batch[-1]


def _instances_with_old_executions(
    bind: Engine, cutoff: dt.datetime, after: int, limit: int
) -> list[int]:
    query = (
        sa.select(job_execution.c.job_instance_id)
        .where(job_execution.c.create_time < cutoff)
        .where(job_execution.c.status.not_in(_RUNNING))
        .where(job_execution.c.job_instance_id > after)
        .group_by(job_execution.c.job_instance_id)
        .order_by(job_execution.c.job_instance_id)
        .limit(limit)
    )
    with bind.connect() as conn:
        return [int(i) for i in conn.execute(query).scalars()]


def _purge_instances(
    conn: Connection, instance_ids: list[int], cutoff: dt.datetime, dry_run: bool
) -> tuple[Counter[str], int, list[int]]:
    """Delete (or count) an instance batch's old executions: what went, per table, how many
    old ones were kept, and the ids of the executions that went."""
    executions = conn.execute(
        sa.select(
            job_execution.c.id,
            job_execution.c.job_instance_id,
            job_execution.c.status,
            job_execution.c.create_time,
            job_execution.c.job_name,
            job_execution.c.start_time,
            job_execution.c.end_time,
        ).where(job_execution.c.job_instance_id.in_(instance_ids))
    ).all()
    last = dict(
        conn.execute(
            sa.select(job_instance.c.id, job_instance.c.last_execution_id).where(
                job_instance.c.id.in_(instance_ids)
            )
        ).all()
    )
    # Executions whose step execution a step context points at: a restart resumes from them.
    referenced = set(
        conn.execute(
            sa.select(step_execution.c.job_execution_id)
            .join(step_context, step_context.c.last_step_execution_id == step_execution.c.id)
            .where(step_context.c.job_instance_id.in_(instance_ids))
        ).scalars()
    )
    by_instance: dict[int, list[Any]] = {}
    for row in executions:
        by_instance.setdefault(row.job_instance_id, []).append(row)
    doomed_executions: list[int] = []
    doomed_instances: list[int] = []
    kept = 0
    for instance_id, rows in by_instance.items():
        old = [r.id for r in rows if r.create_time < cutoff and r.status not in _RUNNING]
        if len(old) == len(rows):
            doomed_instances.append(instance_id)  # its executions go with it
            continue
        keep = {last.get(instance_id)} | referenced
        doomed_executions.extend(i for i in old if i not in keep)
        kept += sum(1 for i in old if i in keep)
    counts: Counter[str] = Counter()
    if not dry_run:
        ids, instances = set(doomed_executions), set(doomed_instances)
        summary.removed(
            conn, [r for r in executions if r.id in ids or r.job_instance_id in instances]
        )
    if doomed_executions:
        _walk(conn, job_execution, job_execution.c.id.in_(doomed_executions), dry_run, counts)
    if doomed_instances:
        _walk(conn, job_instance, job_instance.c.id.in_(doomed_instances), dry_run, counts)
    gone = doomed_executions + [r.id for i in doomed_instances for r in by_instance[i]]
    return counts, kept, gone


def _children(table: sa.Table) -> list[tuple[sa.Table, sa.Column[Any], sa.Column[Any]]]:
    """(child table, its foreign-key column, the parent column it references)."""
    return [
        (child, fk.parent, fk.column)
        for child in metadata.sorted_tables
        for fk in child.foreign_keys
        if fk.column.table is table and child is not table
    ]


def _walk(
    conn: Connection, table: sa.Table, where: Any, dry_run: bool, counts: Counter[str]
) -> None:
    """Delete (or count) rows of ``table`` matching ``where``, their dependants first."""
    for child, fk_column, parent_column in _children(table):
        _walk(
            conn,
            child,
            fk_column.in_(sa.select(parent_column).where(where)),
            dry_run,
            counts,
        )
    if dry_run:
        counts[table.name] += int(
            conn.execute(sa.select(sa.func.count()).select_from(table).where(where)).scalar_one()
        )
    else:
        counts[table.name] += int(conn.execute(table.delete().where(where)).rowcount)
