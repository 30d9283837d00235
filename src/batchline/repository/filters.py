"""What the query API takes and returns: an execution filter, a keyset page, a job's summary,
a progress sample.

Pages are keyset pages, newest first: ``next_after`` is the id to pass as ``after`` for the next
page (None on the last), so a page costs the same however deep it is and a row inserted
meanwhile never shifts the rows already seen, as OFFSET would.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from batchline.errors import ConfigurationError, ParameterError
from batchline.model import JobExecution
from batchline.parameters import ParamValue
from batchline.status import BatchStatus

T = TypeVar("T")

MAX_PAGE = 1000
# Parameter filters of one query: each is a JSON path test, and a few hundred pass SQLite's
# expression depth (a 503 for what is the request's own fault).
MAX_PARAMETER_FILTERS = 32
# The exit-message search reads at most this many candidates per page (a LIKE over the whole
# history is a scan no index serves); the page says where it stopped, and the next goes on.
SEARCH_WINDOW = 10_000
# A total count beyond the summary rows stops here ("more than 1,000").
COUNT_BOUND = 1000
RUNNING = frozenset({BatchStatus.STARTING, BatchStatus.STARTED, BatchStatus.STOPPING})


@dataclass(frozen=True)
class ExecutionQuery:
    """Executions of a job (or of the jobs whose name starts with ``job_prefix``, or of an
    instance), with one of ``statuses``, created in [``created_from``, ``created_to``), whose
    parameters have these values (all of them), whose exit message holds ``message`` (any
    case; searched in a bounded window of the newest candidates, ``SEARCH_WINDOW``)."""

    job_name: str | None = None
    statuses: frozenset[BatchStatus] = frozenset()
    created_from: dt.datetime | None = None
    created_to: dt.datetime | None = None
    parameters: tuple[tuple[str, ParamValue], ...] = ()
    instance_id: int | None = None
    job_prefix: str | None = None
    message: str | None = None

    @property
    def counted_by_summary(self) -> bool:
        """Only job and status: the per-job summary rows count it exactly."""
        return not (self.created_from or self.created_to or self.parameters or self.message) and (
            self.instance_id is None
        )

    def __post_init__(self) -> None:
        if len(self.parameters) > MAX_PARAMETER_FILTERS:
            raise ParameterError(
                f"{len(self.parameters)} parameter filters: at most {MAX_PARAMETER_FILTERS}"
            )

    @classmethod
    def of(
        cls,
        *,
        job_name: str | None = None,
        statuses: Iterable[BatchStatus | str] = (),
        created_from: dt.datetime | None = None,
        created_to: dt.datetime | None = None,
        parameters: Mapping[str, ParamValue] | None = None,
        instance_id: int | None = None,
        job_prefix: str | None = None,
        message: str | None = None,
    ) -> ExecutionQuery:
        """A filter from loose values: status names in any case, parameters as a mapping."""
        return cls(
            job_name=job_name,
            statuses=frozenset(_status(s) for s in statuses),
            created_from=created_from,
            created_to=created_to,
            parameters=tuple(sorted((parameters or {}).items())),
            instance_id=instance_id,
            job_prefix=job_prefix or None,
            message=message or None,
        )


def _status(value: BatchStatus | str) -> BatchStatus:
    if isinstance(value, BatchStatus):
        return value
    try:
        return BatchStatus(value.upper())
    except ValueError:
        names = ", ".join(s.value for s in BatchStatus)
        raise ConfigurationError(f"unknown status {value!r}; use one of {names}") from None


def check_page(limit: int) -> int:
    if not 1 <= limit <= MAX_PAGE:
        raise ConfigurationError(f"page size {limit} is out of range 1..{MAX_PAGE}")
    return limit


def parameter_text(value: ParamValue) -> str:
    """A parameter value as the repository's JSON holds it, in text: what filters compare."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float):
        return repr(value)
    return str(value)


@dataclass(frozen=True)
class Page(Generic[T]):
    """``next_after``: pass as ``after`` for the older page; ``previous_before``: pass as
    ``before`` for the newer page (None: there is none)."""

    items: list[T]
    next_after: int | None = None
    previous_before: int | None = None


@dataclass(frozen=True)
class Count:
    """How many match: exact, or ``value`` is a lower bound ("more than")."""

    value: int
    exact: bool = True

    def __str__(self) -> str:
        return f"{self.value:,}" if self.exact else f"more than {self.value:,}"


@dataclass(frozen=True)
class JobSummary:
    """A job at a glance: its last execution, executions by status, the average duration of
    its completed executions (seconds; None before the first)."""

    job_name: str
    last: JobExecution | None
    counts: dict[BatchStatus, int] = field(default_factory=dict)
    average_seconds: float | None = None

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True)
class ProgressSample:
    """A step execution's counters at one moment (naive UTC, as the repository keeps times)."""

    step_execution_id: int
    step_name: str
    time: dt.datetime
    read_count: int
    write_count: int
    filter_count: int
    skip_count: int
