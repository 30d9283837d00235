"""What a worker does with a partition task: claim the step execution, run it, prove it lives.

The task carries names and ids only. The claim is the step execution's first write (STARTING ->
STARTED at the version the manager left): a second delivery, or a second worker, finds it
claimed and does nothing. While the partition runs, a thread renews the worker's lease on the
row (``step_heartbeat``) every third of the lease; once the row has ended elsewhere (the manager
failed it, a recovery failed the whole job) the lease is lost and the worker writes nothing
more: every chunk commit is also refused by the row's version. The same thread watches the
job's own heartbeat: when its manager has stopped proving it lives, the partition stops at its
next chunk boundary, for a recovery and restart to resume it.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Any

from batchline.errors import ConfigurationError, OptimisticLockingFailure
from batchline.flow import find_step
from batchline.logging import log
from batchline.model import JobExecution, utcnow
from batchline.observers import Observers, WorkerSpec, from_specs
from batchline.repository.logs import kept_logs
from batchline.repository.samples import DEFAULT_SAMPLE_INTERVAL
from batchline.repository.sql import SqlJobRepository
from batchline.status import BatchStatus
from batchline.steps.base import StepRuntime
from batchline.steps.control import Lease, RunControl
from batchline.steps.partition import PartitionStep, run_prepared_partition


def run_partition(
    task: Any,
    job_name: str,
    step_name: str,
    job_execution_id: int,
    step_execution_id: int,
    repository_url: str,
    lease: float,
    rerun_completed: bool,
    manager_lease: float | None = None,
    observers: list[list[Any]] | None = None,
    sample_interval: float | None = DEFAULT_SAMPLE_INTERVAL,
) -> str:
    """The body of the ``batchline.run_partition`` task; returns what happened, for logs.
    Arguments a message from an older manager lacks take their defaults."""
    registry = task.app.batchline_registry
    step = find_step(registry.get(job_name).steps, step_name)
    if not isinstance(step, PartitionStep):
        raise ConfigurationError(f"job {job_name!r} has no partitioned step {step_name!r}")
    repository = SqlJobRepository(
        repository_url, upgrade=False, sample_interval=_interval(sample_interval)
    )
    try:
        execution = repository.get_job_execution(job_execution_id)
        se = repository.get_step_execution(step_execution_id)
        if se.status is not BatchStatus.STARTING:
            if se.status.is_running:
                log.info("partition %s is %s: claimed elsewhere", se.step_name, se.status.value)
            else:  # said as it is: ended by its manager, a recovery, or an earlier delivery
                log.info(
                    "partition %s has already ended %s (%s): not run",
                    se.step_name,
                    se.status.value,
                    se.exit_status.description or se.exit_status.code,
                )
            return f"skipped: {se.status.value}"
        se.job_execution = execution
        if _stale(repository, execution.id, manager_lease):
            log.warning("partition %s not claimed: its job's manager is gone", se.step_name)
            return "skipped: manager gone"
        clock = time.monotonic
        held = Lease(lease, clock(), clock, lease / 3)
        control = RunControl(
            repository, execution.id, execution.job_name, lease=held, chunk_beats=False
        )
        runtime = StepRuntime(
            repository,
            repository.transaction_manager(),
            control,
            observers=_observers(observers or []),
        )
        beating = _Heartbeat(repository, se.id, held, control, manager_lease)
        try:
            with kept_logs(repository.engine, execution.job_name, execution.id):
                done = run_prepared_partition(step, se, runtime, rerun_completed=rerun_completed)
        except OptimisticLockingFailure:
            log.info("partition %s was claimed by another worker", se.step_name)
            return "skipped: claimed by another worker"
        finally:
            beating.stop()
        return done.status.value
    finally:
        repository.dispose()


# A message names the observers to build: only batchline's own, never any callable a message
# names (the broker is not trusted to choose code to run).
_OBSERVER_MODULES = "batchline.observability."


def _observers(specs: list[list[Any]]) -> Observers | None:
    allowed: list[WorkerSpec] = []
    for spec in specs:
        if (
            isinstance(spec, list)
            and len(spec) == 2
            and isinstance(spec[0], str)
            and spec[0].startswith(_OBSERVER_MODULES)
            and isinstance(spec[1], dict)
        ):
            allowed.append((spec[0], spec[1]))
        else:
            log.warning("observer %r in a partition's message refused", spec)
    return from_specs(allowed) if allowed else None


class _Heartbeat:
    """Renews the worker's lease on its step execution until stopped."""

    def __init__(
        self,
        repository: SqlJobRepository,
        step_id: int,
        lease: Lease,
        control: RunControl,
        manager_lease: float | None,
    ) -> None:
        self._manager_lease = manager_lease
        self._repository = repository
        self._step_id = step_id
        self._lease = lease
        self._control = control
        self._done = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="batchline-step-heartbeat", daemon=True
        )
        self._thread.start()

    def _run(self) -> None:
        while not self._done.wait(self._lease.interval):
            sent = time.monotonic()
            try:
                held = self._repository.step_heartbeat(self._step_id)
            except Exception:  # retried next interval; the lease allows a missed beat
                log.warning("partition heartbeat failed", exc_info=True)
                continue
            self._lease.answer(sent, held, self._control.job_execution_id)
            if not held:
                self._control.request_stop()
                return
            if self._manager_gone():
                log.warning("the job's manager stopped proving it lives: stopping the partition")
                self._control.request_stop()
                return

    def _manager_gone(self) -> bool:
        """The job's own heartbeat (its manager's) is older than the lease: stop at the next
        chunk, so that a recovery and restart resume from this partition's last commit."""
        return _stale(self._repository, self._control.job_execution_id, self._manager_lease)

    def stop(self) -> None:
        self._done.set()
        self._thread.join(timeout=5)


