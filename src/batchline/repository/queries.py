"""The repository's query API (Spring's JobExplorer): what the engine, the CLI and the web read.

Every list is a keyset page on the id, newest first (``filters.Page``); every filter is a WHERE
on indexed columns, except parameter values, which are read from the parameters' JSON with each
backend's own JSON functions (and narrowed by the other filters first).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql import ColumnElement

from batchline.errors import NoSuchExecution
from batchline.model import JobExecution, JobInstance, SkippedItem, StepExecution
from batchline.repository import listing
from batchline.repository.filters import (
    SEARCH_WINDOW,
    Count,
    ExecutionQuery,
    JobSummary,
    Page,
    check_page,
)
from batchline.repository.rows import to_job_execution, to_step_execution
from batchline.repository.schema import (
    job_execution,
    job_instance,
    job_summary,
    skipped_item,
    step_execution,
)
from batchline.status import BatchStatus

T = TypeVar("T")

_RUNNING = [s.value for s in BatchStatus if s.is_running]
_EXECUTIONS = sa.select(job_execution, job_instance.c.job_key).join(
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

    def _names(self, conn: Connection, flt: ExecutionQuery) -> list[str] | None:
        """The jobs a filter looks in: its name, the names its prefix matches, or None (all)."""
        if flt.job_name is not None:
            if flt.job_prefix and not flt.job_name.startswith(flt.job_prefix):
                return []
            return [flt.job_name]
        if flt.job_prefix:
            return [str(n) for n in conn.execute(listing.job_names(flt.job_prefix)).scalars()]
        return None

    def _ids(
        self, conn: Connection, flt: ExecutionQuery, keys: listing.Keys, limit: int
    ) -> tuple[list[int], int | None]:
        """The page's ids (``limit`` of them at most, in the keys' order) and, for an
        exit-message search cut short by its window, the id where the window ended."""
        names = self._names(conn, flt)
        if names == []:
            return [], None
        edge = None
        if flt.message:
            window = listing.ids(flt, names, keys, SEARCH_WINDOW, message=False).subquery()
            bound = sa.func.min if keys.descending else sa.func.max
            row = conn.execute(sa.select(bound(window.c.id), sa.func.count()).select_from(window))
            found_edge, seen = row.one()
            if seen >= SEARCH_WINDOW:
                edge = int(found_edge)
                keys = (
                    dataclasses.replace(keys, low=edge)
                    if keys.descending
                    else dataclasses.replace(keys, high=edge)
                )
        query = listing.ids(flt, names, keys, limit)
        dialect = self.engine.dialect.name
        long = listing.long_values(flt)
        if long:
            sub = query.subquery()
            query = (
                sa.select(sub.c.id)
                .join(job_execution, job_execution.c.id == sub.c.id)
                .where(*(_parameter_value(dialect, n) == v for n, v in long))
            )
        return [int(i) for i in conn.execute(query).scalars()], edge

    def find_executions(
        self,
        flt: ExecutionQuery | None = None,
        *,
        after: int | None = None,
        limit: int = 50,
        before: int | None = None,
    ) -> Page[JobExecution]:
        """Executions older than ``after`` (newest first), or the page just newer than
        ``before``; each branch of the query walks an index (``listing``)."""
        flt = flt or ExecutionQuery()
        keys = listing.Keys(after=after, before=None if after is not None else before)
        check_page(limit)

        def read(conn: Connection) -> tuple[list[JobExecution], int | None, bool]:
            _custom_plan(conn)
            found, edge = self._ids(conn, flt, keys, limit + 1)
            more = len(found) > limit
            found = found[:limit]
            if not found:
                return [], edge, more
            rows = conn.execute(
                _EXECUTIONS.where(job_execution.c.id.in_(found)).order_by(job_execution.c.id.desc())
            )
            return [to_job_execution(r) for r in rows.mappings()], edge, more

        items, edge, more = self._read(read)
        if not keys.descending:  # walked up from ``before``: older pages exist below it
            newer = items[0].id if more and items else None
            return Page(items, items[-1].id if items else before, newer)
        older = items[-1].id if more and items else None
        if older is None and edge is not None:
            older = edge  # the search window ended: the next page searches on below it
        return Page(items, older, items[0].id if after is not None and items else None)

    def count_executions(self, flt: ExecutionQuery | None = None) -> int:
        """Exactly, from the summary rows when the filter is only jobs and statuses (one index
        read); otherwise by counting the rows (see ``count_bounded`` for pages)."""
        flt = flt or ExecutionQuery()
        if flt.counted_by_summary:
            return self._summary_count(flt)
        found = self.count_bounded(flt, bound=None)
        return found.value

    def _summary_count(self, flt: ExecutionQuery) -> int:
        query = sa.select(sa.func.coalesce(sa.func.sum(job_summary.c.executions), 0))
        if flt.job_name is not None:
            query = query.where(job_summary.c.job_name == flt.job_name)
        if flt.job_prefix:
            query = query.where(job_summary.c.job_name.startswith(flt.job_prefix, autoescape=True))
        if flt.statuses:
            query = query.where(job_summary.c.status.in_(sorted(s.value for s in flt.statuses)))
        return int(self._read(lambda conn: conn.execute(query).scalar_one()))

    def count_bounded(
        self, flt: ExecutionQuery | None = None, *, bound: int | None = 1000
    ) -> Count:
        """How many match: exact from the summary rows when it can be, else counted up to
        ``bound`` (a lower bound past it); an exit-message search counts in its window."""
        flt = flt or ExecutionQuery()
        if flt.counted_by_summary:
            return Count(self._summary_count(flt))

        def read(conn: Connection) -> Count:
            _custom_plan(conn)
            limit = (bound + 1) if bound is not None else 2**62
            found, edge = self._ids(conn, flt, listing.Keys(), limit)
            if bound is not None and len(found) > bound:
                return Count(bound, exact=False)
            return Count(len(found), exact=edge is None)

        return self._read(read)

    def with_skips(self, execution_ids: list[int]) -> set[int]:
        """Which of these executions skipped items (an index probe each, not a count)."""
        if not execution_ids:
            return set()
        query = sa.select(job_execution.c.id).where(
            job_execution.c.id.in_(execution_ids),
            sa.exists().where(skipped_item.c.job_execution_id == job_execution.c.id),
        )
        return self._read(lambda conn: {int(i) for i in conn.execute(query).scalars()})

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

    def count_job_instances(self, job_name: str, *, bound: int | None = None) -> int:
        """How many instances the job has; with ``bound``, counted up to ``bound + 1`` only
        (a job's instances grow with its history: a page's total need not)."""
        ids = sa.select(job_instance.c.id).where(job_instance.c.job_name == job_name)
        if bound is not None:
            ids = ids.limit(bound + 1)
        query = sa.select(sa.func.count()).select_from(ids.subquery())
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
            query = query.where(job_execution.c.job_name == job_name)
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

    def job_names(self) -> list[str]:
        """Every job with executions, sorted: from the summary rows, not the instances."""
        query = (
            sa.select(job_summary.c.job_name)
            .group_by(job_summary.c.job_name)
            .having(sa.func.sum(job_summary.c.executions) > 0)
            .order_by(job_summary.c.job_name)
        )
        return self._read(lambda conn: [str(n) for n in conn.execute(query).scalars()])

    def job_summaries(self, job_name: str | None = None) -> list[JobSummary]:
        """Every job (or one): its last execution, executions by status, average completed
        duration. Reads the summary rows and, per job, one index entry of its instances: the
        cost does not grow with the history."""
        rows_query = sa.select(job_summary).where(job_summary.c.executions != 0)
        if job_name is not None:
            rows_query = rows_query.where(job_summary.c.job_name == job_name)

        def read(conn: Connection) -> tuple[Any, Any]:
            rows = conn.execute(rows_query).mappings().all()
            names = sorted({str(r["job_name"]) for r in rows})
            newest = [
                sa.select(sa.func.max(job_instance.c.last_execution_id))
                .where(job_instance.c.job_name == name)
                .scalar_subquery()
                for name in names
            ]
            # One statement, one index read per job (a GROUP BY would read every instance).
            ids = list(conn.execute(sa.select(*newest)).one()) if newest else []
            wanted = [int(i) for i in ids if i is not None]
            last = (
                conn.execute(_EXECUTIONS.where(job_execution.c.id.in_(wanted))).mappings().all()
                if wanted
                else []
            )
            return rows, last

        summary_rows, last_rows = self._read(read)
        counts: dict[str, dict[BatchStatus, int]] = {}
        timed: dict[str, tuple[int, float]] = {}
        for row in summary_rows:
            job, status = str(row["job_name"]), BatchStatus(row["status"])
            counts.setdefault(job, {})[status] = int(row["executions"])
            if status is BatchStatus.COMPLETED and row["timed"] > 0:
                timed[job] = (int(row["timed"]), float(row["seconds"]))
        averages = {job: seconds / n for job, (n, seconds) in timed.items()}
        lasts = {row["job_name"]: to_job_execution(row) for row in last_rows}
        return [
            JobSummary(job, lasts.get(job), counts[job], averages.get(job))
            for job in sorted(counts)
        ]
