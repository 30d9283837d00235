"""The manager's side of partitions on Celery workers.

``handle`` prepares each partition's step execution in the repository (STARTING, its first
context stored, or skipped when it completed in an earlier run), sends one task per partition
carrying ids only, then watches the repository, never the broker, until every partition ended:

- a partition claimed and running whose worker stopped renewing its lease (``last_updated``
  older than ``lease``) is failed with ``WorkerLost``: the update bumps its version, so the
  worker, should it wake, commits nothing more;
- a partition nobody claimed within ``claim_timeout`` (its message lost with a worker that had
  taken it) is offered again; the claim makes a second delivery harmless;
- a send the broker refused (restarting, connection cut) leaves the partition STARTING and is
  tried again a second later: a broker outage delays the step, it does not fail it.

With ``on_failure="stop"`` a failed partition cancels the partitions no worker has claimed yet
(they fail as not started, and a late delivery finds them ended); the ones already running on
other machines run to their end. The step fails either way, and a restart runs what is left.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Mapping
from typing import Any, Literal

from batchline.errors import ConfigurationError, WorkerLost
from batchline.logging import log
from batchline.model import JobExecution, StepExecution, utcnow
from batchline.remote import settings
from batchline.remote.app import DEFAULT_QUEUE, PUBLISH_RETRY, TASK, make_app
from batchline.status import BatchStatus
from batchline.steps.base import StepRuntime
from batchline.steps.partition import PartitionRequest, PartitionStep, prepare_partition

_RESEND = 1.0
_NOT_STARTED = "not started: another partition failed (a restart runs it)"


class CeleryPartitionHandler:
    """Runs a step's partitions on Celery workers (``batchline worker``) over ``broker``.

    ``lease``: seconds after which a silent worker's partition fails (the worker renews it every
    third of that), or with ``on_worker_lost="retry"`` is offered to another worker, which
    resumes it from its last commit; ``claim_timeout``: seconds after which an unclaimed
    partition is offered again; ``poll_interval``: how often the repository is read.
    """

    def __init__(
        self,
        broker: str,
        *,
        queue: str = DEFAULT_QUEUE,
        lease: float | None = None,
        claim_timeout: float | None = None,
        poll_interval: float = 0.5,
        on_worker_lost: Literal["fail", "retry"] | None = None,
    ) -> None:
        if poll_interval <= 0:
            raise ConfigurationError("celery partition handler: times must be > 0 seconds")
        self.broker = broker
        self.queue = queue
        # Unset ones come from the environment (``batchline.remote.settings``) when a step
        # runs, so that the command line's options reach handlers built in job modules.
        self._lease = lease
        self._claim_timeout = claim_timeout
        self._on_worker_lost = on_worker_lost
        self._check()
        self.poll_interval = poll_interval
        self._app: Any = None
        self._manager_lease: float | None = None
        # The manager's progress-sample interval, which its partitions keep on the workers.
        self._sample_interval: float | None = None
        # Each running execution's observer specs, by job execution id (one handler object
        # serves every execution of its job).
        self._observers: dict[int, list[list[Any]]] = {}

    def _check(self) -> None:
        try:
            self.lease, self.claim_timeout, self.on_worker_lost  # noqa: B018 - validates
        except ConfigurationError as err:
            raise ConfigurationError(f"celery partition handler: {err}") from None

    @property
    def lease(self) -> float:
        return settings.seconds(self._lease, settings.LEASE_ENV, settings.DEFAULT_LEASE)

    @property
    def claim_timeout(self) -> float:
        return settings.seconds(
            self._claim_timeout,
            settings.CLAIM_TIMEOUT_ENV,
            settings.DEFAULT_PARTITION_CLAIM_TIMEOUT,
        )

    @property
    def on_worker_lost(self) -> str:
        return settings.on_worker_lost(self._on_worker_lost)

    def check_repository(self, url: str | None, step_name: str) -> None:
        """Workers elsewhere must reach the repository: refused before anything is recorded."""
        if url is None or url.startswith("sqlite"):
            raise ConfigurationError(
                f"step {step_name!r}: partitions on remote workers need a repository they can "
                "reach (PostgreSQL or MariaDB), not SQLite"
            )

    def __repr__(self) -> str:
        return f"CeleryPartitionHandler(queue={self.queue!r}, lease={self.lease:g})"

    def handle(
        self,
        step: PartitionStep,
        manager: StepExecution,
        request: PartitionRequest,
        runtime: StepRuntime,
    ) -> Mapping[str, BaseException]:
        repo = runtime.repository
        url = repo.url()
        self.check_repository(url, step.name)
        assert url is not None
        self._check()
        execution = manager.job_execution
        assert execution is not None
        # Workers judge the manager by the job's heartbeat, against the manager's own lease.
        lease = runtime.control.lease
        self._manager_lease = lease.seconds if lease is not None else None
        self._sample_interval = runtime.repository.sample_interval()
        # What workers build their observers from (a trace context among the arguments).
        specs = runtime.observers.worker_specs(manager) if runtime.observers else ()
        self._observers[request.job_execution_id] = [[ref, dict(kw)] for ref, kw in specs]
        try:
            return self._handle(step, execution, request, runtime, url)
        finally:
            self._observers.pop(request.job_execution_id, None)

    def _handle(
        self,
        step: PartitionStep,
        execution: JobExecution,
        request: PartitionRequest,
        runtime: StepRuntime,
        url: str,
    ) -> Mapping[str, BaseException]:
        repo = runtime.repository
        sent: dict[int, tuple[str, float]] = {}  # step execution id -> (name, when sent)
        for partition in request.partitions:
            se = prepare_partition(
                step, partition, execution, repo, rerun_completed=request.rerun_completed
            )
            if se is not None:
                sent[se.id] = (se.step_name, self._offer(request, se.id, se.step_name, url))
        log.info("step %s: %d partitions sent to queue %r", step.name, len(sent), self.queue)
        return self._watch(request, sent, runtime, url)

    def _watch(
        self,
        request: PartitionRequest,
        sent: dict[int, tuple[str, float]],
        runtime: StepRuntime,
        url: str,
    ) -> dict[str, BaseException]:
        repo = runtime.repository
        errors: dict[str, BaseException] = {}
        lease = dt.timedelta(seconds=self.lease)
        # Per partition: how long it may wait unclaimed (doubled each time it waited on
        # without the broker or the workers telling whether it was lost).
        patience: dict[int, float] = {}
        while True:
            rows = {s.id: s for s in repo.step_executions(request.job_execution_id) if s.id in sent}
            running = [s for s in rows.values() if s.status.is_running]
            if not running:
                return errors
            failed = errors or any(s.status is BatchStatus.FAILED for s in rows.values())
            now = utcnow()
            overdue = [
                se.id
                for se in running
                if se.status is BatchStatus.STARTING
                and time.monotonic() - sent[se.id][1] > patience.get(se.id, self.claim_timeout)
            ]
            waiting = self._waiting(overdue) if overdue else set()
            for se in running:
                name = sent[se.id][0]
                if se.status is BatchStatus.STARTING and failed and request.stop_on_failure:
                    # Nobody runs it yet: it never will in this execution (a restart will).
                    # At the version read: a worker that claimed it meanwhile keeps it.
                    repo.fail_step_execution(se.id, _NOT_STARTED, version=se.version)
                elif se.id in overdue:
                    if waiting is None:  # nobody could tell: wait twice as long next time
                        patience[se.id] = 2 * patience.get(se.id, self.claim_timeout)
                    if waiting is not None and se.id in waiting:
                        sent[se.id] = (name, time.monotonic())  # queued behind busy workers
                        continue
                    log.warning("partition %s unclaimed: offering it again", name)
                    sent[se.id] = (name, self._offer(request, se.id, name, url))
                elif se.status is BatchStatus.STARTING:
                    continue
                elif se.last_updated is not None and now - se.last_updated > lease:
                    error = WorkerLost(
                        f"partition {name!r} lost its worker: no sign of life since "
                        f"{se.last_updated:%Y-%m-%d %H:%M:%S} UTC (lease {self.lease:g}s)"
                    )
                    if self.on_worker_lost == "retry":
                        if repo.reoffer_step_execution(se.id, str(error)):
                            log.warning("%s; offering it again", error)
                            sent[se.id] = (name, self._offer(request, se.id, name, url))
                    elif repo.fail_step_execution(se.id, str(error)):
                        errors[name] = error
            time.sleep(self.poll_interval)

    def _waiting(self, overdue: list[int]) -> set[int] | None:
        """Of partitions unclaimed past ``claim_timeout``, those known to wait rather than be
        lost: all of them while the queue still holds messages (they are behind), else those
        a worker holds (prefetched or running). None when neither the broker nor any worker
        answered: then a partition is sent again, with twice the patience the next time."""
        try:
            if self._app is None:
                self._app = make_app(self.broker, queue=self.queue)
            with self._app.connection_for_write() as conn:
                try:
                    declared = conn.default_channel.queue_declare(queue=self.queue, passive=True)
                except conn.channel_errors:  # Redis: an empty queue is no key, "not found"
                    declared = None
                if declared is not None and declared.message_count:
                    return set(overdue)
            replies = self._app.control.inspect(timeout=1.0)
            held: set[int] = set()
            answered = False
            for found in (replies.reserved(), replies.active()):
                for tasks in (found or {}).values():
                    answered = True
                    held.update(_partition_id(task) for task in tasks)
        except Exception as exc:  # the broker is away: nobody can tell
            log.info("cannot tell waiting partitions from lost ones: %r", exc)
            return None
        return held if answered else None

    def _offer(
        self, request: PartitionRequest, step_execution_id: int, name: str, url: str
    ) -> float:
        """Send a partition's task; returns the time it counts as sent. A broker that cannot
        be reached (restarting, a cut connection) does not fail the step: the partition stays
        STARTING in the repository and is sent again shortly, as an unclaimed one would be."""
        try:
            self._send(request, step_execution_id, url)
        except Exception as exc:  # kombu's OperationalError, socket errors: all mean "not sent"
            again = min(self.claim_timeout, _RESEND)
            log.warning(
                "partition %s not sent, the broker is unreachable (%s: %s): trying again in %gs",
                name,
                type(exc).__name__,
                exc,
                again,
            )
            return time.monotonic() - self.claim_timeout + again
        return time.monotonic()

    def _send(self, request: PartitionRequest, step_execution_id: int, url: str) -> None:
        if self._app is None:
            self._app = make_app(self.broker, queue=self.queue)
        self._app.send_task(
            TASK,
            args=[
                request.job_name,
                request.step_name,
                request.job_execution_id,
                step_execution_id,
                url,
                self.lease,
                request.rerun_completed,
                self._manager_lease,
                self._observers.get(request.job_execution_id, []),
                self._sample_interval,
            ],
            queue=self.queue,
            retry_policy=PUBLISH_RETRY,
        )


def _partition_id(task: Any) -> int:
    """The step execution id a worker's task (from ``inspect``) carries, or -1."""
    if not isinstance(task, dict):
        return -1
    args = task.get("args")
    if task.get("name") == TASK and isinstance(args, list | tuple) and len(args) > 3:
        value = args[3]
        return value if isinstance(value, int) else -1
    return -1
