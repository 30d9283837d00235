"""Running a backfill: one instance per value, at most ``concurrency`` at once, the repository's
launch rules deciding what may run.

A value is launched first with ``new_instance_only`` (as the triggers do): the instance's unique
key decides a race between two backfills, and the loser learns the instance exists. It then
reads how the instance stands: completed (skipped), running elsewhere (watched until it ends),
failed or stopped (restarted only when asked), or running with a dead process behind it
(recovered, then restarted: it was interrupted, not failed; so is one found FAILED by a
recovery, since a runner killed between the two leaves it so). Every launch goes through
``create_job_execution``, whose unique constraints admit one running execution per instance,
so two runners over overlapping ranges never run an instance twice.

The runner renews its claim on the backfill (its heartbeat) and reads the stop request there:
on STOPPING it stops the executions it launched (at their chunk boundary) and launches nothing
more. Killed, it leaves a record whose heartbeat goes stale; a resume claims it after the lease
and runs what is missing.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import uuid
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from batchline.backfill.grid import BackfillState, instance_parameters, read_state
from batchline.backfill.store import (
    COMPLETED,
    FAILED,
    STOPPED,
    STOPPING,
    BackfillRecord,
    BackfillStore,
)
from batchline.errors import (
    JobExecutionAlreadyRunning,
    JobExecutionNotRunning,
    JobInstanceAlreadyComplete,
    JobInstanceAlreadyExists,
    LaunchRefused,
    OptimisticLockingFailure,
)
from batchline.logging import log
from batchline.model import JobExecution, utcnow
from batchline.parameters import JobParameters
from batchline.status import BatchStatus

if TYPE_CHECKING:
    from batchline.backfill.ports import BackfillEngine
    from batchline.job import Job
    from batchline.launching import Launcher

POLL = 0.5  # seconds between two looks at executions running elsewhere
CLAIM_TRIES = 3  # leases waited out before a resume gives up on a live rival


def owner_name() -> str:
    """This runner: two runners in one process are two owners."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"[:200]


@dataclass
class _Running:
    execution_id: int
    mine: bool  # launched by this runner (stopped with it), or another's being watched
    future: Future[JobExecution] | None = None
    stop_sent: bool = False


@dataclass
class _Progress:
    pending: deque[int] = field(default_factory=deque)
    running: dict[int, _Running] = field(default_factory=dict)
    launched: int = 0
    outcomes: dict[int, BatchStatus] = field(default_factory=dict)


