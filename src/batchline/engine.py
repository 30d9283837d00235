"""The engine: the one object that holds a repository, a registry and pools, and runs jobs.

No state lives at module level: two engines (say, on two repositories) work side by side.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING

from batchline.errors import (
    ConfigurationError,
    IllegalTransition,
    JobExecutionAlreadyRunning,
    JobExecutionNotRunning,
    JobRestartRefused,
    NoSuchExecution,
    OptimisticLockingFailure,
)
from batchline.explorer import Explorer
from batchline.flow import iter_steps
from batchline.job import Job, run_job
from batchline.launching import Launcher as Launcher  # re-exported: its home before launching.py
from batchline.launching import Params as Params
from batchline.logging import DEFAULT_CAP, capture, log
from batchline.model import JobExecution, SkippedItem, StepExecution, utcnow
from batchline.observers import observers_of
from batchline.parameters import JobParameters
from batchline.pools import WorkerPool
from batchline.registry import JobRegistry
from batchline.repository.base import JobRepository
from batchline.repository.database import DEFAULT_URL
from batchline.repository.filters import ExecutionQuery
from batchline.repository.logs import ExecutionLogs, LogBuffer
from batchline.repository.sql import SqlJobRepository
from batchline.runid import launch_next_instance
from batchline.status import BatchStatus, ExitStatus
from batchline.steps.base import StepRuntime
from batchline.steps.control import RunControl
from batchline.transaction import TransactionManager

if TYPE_CHECKING:
    from batchline.backfill.grid import BackfillState
    from batchline.backfill.operations import BackfillHandle
    from batchline.backfill.ranges import BackfillRange
    from batchline.backfill.store import BackfillRecord

# A launcher that never sends again (claim_timeout None): the execution waits for its worker.
_NO_CLAIM_DEADLINE = dt.datetime(9999, 12, 31)


def claim_deadline(claim_timeout: float | None) -> dt.datetime:
    """Until when an execution queued now waits for a worker's claim."""
    if claim_timeout is None:
        return _NO_CLAIM_DEADLINE
    return utcnow() + dt.timedelta(seconds=claim_timeout)


@dataclass
class _Followed:
    """A queued execution a handle follows: its future, and how to send it again."""

    future: Future[JobExecution]
    resend: Callable[[], None] | None
    claim_timeout: float | None
    sent: float


@dataclass(frozen=True)
class JobHandle:
    """A job started with ``start_async``: wait for it, or ask the repository how it is doing."""

    execution_id: int
    future: Future[JobExecution]
    engine: Engine

    def wait(self, timeout: float | None = None) -> JobExecution:
        return self.future.result(timeout)

    def done(self) -> bool:
        return self.future.done()

    def status(self) -> BatchStatus:
        return self.engine.get_execution(self.execution_id).status

    def stop(self) -> JobExecution:
        return self.engine.stop(self.execution_id)


def check_lease(lease: float, heartbeat_interval: float) -> None:
    """Refuse a lease that a live process could not keep: one heartbeat interval must fit in
    it with room to spare, or a job fails its own lease between two beats."""
    if not heartbeat_interval > 0:
        raise ConfigurationError(f"heartbeat_interval must be > 0 seconds: {heartbeat_interval}")
    if not lease > heartbeat_interval:
        raise ConfigurationError(
            f"the lease ({lease:g}s) must be longer than the heartbeat interval "
            f"({heartbeat_interval:g}s)"
        )


def _log_buffer(repository: JobRepository, level: int | None, cap: int) -> LogBuffer | None:
    """Where the jobs' log lines go: an SQL repository's own tables; elsewhere, nowhere."""
    bind = getattr(repository, "engine", None)
    if level is None or not isinstance(repository, SqlJobRepository) or bind is None:
        return None
    return LogBuffer(ExecutionLogs(bind, cap=cap), level=level)


