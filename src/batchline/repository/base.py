"""The job repository interface.

Implementing one (say, for a store batchline does not ship)::

    class MyRepository:
        def create_job_execution(self, job_name, parameters, *, restartable=True): ...
        ...

Every status it writes is checked with ``batchline.model.check_status_change`` against the
status it last stored (IllegalTransition otherwise), and launches follow
``batchline.repository.launch.check_launch`` (what may start, restart, or is complete), so every
store keeps the same rules. An implementation must make ``create_job_execution`` atomic: of two
callers racing to launch the same instance, exactly one gets an execution and the other
JobExecutionAlreadyRunning. Methods that take ``conn`` run inside the caller's open transaction
when it is given (so chunk progress commits with the chunk's data) and in a transaction of their
own otherwise.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, Protocol

from batchline.model import (
    JobExecution,
    JobInstance,
    SkippedItem,
    StepContext,
    StepContribution,
    StepExecution,
)
from batchline.parameters import JobParameters
from batchline.repository.filters import Count, ExecutionQuery, JobSummary, Page, ProgressSample
from batchline.status import BatchStatus
from batchline.transaction import TransactionManager


class JobRepository(Protocol):
    """Where job instances, executions, step executions and their contexts are recorded.

    ``SqlJobRepository`` implements it on SQLite, PostgreSQL and MariaDB; ``Engine`` builds one
    from a URL."""

    # --- what it is and how to reach it -----------------------------------------------------

    def url(self) -> str | None:
        """The URL another process reaches this repository with (process partitions, workers),
        or None when it cannot be reached from elsewhere."""

    def sample_interval(self) -> float | None:
        """Seconds between two progress samples of a running step (None: none), which other
        processes running this repository's steps (partitions, queued jobs) keep too."""

    def transaction_manager(self) -> TransactionManager:
        """A transaction manager whose transactions reach the repository's database, so chunk
        progress commits with a chunk's data (the engine's default)."""

    def shares_connection_with(self, other: Any) -> bool:
        """Whether a transaction manager's connections reach this repository's database."""

    def dispose(self) -> None:
        """Release connections; the engine calls it when it closes."""

    # --- launching and job executions -------------------------------------------------------

    def create_job_execution(
        self,
        job_name: str,
        parameters: JobParameters,
        *,
        restartable: bool = True,
        new_instance_only: bool = False,
    ) -> JobExecution:
        """Find or create the instance and launch a new execution of it, or refuse.

        ``new_instance_only`` refuses (JobInstanceAlreadyExists) an instance that ran before:
        triggers use it so that a rival's failed run is not restarted behind its back.
        """

    def update_job_execution(self, execution: JobExecution) -> None:
        """Save status, exit status and times; adopts a concurrent stop request's version."""

    def save_job_context(self, execution: JobExecution) -> None: ...

    def get_job_execution(self, execution_id: int) -> JobExecution: ...

    def last_job_execution(self, job_name: str) -> JobExecution | None: ...

    def last_restartable_execution(self, job_name: str) -> JobExecution | None:
        """The newest execution of the job that is its instance's last and is not final."""

    def list_job_executions(
        self, job_name: str | None = None, *, limit: int = 50
    ) -> list[JobExecution]: ...

    def job_names(self) -> list[str]:
        """Every job name the repository has an instance of, sorted."""

    def get_job_instance(self, job_name: str, parameters: JobParameters) -> JobInstance | None: ...

    def request_stop(self, execution_id: int) -> JobExecution:
        """Ask a running execution to stop (JobExecutionNotRunning if it has ended)."""

    def stop_requested(self, job_execution_id: int, conn: Any = None) -> bool: ...

    def stop_signalled(self, job_execution_id: int) -> bool:
        """A cheap check, asked at every chunk boundary without a transaction: True when a stop
        was requested through a channel that needs no database lock. SQLite needs one (a
        running job holds its write lock nearly all the time); a server database answers False,
        as its chunk commit already sees stop requests."""

    def mark_abandoned(self, execution_id: int) -> JobExecution: ...

    def mark_failed(
        self,
        execution_id: int,
        message: str,
        *,
        stale_before: dt.datetime | None = None,
        unclaimed: bool = False,
    ) -> JobExecution:
        """Mark an execution and its running steps FAILED; with ``stale_before``, only if its
        last heartbeat is older than that (checked in the same write: JobExecutionAlreadyRunning
        when it renewed its lease meanwhile); with ``unclaimed``, only a queued execution still
        STARTING past its claim deadline."""

    def set_claim_deadline(self, execution_id: int, deadline: dt.datetime) -> None:
        """A queued (STARTING) execution waits for a worker's claim until ``deadline``: until
        then it is not taken for dead, whatever its heartbeat."""

    def claim_deadline(self, execution_id: int) -> dt.datetime | None:
        """Until when a queued execution waits for a worker's claim (None: never queued)."""

    def heartbeat(self, execution_ids: Sequence[int], conn: Any = None) -> list[int]:
        """Prove these executions alive; returns those still running (the others were
        recovered, abandoned or ended elsewhere: their process no longer holds them). With
        ``conn``, inside a chunk's transaction (a chunk commit carries a due heartbeat)."""

    def job_statuses(self, execution_ids: Sequence[int]) -> dict[int, BatchStatus]:
        """The status of each of these executions that exists, in one read."""

    def heartbeat_of(self, execution_id: int) -> dt.datetime | None:
        """When the execution last proved it was alive (None if it never did)."""

    def stale_executions(self, older_than: dt.datetime) -> list[JobExecution]: ...

    def get_step_context(self, job_instance_id: int, step_name: str) -> StepContext | None: ...

    def create_step_execution(
        self, job_execution: JobExecution, step_name: str, previous: StepContext | None
    ) -> StepExecution: ...

    def update_step_execution(self, step_execution: StepExecution, conn: Any = None) -> None:
        """Save counters, context and status; raises OptimisticLockingFailure on a lost update."""

    def save_chunk_progress(
        self, step_execution: StepExecution, contribution: StepContribution, conn: Any = None
    ) -> bool:
        """Save the step execution as it will be once the chunk commits (its contribution
        added); True if a stop was requested. Leaves the StepExecution itself unchanged."""

    def step_executions(self, job_execution_id: int) -> list[StepExecution]: ...

    def get_step_execution(self, step_execution_id: int) -> StepExecution:
        """One step execution by id (NoSuchExecution if there is none)."""

    def reoffer_step_execution(self, step_execution_id: int, message: str) -> bool:
        """STARTED -> STARTING at a new version: a remote partition whose worker was lost,
        offered to another worker, which resumes it from its last commit."""

    def step_heartbeat(self, step_execution_id: int) -> bool:
        """A remote worker proves it still runs a step execution (its ``last_updated``); False
        once the row has ended (the manager failed it, or another process recovered the job)."""

    def last_step_executions(
        self, job_instance_id: int, step_names: Sequence[str]
    ) -> dict[str, StepExecution]:
        """The last execution of each named step of the instance, by name."""

    def fail_step_execution(
        self,
        step_execution_id: int,
        message: str,
        *,
        version: int | None = None,
        written: int | None = None,
    ) -> bool:
        """Mark FAILED a step execution still recorded as running whose runner is gone; with
        ``version``, only if the row is still at that version (nobody else took it since); with
        ``written`` (the version the calling process last wrote), only if it is there or one
        further and still STARTED or STOPPING (the caller's own write whose reply was lost)."""

    def record_skips(self, skips: Sequence[SkippedItem], conn: Any = None) -> None: ...

    def skipped_items(
        self, job_execution_id: int, *, step_name: str | None = None, limit: int = 1000
    ) -> list[SkippedItem]: ...

    def count_skipped(self, job_execution_id: int) -> dict[str, int]: ...

    def progress_samples(
        self, job_execution_id: int, *, limit: int = 10_000
    ) -> list[ProgressSample]:
        """Counters of the execution's steps over time, oldest first (``repository/samples.py``:
        a store that keeps no history may return only what it has, or nothing)."""

    # --- the query API (repository/queries.py): keyset pages, newest first --------------------

    def find_executions(
        self,
        flt: ExecutionQuery | None = None,
        *,
        after: int | None = None,
        limit: int = 50,
        before: int | None = None,
    ) -> Page[JobExecution]:
        """Executions matching the filter with an id below ``after``, newest first (or the
        page just above ``before``, still newest first)."""

    def count_executions(self, flt: ExecutionQuery | None = None) -> int: ...

    def with_skips(self, execution_ids: list[int]) -> set[int]:
        """Which of these executions skipped items ("completed with skips" in lists)."""

    def count_bounded(self, flt: ExecutionQuery | None = None, *, bound: int = 1000) -> Count:
        """Exact when cheap, else counted up to ``bound`` (``Count.exact`` False past it)."""

    def job_instances(
        self, job_name: str, *, after: int | None = None, limit: int = 50
    ) -> Page[JobInstance]: ...

    def count_job_instances(self, job_name: str, *, bound: int | None = None) -> int:
        """How many instances the job has (with ``bound``: at most ``bound + 1``)."""

    def instance_executions(self, instance_id: int) -> list[JobExecution]: ...

    def running_executions(self, job_name: str | None = None) -> list[JobExecution]:
        """Executions whose status is running (STARTING, STARTED, STOPPING)."""

    def skipped_page(
        self,
        job_execution_id: int,
        *,
        step_name: str | None = None,
        after: int | None = None,
        limit: int = 50,
    ) -> Page[SkippedItem]:
        """Skipped items in skip order; ``after`` is the last id of the previous page."""

    def job_summaries(self, job_name: str | None = None) -> list[JobSummary]:
        """Every job's last execution, executions by status and average completed duration."""
