"""The ids of a page of executions, each read down an index whatever the history's size.

A filter on several statuses (or several jobs, from a name prefix) is a UNION ALL of one
branch per (job, status), each a walk down ``(job_name, status, id)`` or ``(status, id)`` that
stops after a page, then the newest page of their union: no database merges an IN list's index
ranges in id order by itself, and sorting every matching row is what made pages slow with the
history. A parameter filter walks the side table's ``(name, value, execution id)`` index.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql import ColumnElement, Select

from batchline.repository.filters import ExecutionQuery, parameter_text
from batchline.repository.schema import execution_parameter, job_execution, job_summary
from batchline.repository.summary import NAME_CHARS, VALUE_CHARS

MAX_BRANCHES = 64

ID = job_execution.c.id


@dataclass(frozen=True)
class Keys:
    """Where a page starts: below ``after`` (older, newest first) or above ``before``
    (newer, oldest first); at most ``low``..``high`` (a search window)."""

    after: int | None = None
    before: int | None = None
    low: int | None = None
    high: int | None = None

    @property
    def descending(self) -> bool:
        return self.before is None

    def where(self, column: Any) -> list[ColumnElement[bool]]:
        found: list[ColumnElement[bool]] = []
        if self.after is not None:
            found.append(column < self.after)
        if self.before is not None:
            found.append(column > self.before)
        if self.low is not None:
            found.append(column >= self.low)
        if self.high is not None:
            found.append(column <= self.high)
        return found


def job_names(prefix: str) -> Select[Any]:
    """The names of the jobs starting with ``prefix`` that have executions (summary rows)."""
    return (
        sa.select(job_summary.c.job_name)
        .where(job_summary.c.job_name.startswith(prefix, autoescape=True))
        .group_by(job_summary.c.job_name)
        .having(sa.func.sum(job_summary.c.executions) > 0)
        .order_by(job_summary.c.job_name)
    )


def message_like(text: str) -> ColumnElement[bool]:
    return sa.func.lower(job_execution.c.exit_message).contains(text.lower(), autoescape=True)


def _common(flt: ExecutionQuery) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if flt.instance_id is not None:
        where.append(job_execution.c.job_instance_id == flt.instance_id)
    if flt.created_from is not None:
        where.append(job_execution.c.create_time >= flt.created_from)
    if flt.created_to is not None:
        where.append(job_execution.c.create_time < flt.created_to)
    return where


def _order(column: Any, keys: Keys) -> Any:
    return column.desc() if keys.descending else column.asc()


def ids(
    flt: ExecutionQuery,
    names: list[str] | None,
    keys: Keys,
    limit: int,
    *,
    message: bool = True,
) -> Select[Any]:
    """A SELECT of the ids of the page (``limit`` rows, in the keys' direction).

    ``names``: the jobs to look in (None: every job), resolved from a name or prefix first.
    ``message``: apply the exit-message filter (off to find a search window's bounds).
    """
    statuses = sorted(s.value for s in flt.statuses)
    extra = _common(flt)
    if message and flt.message:
        extra.append(message_like(flt.message))
    if flt.parameters:
        return _by_parameters(flt, names, statuses, extra, keys, limit)
    if len(names or [None]) * len(statuses or [None]) > MAX_BRANCHES:
        where = [*extra, *keys.where(ID)]
        if names is not None:
            where.append(job_execution.c.job_name.in_(names))
        if statuses:
            where.append(job_execution.c.status.in_(statuses))
        return sa.select(ID).where(*where).order_by(_order(ID, keys)).limit(limit)
    branches = []
    for name in [*names] if names is not None else [None]:
        for status in [*statuses] if statuses else [None]:
            where = [*extra, *keys.where(ID)]
            if name is not None:
                where.append(job_execution.c.job_name == name)
            if status is not None:
                where.append(job_execution.c.status == status)
            branches.append(sa.select(ID).where(*where).order_by(_order(ID, keys)).limit(limit))
    if len(branches) == 1:
        return branches[0]
    # Each branch keeps its own ORDER BY and LIMIT inside a subquery (SQLite needs that).
    parts = [sa.select(b.subquery().c.id) for b in branches]
    union = sa.union_all(*parts).subquery()
    return sa.select(union.c.id).order_by(_order(union.c.id, keys)).limit(limit)


def _by_parameters(
    flt: ExecutionQuery,
    names: list[str] | None,
    statuses: list[str],
    extra: list[ColumnElement[bool]],
    keys: Keys,
    limit: int,
) -> Select[Any]:
    (first, first_value), *others = flt.parameters
    driver = execution_parameter.alias("p0")
    key = driver.c.job_execution_id
    where = [
        driver.c.name == first[:NAME_CHARS],
        driver.c.value == parameter_text(first_value)[:VALUE_CHARS],
        *extra,
        *keys.where(key),
    ]
    if names is not None:
        where.append(job_execution.c.job_name.in_(names))
    if statuses:
        where.append(job_execution.c.status.in_(statuses))
    for n, (name, value) in enumerate(others, start=1):
        p = execution_parameter.alias(f"p{n}")
        where.append(
            sa.exists().where(
                p.c.job_execution_id == key,
                p.c.name == name[:NAME_CHARS],
                p.c.value == parameter_text(value)[:VALUE_CHARS],
            )
        )
    query = sa.select(key.label("id"))
    if names is not None or statuses or extra:  # else the side table answers alone
        query = query.join(job_execution, key == ID)
    return query.where(*where).order_by(_order(key, keys)).limit(limit)


def long_values(flt: ExecutionQuery) -> list[tuple[str, str]]:
    """Filter values the side table holds only the start of: checked on the JSON after."""
    return [
        (name, parameter_text(value))
        for name, value in flt.parameters
        if len(parameter_text(value)) > VALUE_CHARS or len(name) > NAME_CHARS
    ]
