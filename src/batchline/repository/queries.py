"""The repository's query API (Spring's JobExplorer): what the engine, the CLI and the web read.

Every list is a keyset page on the id, newest first (``filters.Page``); every filter is a WHERE
on indexed columns, except parameter values, which are read from the parameters' JSON with each
backend's own JSON functions (and narrowed by the other filters first).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, RowMapping
from sqlalchemy.sql import ColumnElement

from batchline.errors import NoSuchExecution
from batchline.model import JobExecution, JobInstance, SkippedItem, StepExecution
from batchline.repository.filters import (
    ExecutionQuery,
    JobSummary,
    Page,
    check_page,
    parameter_text,
)
from batchline.repository.rows import to_job_execution, to_step_execution
from batchline.repository.schema import job_execution, job_instance, skipped_item, step_execution
from batchline.status import BatchStatus

T = TypeVar("T")

_RUNNING = [s.value for s in BatchStatus if s.is_running]
_EXECUTIONS = sa.select(job_execution, job_instance.c.job_name, job_instance.c.job_key).join(
    job_instance, job_instance.c.id == job_execution.c.job_instance_id
)


def _parameter_value(dialect: str, name: str) -> ColumnElement[Any]:
    """The text of parameter ``name``'s value in the execution's parameters JSON (NULL when
    absent), as ``filters.parameter_text`` writes it: each backend's JSON functions."""
    column = job_execution.c.parameters
    if dialect == "postgresql":
        return sa.func.json_extract_path_text(sa.cast(column, sa.JSON), name, "value")
    path = sa.literal(f'$."{name}".value')  # names are letters, digits, '_', '.', '-'
    if dialect == "sqlite":
        # json_extract gives SQL values: true is 1, so booleans are named by json_type.
        kind = sa.func.json_type(column, path)
        return sa.case(
            (kind.in_(["true", "false"]), kind),
            else_=sa.cast(sa.func.json_extract(column, path), sa.Text),
        )
    return sa.func.json_unquote(sa.func.json_extract(column, path))


def _seconds(dialect: str) -> ColumnElement[Any]:
    start, end = job_execution.c.start_time, job_execution.c.end_time
    if dialect == "postgresql":
        return sa.extract("epoch", end - start)
    if dialect == "sqlite":
        return (sa.func.julianday(end) - sa.func.julianday(start)) * 86400.0
    return sa.func.timestampdiff(sa.text("MICROSECOND"), start, end) / 1e6