def _stale(repository: SqlJobRepository, job_execution_id: int, lease: float | None) -> bool:
    if lease is None:  # the manager keeps no lease: nothing to judge it by
        return False
    beat = repository.heartbeat_of(job_execution_id)
    return beat is not None and utcnow() - beat > dt.timedelta(seconds=lease)


def run_job(
    task: Any,
    execution_id: int,
    repository_url: str,
    lease: float,
    heartbeat_interval: float,
    sample_interval: float | None = DEFAULT_SAMPLE_INTERVAL,
) -> str:
    """The body of the ``batchline.run_job`` task: claim a queued execution and run it here
    (with the launching engine's sample interval)."""
    from batchline.engine import Engine

    repository = SqlJobRepository(
        repository_url, upgrade=False, sample_interval=_interval(sample_interval)
    )
    with Engine(
        repository,
        registry=task.app.batchline_registry,
        lease=lease,
        heartbeat_interval=heartbeat_interval,
    ) as engine:
        try:
            done = engine.run_queued(execution_id)
        except OptimisticLockingFailure:
            log.info("job execution %d was claimed by another worker", execution_id)
            return "skipped: claimed by another worker"
        if done is None:
            return _not_waiting(engine.get_execution(execution_id))
    return done.status.value


def _not_waiting(execution: JobExecution) -> str:
    """Why a queued execution's message finds it no longer waiting, said as it is."""
    status = execution.status
    if status.is_running:
        log.info("job execution %d is %s: claimed elsewhere", execution.id, status.value)
        return f"skipped: {status.value}, claimed elsewhere"
    log.warning(
        "job execution %d has already ended %s (%s): not run",
        execution.id,
        status.value,
        execution.exit_status.description or execution.exit_status.code,
    )
    return f"skipped: {status.value}"


def _interval(value: Any) -> float | None:
    """A sample interval from a message: seconds >= 0, or None (no samples); anything else the
    broker carried is not trusted and gives the default."""
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value < 1e9:
        return float(value)
    log.warning("sample interval %r in a message refused: using the default", value)
    return DEFAULT_SAMPLE_INTERVAL
