"""Per-job summary rows and the parameter side table, kept in the status change's transaction.

The overview and the job page show, for every job, its executions by status and the average
duration of its completed ones. Counting them from ``batch_job_execution`` costs a scan of the
whole history on each request (1.8 s at 100,000 executions); instead each (job, status) has one
row in ``batch_job_summary`` that every status change moves in the same transaction as the
change, so the numbers are exactly as true as the executions and cost one index read.

Rows are touched in the order of their status name, so two transactions moving executions of
one job never wait on each other in a cycle.

``batch_execution_parameter`` holds each execution's parameter values as text (the first
``VALUE_CHARS`` characters, as ``filters.parameter_text`` writes them): the parameter filter
walks its (name, value, execution id) index instead of reading every execution's JSON.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.sql import ColumnElement

from batchline.parameters import JobParameters
from batchline.repository.filters import parameter_text
from batchline.repository.schema import execution_parameter, job_execution, job_summary
from batchline.status import BatchStatus

VALUE_CHARS = 200
NAME_CHARS = 100


def seconds(start: dt.datetime | None, end: dt.datetime | None) -> float | None:
    return None if start is None or end is None else (end - start).total_seconds()


def _upsert(conn: Connection, job_name: str, status: str, values: Mapping[str, Any]) -> None:
    """Add ``values`` (executions, timed, seconds) to the row, creating it when missing."""
    c = job_summary.c
    dialect = conn.dialect.name
    row = {"job_name": job_name, "status": status, **values}
    moved = {k: getattr(c, k) + v for k, v in values.items()}
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        pg = pg_insert(job_summary).values(row)
        conn.execute(pg.on_conflict_do_update(index_elements=[c.job_name, c.status], set_=moved))
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as lite_insert

        lite = lite_insert(job_summary).values(row)
        conn.execute(lite.on_conflict_do_update(index_elements=[c.job_name, c.status], set_=moved))
    else:
        from sqlalchemy.dialects.mysql import insert as my_insert

        my = my_insert(job_summary).values(row)
        conn.execute(my.on_duplicate_key_update(**moved))


def moved(
    conn: Connection,
    job_name: str,
    old: BatchStatus | None,
    new: BatchStatus | None,
    before: float | None = None,
    after: float | None = None,
) -> None:
    """One execution of ``job_name`` went from ``old`` to ``new`` (None: it did not exist, or
    no longer does); ``before``/``after`` are its durations then and now, when it had one."""
    if old is new and before == after:
        return
    changes: dict[str, dict[str, Any]] = {}
    if old is not None:
        changes[old.value] = {
            "executions": -1,
            "timed": -1 if before is not None else 0,
            "seconds": -(before or 0.0),
        }
    if new is not None:
        change = changes.setdefault(new.value, {"executions": 0, "timed": 0, "seconds": 0.0})
        change["executions"] += 1
        change["timed"] += 1 if after is not None else 0
        change["seconds"] += after or 0.0
    for status in sorted(changes):
        _upsert(conn, job_name, status, changes[status])


def removed(conn: Connection, rows: Iterable[Any]) -> None:
    """Executions about to be deleted (rows with job_name, status, start_time, end_time)."""
    totals: dict[tuple[str, str], dict[str, Any]] = {}
    for r in rows:
        took = seconds(r.start_time, r.end_time)
        total = totals.setdefault(
            (r.job_name, r.status), {"executions": 0, "timed": 0, "seconds": 0.0}
        )
        total["executions"] -= 1
        total["timed"] -= 1 if took is not None else 0
        total["seconds"] -= took or 0.0
    for job_name, status in sorted(totals):
        _upsert(conn, job_name, status, totals[job_name, status])


def parameter_rows(execution_id: int, parameters: JobParameters) -> list[dict[str, Any]]:
    return [
        {
            "job_execution_id": execution_id,
            "name": name[:NAME_CHARS],
            "value": parameter_text(parameters[name])[:VALUE_CHARS],
        }
        for name in parameters
    ]


def _duration(dialect: str) -> ColumnElement[Any]:
    start, end = job_execution.c.start_time, job_execution.c.end_time
    if dialect == "postgresql":
        return sa.extract("epoch", end - start)
    if dialect == "sqlite":
        return (sa.func.julianday(end) - sa.func.julianday(start)) * 86400.0
    return sa.func.timestampdiff(sa.text("MICROSECOND"), start, end) / 1e6


def rebuild(conn: Connection, *, parameters: bool = True, batch: int = 5000) -> None:
    """Compute the summary rows (and, with ``parameters``, the side table) from the executions:
    what the migration does once, and what a bulk load that bypassed the repository needs."""
    took = _duration(conn.dialect.name)
    timed = sa.and_(job_execution.c.start_time.is_not(None), job_execution.c.end_time.is_not(None))
    conn.execute(job_summary.delete())
    grouped = sa.select(
        job_execution.c.job_name,
        job_execution.c.status,
        sa.func.count(),
        sa.func.count(sa.case((timed, 1))),
        sa.func.coalesce(sa.func.sum(sa.case((timed, took))), 0.0),
    ).group_by(job_execution.c.job_name, job_execution.c.status)
    conn.execute(
        job_summary.insert().from_select(
            ["job_name", "status", "executions", "timed", "seconds"], grouped
        )
    )
    if not parameters:
        return
    conn.execute(execution_parameter.delete())
    after = 0
    while True:
        rows = conn.execute(
            sa.select(job_execution.c.id, job_execution.c.parameters)
            .where(job_execution.c.id > after)
            .order_by(job_execution.c.id)
            .limit(batch)
        ).all()
        if not rows:
            return
        values = []
        for r in rows:
            params = JobParameters.from_json(json.loads(r.parameters or "{}"))
            values.extend(parameter_rows(int(r.id), params))
        if values:
            conn.execute(execution_parameter.insert(), values)
        after = int(rows[-1].id)