def _custom_plan(conn: Connection) -> None:
    """PostgreSQL: plan this transaction's statements for their values. psycopg prepares a
    statement run five times, and PostgreSQL's generic plan for it guesses every time range
    narrow: it then walks the create_time index through tens of thousands of rows (11 ms at
    100,000 executions, growing with the table) instead of (status, id) for 51 (0.3 ms)."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SET LOCAL plan_cache_mode = force_custom_plan"))


def _page(items: list[T], limit: int, key: Callable[[T], int]) -> Page[T]:
    """One row past the page was asked for: it says whether a next page exists."""
    if len(items) > limit:
        items = items[:limit]
        return Page(items, key(items[-1]))
    return Page(items, None)


class SqlQueries:
    """Mixed into ``SqlJobRepository``: reads only, each in a read transaction."""

    engine: Engine

    def _read(self, fn: Callable[[Connection], T], conn: Connection | None = None) -> T:
        raise NotImplementedError  # SqlJobRepository's

    def _where(self, flt: ExecutionQuery) -> list[ColumnElement[bool]]:
        where: list[ColumnElement[bool]] = []
        if flt.job_name is not None:
            where.append(job_instance.c.job_name == flt.job_name)
        if flt.instance_id is not None:
            where.append(job_execution.c.job_instance_id == flt.instance_id)
        if flt.statuses:
            where.append(job_execution.c.status.in_(sorted(s.value for s in flt.statuses)))
        if flt.created_from is not None:
            where.append(job_execution.c.create_time >= flt.created_from)
        if flt.created_to is not None:
            where.append(job_execution.c.create_time < flt.created_to)
        dialect = self.engine.dialect.name
        for name, value in flt.parameters:
            where.append(_parameter_value(dialect, name) == parameter_text(value))
        return where

    def find_executions(
        self, flt: ExecutionQuery | None = None, *, after: int | None = None, limit: int = 50
    ) -> Page[JobExecution]:
        where = self._where(flt or ExecutionQuery())
        if after is not None:
            where.append(job_execution.c.id < after)
        query = _EXECUTIONS.where(*where).order_by(job_execution.c.id.desc())
        query = query.limit(check_page(limit) + 1)

        def read(conn: Connection) -> Sequence[RowMapping]:
            _custom_plan(conn)
            return conn.execute(query).mappings().all()

        rows = self._read(read)
        return _page([to_job_execution(r) for r in rows], limit, lambda e: e.id)

    def count_executions(self, flt: ExecutionQuery | None = None) -> int:
        query = (
            sa.select(sa.func.count())
            .select_from(job_execution.join(job_instance))
            .where(*self._where(flt or ExecutionQuery()))
        )

        def read(conn: Connection) -> int:
            _custom_plan(conn)
            return int(conn.execute(query).scalar_one())

        return self._read(read)

    def job_instances(
        self, job_name: str, *, after: int | None = None, limit: int = 50
    ) -> Page[JobInstance]:
        query = sa.select(job_instance.c.id, job_instance.c.job_key).where(
            job_instance.c.job_name == job_name
        )
        if after is not None:
            query = query.where(job_instance.c.id < after)
        query = query.order_by(job_instance.c.id.desc()).limit(check_page(limit) + 1)
        rows = self._read(lambda conn: conn.execute(query).all())
        found = [JobInstance(int(r.id), job_name, str(r.job_key)) for r in rows]
        return _page(found, limit, lambda i: i.id)

    def count_job_instances(self, job_name: str) -> int:
        query = sa.select(sa.func.count()).where(job_instance.c.job_name == job_name)
        return int(self._read(lambda conn: conn.execute(query).scalar_one()))

    def instance_executions(self, instance_id: int) -> list[JobExecution]:
        query = _EXECUTIONS.where(job_execution.c.job_instance_id == instance_id).order_by(
            job_execution.c.id.desc()
        )
        rows = self._read(lambda conn: conn.execute(query).mappings().all())
        return [to_job_execution(r) for r in rows]

    def running_executions(self, job_name: str | None = None) -> list[JobExecution]:
        """Executions whose status says they run (STARTING, STARTED, STOPPING): the status, not
        a missing end time, which a killed process also leaves."""
        query = _EXECUTIONS.where(job_execution.c.status.in_(_RUNNING))
        if job_name is not None:
            query = query.where(job_instance.c.job_name == job_name)
        query = query.order_by(job_execution.c.id.desc())
        rows = self._read(lambda conn: conn.execute(query).mappings().all())
        return [to_job_execution(r) for r in rows]

    def get_step_execution(self, step_execution_id: int) -> StepExecution:
        query = sa.select(step_execution).where(step_execution.c.id == step_execution_id)
        row = self._read(lambda conn: conn.execute(query).mappings().first())
        if row is None:
            raise NoSuchExecution(f"no step execution with id {step_execution_id}")
        return to_step_execution(row)

    def skipped_page(
        self,
        job_execution_id: int,
        *,
        step_name: str | None = None,
        after: int | None = None,
        limit: int = 50,
    ) -> Page[SkippedItem]:
        """Skipped items in the order they were skipped; ``after`` is the last id seen."""
        query = (
            sa.select(skipped_item, step_execution.c.step_name)
            .join(step_execution, step_execution.c.id == skipped_item.c.step_execution_id)
            .where(skipped_item.c.job_execution_id == job_execution_id)
        )
        if step_name is not None:
            query = query.where(step_execution.c.step_name == step_name)
        if after is not None:
            query = query.where(skipped_item.c.id > after)
        query = query.order_by(skipped_item.c.id).limit(check_page(limit) + 1)
        rows = self._read(lambda conn: conn.execute(query).mappings().all())
        items = [
            SkippedItem(
                id=r["id"],
                step_execution_id=r["step_execution_id"],
                job_execution_id=r["job_execution_id"],
                phase=r["phase"],
                position=r["position"],
                item=r["item"],
                error_type=r["error_type"],
                error_message=r["error_message"],
                create_time=r["create_time"],
                step_name=r["step_name"],
            )
            for r in rows
        ]
        return _page(items, limit, lambda s: s.id or 0)

    def job_summaries(self) -> list[JobSummary]:
        """Every job: its last execution, executions by status, average completed duration.
        Three grouped queries, whatever the number of jobs."""
        name = job_instance.c.job_name
        joined = job_execution.join(job_instance)
        by_status = (
            sa.select(name, job_execution.c.status, sa.func.count())
            .select_from(joined)
            .group_by(name, job_execution.c.status)
        )
        durations = (
            sa.select(name, sa.func.avg(_seconds(self.engine.dialect.name)))
            .select_from(joined)
            .where(job_execution.c.status == BatchStatus.COMPLETED.value)
            .group_by(name)
        )
        newest = sa.select(sa.func.max(job_execution.c.id)).select_from(joined).group_by(name)
        last = _EXECUTIONS.where(job_execution.c.id.in_(newest))

        def read(conn: Connection) -> tuple[Any, Any, Any]:
            return (
                conn.execute(by_status).all(),
                conn.execute(durations).all(),
                conn.execute(last).mappings().all(),
            )

        counts_rows, duration_rows, last_rows = self._read(read)
        counts: dict[str, dict[BatchStatus, int]] = {}
        for job, status, count in counts_rows:
            counts.setdefault(job, {})[BatchStatus(status)] = int(count)
        averages = {job: None if avg is None else float(avg) for job, avg in duration_rows}
        lasts = {row["job_name"]: to_job_execution(row) for row in last_rows}
        names = sorted(set(counts) | set(lasts))
        return [
            JobSummary(job, lasts.get(job), counts.get(job, {}), averages.get(job)) for job in names
        ]