class Engine(Explorer):
    """Starts, stops, restarts, abandons and recovers jobs against one job repository.

    ``heartbeat_interval`` is how often a running execution proves it is alive; an execution
    whose heartbeat is older than ``lease`` seconds is taken for dead by ``recover``; a lease
    not longer than the interval is refused (ConfigurationError), as the CLI refuses it.
    ``max_concurrent_jobs`` bounds the jobs running at once; ``max_concurrent_steps`` the steps
    running beside others (split flows, partitions on threads without a pool of their own).
    ``observers`` hear every job, step and chunk (``batchline.observers``: metrics, traces).
    ``log_level``: the records of a running job at this level and up, from any logger, are kept
    with its execution in an SQL repository (at most ``log_cap`` lines each; None keeps none).
    The query API (``find_executions``, ``job_instances``...) comes from ``Explorer``.
    """

    def __init__(
        self,
        repository: JobRepository | str = DEFAULT_URL,
        *,
        registry: JobRegistry | None = None,
        transaction_manager: TransactionManager | None = None,
        max_concurrent_jobs: int = 4,
        max_concurrent_steps: int = 8,
        heartbeat_interval: float = 10.0,
        lease: float = 60.0,
        observers: Sequence[object] = (),
        log_level: int | None = logging.INFO,
        log_cap: int = DEFAULT_CAP,
    ) -> None:
        check_lease(lease, heartbeat_interval)
        self.repository: JobRepository = (
            SqlJobRepository(repository) if isinstance(repository, str) else repository
        )
        self.registry = registry if registry is not None else JobRegistry()
        self.transaction_manager = (
            transaction_manager
            if transaction_manager is not None
            else self.repository.transaction_manager()
        )
        self.heartbeat_interval = heartbeat_interval
        self.lease = lease
        self._observers = list(observers)
        self._observing = observers_of(self._observers)
        self._pool = WorkerPool("batchline-job", max_concurrent_jobs)
        self._step_pool = WorkerPool("batchline-step", max_concurrent_steps)
        # The run control of each execution running (or queued) here, by id.
        self._running: dict[int, RunControl] = {}
        # Child jobs' executions (job steps) -> their parent's, whose stop requests reach them.
        self._parents: dict[int, int] = {}
        self._lock = threading.Lock()
        # Queued executions followed by their handles, read by one thread (``_poll``).
        self._followed: dict[int, _Followed] = {}
        self._poller: threading.Thread | None = None
        self.follow_interval = 0.5
        self._closed = threading.Event()
        self.log_buffer = _log_buffer(self.repository, log_level, log_cap)
        self._heart = threading.Thread(target=self._beat, name="batchline-heartbeat", daemon=True)
        self._heart.start()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Wait for jobs started here, then stop the heartbeat and release connections."""
        self._pool.shutdown(wait=True)
        self._step_pool.shutdown(wait=True)
        self._closed.set()
        self._heart.join(timeout=5)
        if self.log_buffer is not None:
            self.log_buffer.close()
        self.repository.dispose()

    # --- registry ---------------------------------------------------------------------------

    def register(self, job: Job, *, replace: bool = False) -> Job:
        return self.registry.register(job, replace=replace)

    def observe(self, *observers: object) -> None:
        """Add observers (``batchline.observers``): they hear every job started after this."""
        self._observers.extend(observers)
        self._observing = observers_of(self._observers)

    def _job(self, job: Job | str) -> Job:
        return self.registry.get(job) if isinstance(job, str) else job

    # --- launching --------------------------------------------------------------------------

    def launch(
        self, job: Job | str, parameters: Params = None, *, new_instance_only: bool = False
    ) -> tuple[Job, JobExecution]:
        """Validate, create the execution, and return it without running it."""
        resolved = self._job(job)
        params = parameters if isinstance(parameters, JobParameters) else JobParameters(parameters)
        resolved.validate(params)
        self._check_reach(resolved)
        execution = self.repository.create_job_execution(
            resolved.name,
            params,
            restartable=resolved.restartable,
            new_instance_only=new_instance_only,
        )
        return resolved, execution

    def start(
        self, job: Job | str, parameters: Params = None, *, new_instance_only: bool = False
    ) -> JobExecution:
        """Run a job to its end in this thread and return the finished execution.

        ``new_instance_only`` refuses an instance that ran before (JobInstanceAlreadyExists).
        """
        return self._run(*self.launch(job, parameters, new_instance_only=new_instance_only))

    def start_async(
        self,
        job: Job | str,
        parameters: Params = None,
        *,
        new_instance_only: bool = False,
        on: Launcher | None = None,
    ) -> JobHandle:
        """Launch now (so launch errors raise here), run on the engine's pool; thread-safe.

        ``on`` sends the execution elsewhere instead (``batchline.remote.CeleryLauncher``): it
        stays STARTING until a worker claims it; the handle follows it in the repository.
        """
        check = getattr(on, "check_repository", None)
        if check is not None:  # before anything is recorded
            check(self.repository.url(), self._job(job).name)
        resolved, execution = self.launch(job, parameters, new_instance_only=new_instance_only)
        if on is None:
            return self._submit(resolved, execution)
        try:
            # Before the send: a worker may claim it at once. Until the deadline, its waiting
            # in the broker is not a dead process (recover and restart leave it alone).
            self.repository.set_claim_deadline(execution.id, claim_deadline(on.claim_timeout))
            on.send(resolved, execution, self.repository)
        except Exception as exc:
            self._unqueued(execution, exc)
            raise

        def again() -> None:
            self.repository.set_claim_deadline(execution.id, claim_deadline(on.claim_timeout))
            on.send(resolved, execution, self.repository)

        follow = self._follow(execution.id, resend=again, claim_timeout=on.claim_timeout)
        return JobHandle(execution.id, follow, self)

    def _check_reach(self, job: Job) -> None:
        """A step whose partitions run elsewhere refuses a repository the workers cannot
        reach (SQLite) now, before an execution is recorded, not when the step starts."""
        for step in iter_steps(job.steps):
            check = getattr(getattr(step, "handler", None), "check_repository", None)
            if check is not None:
                check(self.repository.url(), step.name)

    def _unqueued(self, execution: JobExecution, error: Exception) -> None:
        """The launcher could not send the execution: record it FAILED, so it does not wait
        STARTING for a worker that will never hear of it (a restart queues it again). A
        versioned write: if the message did go out and a worker claimed it, the worker's."""
        execution.set_status(BatchStatus.FAILED)
        execution.exit_status = ExitStatus(
            "FAILED", f"could not be queued: {type(error).__name__}: {error}"
        )
        execution.end_time = utcnow()
        try:
            self.repository.update_job_execution(execution)
        except OptimisticLockingFailure:
            log.info("execution %d was claimed although its send failed", execution.id)

    def submit(self, job: Job | str, execution: JobExecution) -> JobHandle:
        """Run on the engine's pool an execution that ``launch`` created: a trigger
        acknowledges its message between the two, once the execution is recorded."""
        return self._submit(self._job(job), execution)

    def _follow(
        self,
        execution_id: int,
        *,
        resend: Callable[[], None] | None = None,
        claim_timeout: float | None = None,
    ) -> Future[JobExecution]:
        """A future that ends when the repository shows the execution ended; with ``resend``,
        an execution still STARTING ``claim_timeout`` seconds after it was sent is sent again.
        One thread of the engine reads every followed execution's status in one query."""
        future: Future[JobExecution] = Future()
        with self._lock:
            self._followed[execution_id] = _Followed(
                future, resend, claim_timeout, time.monotonic()
            )
            if self._poller is None:
                self._poller = threading.Thread(
                    target=self._poll, name="batchline-follow", daemon=True
                )
                self._poller.start()
        return future

    def run(self, job: Job | str, execution: JobExecution) -> JobExecution:
        """Run in this thread an execution that ``launch`` created (a backfill's threads)."""
        return self._run(self._job(job), execution)

    def _poll(self) -> None:
        while not self._closed.wait(self.follow_interval):
            with self._lock:
                followed = dict(self._followed)
            if not followed:
                continue
            try:
                statuses = self.repository.job_statuses(sorted(followed))
                ended = {i: self.get_execution(i) for i, s in statuses.items() if not s.is_running}
            except Exception as exc:  # the repository is gone: so is every answer
                for execution_id, one in followed.items():
                    self._unfollow(execution_id)
                    one.future.set_exception(exc)
                continue
            for execution_id, one in followed.items():
                execution = ended.get(execution_id)
                if execution is not None or execution_id not in statuses:
                    self._unfollow(execution_id)
                    if execution is not None:
                        one.future.set_result(execution)
                    else:
                        one.future.set_exception(
                            NoSuchExecution(f"no job execution {execution_id}")
                        )
                elif statuses[execution_id] is BatchStatus.STARTING:
                    self._maybe_resend(execution_id, one)

    def _unfollow(self, execution_id: int) -> None:
        with self._lock:
            self._followed.pop(execution_id, None)

    def _maybe_resend(self, execution_id: int, one: _Followed) -> None:
        waited = time.monotonic() - one.sent
        if one.resend is None or one.claim_timeout is None or waited <= one.claim_timeout:
            return
        log.warning("execution %d unclaimed after %.0fs: sending it again", execution_id, waited)
        try:
            one.resend()
        except Exception:  # the broker is away: tried again after claim_timeout
            log.warning("execution %d not sent again", execution_id, exc_info=True)
        one.sent = time.monotonic()

    def run_queued(self, execution_id: int) -> JobExecution | None:
        """Claim a STARTING execution that a launcher queued and run it here; None when it was
        not waiting (claimed elsewhere, or ended). The claim is the run's first write, STARTING
        -> STARTED at the version read: of two workers, the second gets
        OptimisticLockingFailure and runs nothing."""
        execution = self.repository.get_job_execution(execution_id)
        if execution.status is not BatchStatus.STARTING:
            return None
        return self._run(self.registry.get(execution.job_name), execution)

    def start_next_instance(
        self, job: Job | str, parameters: Params = None, *, carry: Iterable[str] = ()
    ) -> JobExecution:
        """Run a new instance with the next ``run.id`` (see batchline.runid): the parameters
        given, plus those named in ``carry`` copied from the job's newest execution."""
        resolved = self._job(job)
        self._check_reach(resolved)
        return self._run(
            resolved, launch_next_instance(self.repository, resolved, parameters, carry)
        )

    def start_next_instance_async(
        self, job: Job | str, parameters: Params = None, *, carry: Iterable[str] = ()
    ) -> JobHandle:
        resolved = self._job(job)
        self._check_reach(resolved)
        return self._submit(
            resolved, launch_next_instance(self.repository, resolved, parameters, carry)
        )

    def restart(
        self, execution_id: int | None = None, *, job_name: str | None = None
    ) -> JobExecution:
        """A new execution of a FAILED or STOPPED execution's instance, resuming where it ended."""
        return self._run(*self._relaunch(execution_id, job_name))

    def restart_async(
        self, execution_id: int | None = None, *, job_name: str | None = None
    ) -> JobHandle:
        return self._submit(*self._relaunch(execution_id, job_name))

    def _relaunch(self, execution_id: int | None, job_name: str | None) -> tuple[Job, JobExecution]:
        if (execution_id is None) == (job_name is None):
            raise ConfigurationError(
                "restart takes an execution id or a job name, not both or neither"
            )
        if execution_id is not None:
            old = self.repository.get_job_execution(execution_id)
            newest = self.find_executions(ExecutionQuery(instance_id=old.instance.id), limit=1)
            if newest.items and newest.items[0].id != old.id:
                # Only the last execution resumes the instance (the page offers no other).
                raise JobRestartRefused(
                    f"job execution {old.id} is not its instance's last: restart execution "
                    f"{newest.items[0].id} instead"
                )
        else:
            assert job_name is not None
            found = self.repository.last_restartable_execution(job_name)
            if found is None:
                raise NoSuchExecution(
                    f"job {job_name!r} has no failed or stopped execution to restart"
                )
            old = found
        job = self.registry.get(old.job_name)
        self._check_reach(job)
        if old.status is BatchStatus.UNKNOWN:
            raise JobRestartRefused(
                f"job execution {old.id} is UNKNOWN; abandon it or recover it before a restart"
            )
        # Every launch is validated, restarts included (Spring): the job may have been
        # registered since with a new required parameter or validator.
        job.validate(old.parameters)
        if old.status.is_running:
            try:
                self._recover_if_dead(old)
            except OptimisticLockingFailure:
                # A racing restart (or recover) marked it first: what counts is what it is now.
                # Ended, the launch below decides (one running execution per instance, in the
                # database); still running, this restart is refused like any live one.
                now = self.repository.get_job_execution(old.id)
                if now.status.is_running:
                    raise JobRestartRefused(
                        f"job execution {old.id} changed while this restart recovered it "
                        f"(now {now.status.value}): another process acts on it"
                    ) from None
        return job, self.repository.create_job_execution(
            job.name, old.parameters, restartable=job.restartable
        )

    def _track(self, job: Job, execution: JobExecution) -> RunControl:
        control = RunControl.for_job(
            self.repository,
            execution.id,
            job.name,
            job.timeout,
            lease=self.lease,
            heartbeat_interval=self.heartbeat_interval,
        )
        with self._lock:
            self._running[execution.id] = control  # heartbeat from launch on, even while queued
        return control

    def _run(
        self, job: Job, execution: JobExecution, control: RunControl | None = None
    ) -> JobExecution:
        control = control or self._track(job, execution)
        try:
            runtime = StepRuntime(
                self.repository,
                self.transaction_manager,
                control,
                step_pool=self._step_pool,
                run_child=self._run_child,
                observers=self._observing,
            )
            with capture(self.log_buffer):
                return run_job(job, execution, runtime)
        finally:
            with self._lock:
                self._running.pop(execution.id, None)
                self._parents.pop(execution.id, None)

    def _run_child(self, job: Job, parameters: JobParameters, parent: RunControl) -> JobExecution:
        """A job step's child: launch (or restart) its instance and run it here, tracked like
        any execution, its run control sharing the parent's stop requests."""
        job.validate(parameters)
        self._check_reach(job)
        execution = self.repository.create_job_execution(
            job.name, parameters, restartable=job.restartable
        )
        control = self._track(job, execution).linked_to(parent)
        with self._lock:
            self._running[execution.id] = control
            self._parents[execution.id] = parent.job_execution_id
        return self._run(job, execution, control)

    def _submit(self, job: Job, execution: JobExecution) -> JobHandle:
        control = self._track(job, execution)
        future = self._pool.submit(lambda: self._run(job, execution, control))
        return JobHandle(execution.id, future, self)

    # --- backfills (batchline.backfill) -------------------------------------------------------

    def backfill(
        self,
        job: Job | str,
        values: str | BackfillRange,
        *,
        step: str | None = None,
        parameters: Params = None,
        concurrency: int = 4,
        on: Launcher | None = None,
        restart_failed: bool = False,
        started_by: str | None = None,
    ) -> BackfillHandle:
        """One instance of ``job`` per value (``"date:date=2026-11-01..2026-11-30"``, or a
        ``BackfillRange``), at most ``concurrency`` at once, here or ``on`` a launcher;
        recorded in the repository, so ``resume_backfill`` runs only what is missing."""
        from batchline.backfill.operations import start_backfill

        return start_backfill(
            self,
            job,
            values,
            step=step,
            parameters=parameters,
            concurrency=concurrency,
            on=on,
            restart_failed=restart_failed,
            started_by=started_by,
        )

    def backfill_plan(
        self,
        job: Job | str,
        values: str | BackfillRange,
        parameters: Params = None,
        restart_failed: bool = False,
        *,
        step: str | None = None,
    ) -> list[tuple[str, str, str]]:
        """What ``backfill`` would do now, value by value: (value, status now, action)."""
        from batchline.backfill.operations import plan

        return plan(
            self, job, values, step=step, parameters=parameters, restart_failed=restart_failed
        )

    def resume_backfill(
        self, backfill_id: int, *, on: Launcher | None = None, wait: bool = False
    ) -> BackfillHandle:
        from batchline.backfill.operations import resume_backfill

        return resume_backfill(self, backfill_id, on=on, wait=wait)

    def stop_backfill(self, backfill_id: int) -> BackfillRecord:
        """Its runner stops the executions it launched and launches nothing more."""
        from batchline.backfill.operations import stop_backfill

        return stop_backfill(self, backfill_id)

    def backfill_state(self, backfill_id: int) -> BackfillState:
        from batchline.backfill.operations import backfill_state

        return backfill_state(self, backfill_id)

    def backfills(
        self, job_name: str | None = None, *, statuses: Sequence[str] = (), limit: int = 50
    ) -> list[BackfillRecord]:
        """Backfills newest first, of one job or all, of some statuses or all."""
        from batchline.backfill.operations import store_of

        return store_of(self).list(job_name, statuses=statuses, limit=limit)

    # --- operating --------------------------------------------------------------------------

    def stop(self, execution_id: int) -> JobExecution:
        """Ask a running execution to stop; its step ends STOPPED at the next chunk boundary.

        An execution running in this engine stops even if the repository is slow to record
        the request (SQLite under a busy writer): the local request needs no database.
        """
        with self._lock:
            control = self._running.get(execution_id)
        if control is not None:
            control.request_stop()
        execution = self.repository.request_stop(execution_id)
        log.info("stop requested for job execution %d", execution_id)
        return execution

    def abandon(self, execution_id: int) -> JobExecution:
        """Mark a FAILED, STOPPED or UNKNOWN execution ABANDONED: its instance never runs again."""
        execution = self.repository.get_job_execution(execution_id)
        if execution.status.is_running:
            raise JobExecutionAlreadyRunning(
                f"job execution {execution_id} is {execution.status.value}; stop it first"
            )
        return self.repository.mark_abandoned(execution_id)

    def recover(
        self,
        execution_id: int | None = None,
        *,
        force: bool = False,
        skipped: Callable[[int, str], None] | None = None,
    ) -> list[JobExecution]:
        """Mark dead executions FAILED so they can be restarted.

        Dead means: not running in this engine and no heartbeat within the lease (or ``force``,
        when an operator knows the process is gone); for a queued execution no worker has
        claimed yet, its claim deadline passed instead. Without an id, every dead execution:
        one that changed after it was listed (it ended, renewed its lease, a worker claimed
        it) is left as it is and reported to ``skipped(id, why)`` (logged), and the rest go on.
        """
        if execution_id is not None:
            execution = self.repository.get_job_execution(execution_id)
            if execution.status is BatchStatus.UNKNOWN:
                return [self.repository.mark_failed(execution_id, "recovered from UNKNOWN")]
            if not execution.status.is_running:
                raise JobExecutionNotRunning(
                    f"job execution {execution_id} is {execution.status.value}, not running; "
                    "nothing to recover"
                )
            return [self._recover_if_dead(execution, force=force)]
        cutoff = utcnow() - dt.timedelta(seconds=self.lease)
        recovered = []
        for execution in self.repository.stale_executions(cutoff):
            try:
                recovered.append(self._recover_if_dead(execution))
            except (IllegalTransition, OptimisticLockingFailure, JobExecutionAlreadyRunning) as e:
                why = f"changed while being recovered, left as it is: {e}"
                log.warning("job execution %d %s", execution.id, why)
                if skipped is not None:
                    skipped(execution.id, why)
        return recovered

    def _recover_if_dead(self, execution: JobExecution, *, force: bool = False) -> JobExecution:
        with self._lock:
            local = execution.id in self._running
        if local:
            raise JobExecutionAlreadyRunning(
                f"job execution {execution.id} is running in this process"
            )
        now = utcnow()
        deadline = self.repository.claim_deadline(execution.id)
        if execution.status is BatchStatus.STARTING and deadline is not None:
            return self._recover_unclaimed(execution, deadline, now, force=force)
        beat = self.repository.heartbeat_of(execution.id)
        expires = beat + dt.timedelta(seconds=self.lease) if beat else None
        if not force and expires is not None and expires > now:
            raise JobExecutionAlreadyRunning(
                f"job execution {execution.id} is {execution.status.value} and its heartbeat "
                f"lease runs until {expires:%Y-%m-%d %H:%M:%S} UTC; it may still be alive "
                "(recover with force if you know its process is gone)"
            )
        message = (
            f"recovered: its process stopped sending heartbeats (last {beat:%Y-%m-%d %H:%M:%S} "
            f"UTC, lease {self.lease:g}s)"
            if beat and not force
            else "recovered by an operator: its process is gone"
        )
        log.warning("job execution %d: %s", execution.id, message)
        stale_before = None if force else now - dt.timedelta(seconds=self.lease)
        return self.repository.mark_failed(execution.id, message, stale_before=stale_before)

    def _recover_unclaimed(
        self, execution: JobExecution, deadline: dt.datetime, now: dt.datetime, *, force: bool
    ) -> JobExecution:
        """A queued execution no worker claimed: waiting is no death until its deadline."""
        if not force and deadline >= now:
            until = (
                "with no deadline"
                if deadline == _NO_CLAIM_DEADLINE
                else f"until {deadline:%Y-%m-%d %H:%M:%S} UTC"
            )
            raise JobExecutionAlreadyRunning(
                f"job execution {execution.id} is queued and waits for a worker's claim "
                f"{until} (recover with force if you know its message is lost)"
            )
        message = (
            "recovered by an operator: its queued message is lost"
            if force and deadline >= now
            else f"recovered: queued, but no worker claimed it by {deadline:%Y-%m-%d %H:%M:%S} "
            "UTC (its message was lost, or no worker serves its queue)"
        )
        log.warning("job execution %d: %s", execution.id, message)
        return self.repository.mark_failed(execution.id, message, unclaimed=not force)

    def _beat(self) -> None:
        while not self._closed.wait(self.heartbeat_interval):
            with self._lock:
                # An execution whose lease this process saw run out is renewed no more: a
                # thawed process must not look alive to the restart that replaces it.
                running = {
                    i: c for i, c in self._running.items() if c.lease is None or c.lease.held()
                }
            if not running:
                continue
            sent = time.monotonic()
            try:
                held = set(self.repository.heartbeat(sorted(running)))
            except Exception:  # a missed beat is retried next interval; the lease allows it
                log.warning("heartbeat failed for executions %s", sorted(running), exc_info=True)
                continue
            self._pass_stops_to_children(running)
            for execution_id, control in running.items():
                if control.lease is not None:
                    control.lease.answer(sent, execution_id in held, execution_id)
                if execution_id not in held:
                    control.request_stop()

    def _pass_stops_to_children(self, running: dict[int, RunControl]) -> None:
        """A stop of a parent requested from another process reaches its child job here."""
        with self._lock:
            parents = dict(self._parents)
        for child, parent in parents.items():
            control = running.get(child)
            if control is None or control.stopping:
                continue
            try:
                if self.repository.stop_requested(parent):
                    control.request_stop()
            except Exception:  # asked again at the next beat
                log.warning("could not ask whether job execution %d must stop", parent)

    # --- reading ----------------------------------------------------------------------------

    def get_execution(self, execution_id: int) -> JobExecution:
        execution = self.repository.get_job_execution(execution_id)
        execution.step_executions = self.repository.step_executions(execution_id)
        return execution

    def list_executions(
        self, job_name: str | None = None, *, limit: int = 50
    ) -> list[JobExecution]:
        return self.repository.list_job_executions(job_name, limit=limit)

    def step_executions(self, execution_id: int) -> list[StepExecution]:
        return self.repository.step_executions(execution_id)

    def skipped_items(
        self, execution_id: int, *, step_name: str | None = None, limit: int = 1000
    ) -> list[SkippedItem]:
        """What the execution's steps skipped, in the order they skipped it."""
        return self.repository.skipped_items(execution_id, step_name=step_name, limit=limit)

    def count_skipped(self, execution_id: int) -> dict[str, int]:
        """The execution's skips by phase (read, process, write)."""
        return self.repository.count_skipped(execution_id)