class BackfillRunner:
    """Runs one claimed backfill to its end (or its stop) in the calling thread."""

    def __init__(
        self,
        engine: BackfillEngine,
        store: BackfillStore,
        record: BackfillRecord,
        job: Job,
        *,
        launcher: Launcher | None = None,
        restart_stopped: bool = False,
        poll: float = POLL,
    ) -> None:
        self.engine = engine
        self.store = store
        self.record = record
        self.job = job
        self.launcher = launcher
        self.restart_stopped = restart_stopped
        self.poll = poll
        self.owner = owner_name()
        self.values = record.values()
        self.params = [
            instance_parameters(record.parameters, self.values, v) for v in self.values.values
        ]
        self._wake = threading.Event()
        self._stopping = False
        self._lost = False
        self._pool: ThreadPoolExecutor | None = None

    # --- the loop ---------------------------------------------------------------------------

    def run(self) -> BackfillState:
        """Run the claimed backfill (``claim`` first) to its end or its stop."""
        progress = _Progress(pending=deque(range(len(self.params))))
        if self.launcher is None:
            self._pool = ThreadPoolExecutor(
                self.record.concurrency, thread_name_prefix=f"batchline-backfill-{self.record.id}"
            )
        try:
            self._loop(progress)
        except BaseException:
            # Launching nothing more; what runs here ends on its own. The record says FAILED
            # (a resume goes on), unless the repository itself is what failed.
            with contextlib.suppress(Exception):
                self.store.finish(self.record.id, self.owner, FAILED)
            raise
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
        if not self._lost:
            final = STOPPED if self._stopping else self._outcome(progress)
            self.store.finish(self.record.id, self.owner, final)
        return read_state(self.store, self.store.get(self.record.id), self.engine.lease)

    def claim(self, *, wait: bool = False) -> None:
        """Claim the record (BackfillRunning while another runner's lease holds); ``wait``
        waits out a rival's lease first (a runner killed a moment ago), a few times."""
        for _ in range(CLAIM_TRIES if wait else 0):
            try:
                self.record = self.store.claim(self.record.id, self.owner, self.engine.lease)
                return
            except LaunchRefused:
                current = self.store.get(self.record.id)
                if current.heartbeat is None:
                    raise
                expires = current.heartbeat.timestamp() + self.engine.lease
                pause = expires - utcnow().timestamp() + 0.05
                log.info(
                    "backfill %d: waiting %.1fs for its last runner's lease", current.id, pause
                )
                time.sleep(max(pause, 0.05))
        self.record = self.store.claim(self.record.id, self.owner, self.engine.lease)

    def _loop(self, progress: _Progress) -> None:
        beat_at = 0.0
        while True:
            now = time.monotonic()
            if now >= beat_at:
                self._beat(progress)
                beat_at = now + self.poll
            while (
                not self._stopping
                and not self._lost
                and progress.pending
                and self._mine(progress) < self.record.concurrency
            ):
                self._start(progress.pending.popleft(), progress)
            self._collect(progress)
            if self._stopping or self._lost:
                if self._mine(progress) == 0:
                    return  # others' executions are theirs to finish
            elif not progress.running and not progress.pending:
                return
            self._wake.wait(self.poll)
            self._wake.clear()

    def _mine(self, progress: _Progress) -> int:
        return sum(1 for r in progress.running.values() if r.mine)

    def _beat(self, progress: _Progress) -> None:
        try:
            status = self.store.beat(self.record.id, self.owner)
        except Exception:  # a missed beat is renewed at the next; the lease allows a few
            log.warning("backfill %d: heartbeat failed", self.record.id, exc_info=True)
            return
        if status is None and not self._lost:
            log.warning("backfill %d was taken over by another runner", self.record.id)
            self._lost = True
        if status == STOPPING or self._lost:
            self._stop_mine(progress)

    def _stop_mine(self, progress: _Progress) -> None:
        if not self._lost:
            self._stopping = True
        for running in progress.running.values():
            if running.mine and not running.stop_sent:
                running.stop_sent = True
                with contextlib.suppress(JobExecutionNotRunning):  # it ended meanwhile
                    self.engine.stop(running.execution_id)

    # --- one value ----------------------------------------------------------------------------

    def _start(self, index: int, progress: _Progress) -> None:
        params = self.params[index]
        try:
            self._launch(index, params, progress, new_instance_only=True)
            return
        except (JobInstanceAlreadyExists, JobExecutionAlreadyRunning):
            pass  # it ran before, or a rival launched it a moment ago: see how it stands
        self._adopt(index, params, progress)

    def _adopt(self, index: int, params: JobParameters, progress: _Progress) -> None:
        """The instance ran before: skip it, watch it, recover it or restart it."""
        state = self.store.instances(self.job.name, [params.key]).get(params.key)
        status = state.status if state is not None else None
        if state is not None and state.execution_id is not None and status is not None:
            if status.is_running:
                if not self._recovered(state.execution_id, status):
                    progress.running[index] = _Running(state.execution_id, mine=False)
                    return
            elif not (state.interrupted or self._restarts(status)):
                progress.outcomes[index] = status  # completed, abandoned, unknown: left alone
                return
        try:
            self._launch(index, params, progress, new_instance_only=False)
        except JobExecutionAlreadyRunning:
            progress.pending.appendleft(index)  # launched by a rival a moment ago: look again
        except JobInstanceAlreadyComplete:
            progress.outcomes[index] = BatchStatus.COMPLETED
        except LaunchRefused as err:
            log.warning("backfill %d: %s", self.record.id, err)
            progress.outcomes[index] = BatchStatus.FAILED

    def _restarts(self, status: BatchStatus) -> bool:
        if status is BatchStatus.FAILED:
            return self.record.restart_failed
        if status is BatchStatus.STOPPED:
            return self.record.restart_failed or self.restart_stopped
        return False

    def _recovered(self, execution_id: int, status: BatchStatus) -> bool:
        """A running execution whose process is gone (no heartbeat within the lease) is marked
        FAILED so it can be restarted; False while it is alive (or a remote one still queued)."""
        try:
            self.engine.recover(execution_id)
        except JobExecutionAlreadyRunning:
            return False
        except (JobExecutionNotRunning, OptimisticLockingFailure):
            pass  # it ended, or another runner recovered it: the launch decides
        log.warning("backfill %d: execution %d was recovered", self.record.id, execution_id)
        return True

    def _launch(
        self, index: int, params: JobParameters, progress: _Progress, *, new_instance_only: bool
    ) -> None:
        if self.launcher is None:
            job, execution = self.engine.launch(
                self.job, params, new_instance_only=new_instance_only
            )
            assert self._pool is not None
            future = self._pool.submit(self.engine.run, job, execution)
            future.add_done_callback(lambda _: self._wake.set())
            progress.running[index] = _Running(execution.id, mine=True, future=future)
        else:
            handle = self.engine.start_async(
                self.job, params, new_instance_only=new_instance_only, on=self.launcher
            )
            handle.future.add_done_callback(lambda _: self._wake.set())
            progress.running[index] = _Running(handle.execution_id, mine=True)
        progress.launched += 1
        if self._stopping:
            self._stop_mine(progress)

    def _collect(self, progress: _Progress) -> None:
        for index, running in list(progress.running.items()):
            status = self._status(running)
            if status is None:
                continue
            if status.is_running:
                # A queued execution of ours waits for a worker (its handle sends it again);
                # anything else silent past the lease lost its process: take it over.
                queued = running.mine and status is BatchStatus.STARTING
                if (
                    running.future is None
                    and not queued
                    and self._recovered(running.execution_id, status)
                ):
                    del progress.running[index]
                    progress.pending.appendleft(index)
                continue
            del progress.running[index]
            progress.outcomes[index] = status

    def _status(self, running: _Running) -> BatchStatus | None:
        if running.future is not None:
            if not running.future.done():
                return None
            error = running.future.exception()
            if error is None:
                return running.future.result().status
            log.error(
                "backfill %d: execution %d raised %s", self.record.id, running.execution_id, error
            )
        return self.engine.repository.get_job_execution(running.execution_id).status

    def _outcome(self, progress: _Progress) -> str:
        statuses = set(progress.outcomes.values())
        if len(progress.outcomes) == len(self.params) and statuses <= {BatchStatus.COMPLETED}:
            return COMPLETED
        return FAILED
