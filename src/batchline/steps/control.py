"""Run control: whether a running job must stop now, and whether it has run out of time.

One object per job execution answers two questions, asked at the only two places where a step
may end early without losing work: before a step starts, and at a chunk boundary. What it knows:

- a stop request: recorded in the repository by ``Engine.stop`` (any process), seen before a step
  by a query and at a chunk boundary through the chunk's own progress UPDATE (which the
  repository refuses while the job is STOPPING) or, on SQLite, a marker file the stopper writes
  without waiting for the write lock; or a local request (a signal in this process), which needs
  no database round trip at all;
- the abort of a partition group: one failed partition makes its siblings stop;
- deadlines: the job's timeout, and a step's own (a step asks for its deadline when it starts).

A partition group shares the job's control but adds its own abort signal (``for_group``).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from batchline.errors import LeaseLost, StepTimeout
from batchline.repository.base import JobRepository

STOP_REQUESTED = "a stop was requested"
SIBLING_FAILED = "told to stop: another partition failed, or the manager is gone"


class AbortSignal(Protocol):
    """Set when one partition failed and the others must stop (a thread or process Event)."""

    def is_set(self) -> bool: ...

    def set(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Deadline:
    """A ``time.monotonic()`` instant and the limit it came from, for messages."""

    at: float
    limit: float
    what: str  # "job 'x'" or "job 'x' step 'y'"

    @classmethod
    def after(cls, seconds: float, what: str, clock: Callable[[], float]) -> Deadline:
        return cls(clock() + seconds, seconds, what)


_RAN_OUT = "its heartbeat lease ran out"


class Lease:
    """Whether this process may still write for its execution: its last proof of life.

    ``renewed`` is called with the ``time.monotonic()`` instant at which a heartbeat that the
    repository accepted was sent; ``lose`` when the repository says the execution is no longer
    running (recovered or abandoned elsewhere). Another process declares this one dead once its
    heartbeat is ``seconds`` old, so past that this one must assume it has been replaced.
    """

    def __init__(
        self,
        seconds: float,
        renewed: float,
        clock: Callable[[], float],
        interval: float | None = None,
    ) -> None:
        self.seconds = seconds
        # How often to prove life; a chunk commit carries the heartbeat once this has passed,
        # often enough to keep the lease even when the engine's own beats are starved.
        self.interval = min(interval, seconds / 3) if interval is not None else seconds / 6
        self._renewed = renewed
        self._clock = clock
        self._lost: str | None = None

    def renewed(self, at: float) -> None:
        if self._lost is None:
            self._renewed = max(self._renewed, at)

    def due(self) -> bool:
        """Whether a heartbeat is due: a chunk about to commit carries one then (never once
        the lease is lost)."""
        return self.held() and self._clock() - self._renewed >= self.interval

    def held(self) -> bool:
        """Whether this process still holds the lease. Running out of it is for good: once
        any thread of the process has seen it lost, no heartbeat renews it again, or a thawed
        process would look alive to the restart that must replace it."""
        if self._lost is None and self._clock() - self._renewed >= self.seconds:
            self.lose(_RAN_OUT)
        return self._lost is None

    def answer(self, sent: float, held: bool, execution_id: int) -> None:
        """What a heartbeat sent at ``sent`` learnt: renewed, or lost to another process. A beat
        sent after the lease had run out renews nothing: another thread may have acted on it."""
        if held and sent - self._renewed < self.seconds:
            self.renewed(sent)
        elif held:
            self.lose(_RAN_OUT)
        else:
            self.lose(
                f"job execution {execution_id} is no longer running in the repository "
                "(recovered or abandoned by another process)"
            )

    def lose(self, why: str) -> None:
        if self._lost is None:
            self._lost = why

    def check(self, what: str) -> None:
        """Raise LeaseLost unless this process still holds the lease."""
        if self.held():
            return
        age = self._clock() - self._renewed
        if self._lost == _RAN_OUT:
            raise LeaseLost(
                f"{what}: no heartbeat for {age:.0f}s, past the {self.seconds:g}s lease; another "
                "process may have recovered this execution, so nothing more is written"
            )
        raise LeaseLost(f"{what}: {self._lost}; nothing more is written")


@dataclass
class RunControl:
    """Stop requests, deadlines and a partition group's abort for one job execution."""

    repository: JobRepository
    job_execution_id: int
    job_name: str = "?"
    job_deadline: Deadline | None = None
    abort: AbortSignal | None = None
    clock: Callable[[], float] = time.monotonic
    # The execution's lease in this process, when an engine renews it (None: not checked).
    lease: Lease | None = None
    # Whether chunk commits carry the job execution's heartbeat: not in a remote worker, which
    # runs one partition and must not keep a dead manager's job looking alive.
    chunk_beats: bool = True
    # Shared by every step and partition of the execution in this process.
    _stop: threading.Event = field(default_factory=threading.Event)

    @classmethod
    def for_job(
        cls,
        repository: JobRepository,
        job_execution_id: int,
        job_name: str,
        timeout: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        lease: float | None = None,
        heartbeat_interval: float | None = None,
    ) -> RunControl:
        """``lease``: seconds after the last accepted heartbeat (the launch counts as one)
        past which this process stops writing; ``heartbeat_interval``: how often it proves
        life (a chunk commit carries a heartbeat when one is due)."""
        deadline = Deadline.after(timeout, f"job {job_name!r}", clock) if timeout else None
        held = Lease(lease, clock(), clock, heartbeat_interval) if lease else None
        return cls(repository, job_execution_id, job_name, deadline, None, clock, held)

    def for_group(self, abort: AbortSignal | None) -> RunControl:
        """The same control for the partitions of one step, which also stop on ``abort``."""
        return dataclasses.replace(self, abort=abort)

    def linked_to(self, parent: RunControl) -> RunControl:
        """This control (a child job's) sharing ``parent``'s stop requests: a stop of the parent
        job stops the child at its next chunk boundary, and a stop the child sees stops the
        parent before its next step."""
        return dataclasses.replace(self, _stop=parent._stop)

    def step_deadline(self, step_name: str, timeout: float | None) -> Deadline | None:
        if not timeout:
            return None
        return Deadline.after(timeout, f"job {self.job_name!r} step {step_name!r}", self.clock)

    # --- requests -------------------------------------------------------------------------

    def request_stop(self) -> None:
        """Stop at the next chunk boundary (or before the next step): a local request."""
        self._stop.set()

    def stop_seen(self) -> None:
        """A chunk commit found the job STOPPING: remember it for every later question."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def check_lease(self, what: str) -> None:
        """Before any write that no database transaction fences (a file): raise LeaseLost if
        this process can no longer prove it holds the execution."""
        if self.lease is not None:
            self.lease.check(what)

    # --- the two questions ----------------------------------------------------------------

    def before_step(self, step_name: str) -> str | None:
        """Why the step must not start (a reason to end STOPPED), or None; raises StepTimeout
        when the job has run out of time."""
        reason = self._local_reason()
        if reason is None and self.repository.stop_requested(self.job_execution_id):
            self._stop.set()
            reason = STOP_REQUESTED
        if reason is None:
            self._check(self.job_deadline, f"before step {step_name!r}")
        return reason

    def at_chunk_boundary(
        self, step_name: str, deadline: Deadline | None, chunks: int
    ) -> str | None:
        """Why the step must stop before its next chunk, or None; raises StepTimeout past the
        step's or the job's deadline. Asks no database: the chunk's commit saw any stop request
        (or, on SQLite, ``stop_signalled`` does, without a lock)."""
        reason = self._local_reason()
        if reason is None and self.repository.stop_signalled(self.job_execution_id):
            self._stop.set()
            reason = STOP_REQUESTED
        if reason is None:
            self._check(deadline, f"after {chunks} chunks")
            self._check(self.job_deadline, f"in step {step_name!r} after {chunks} chunks")
        return reason

    def _local_reason(self) -> str | None:
        if self.abort is not None and self.abort.is_set():
            return SIBLING_FAILED
        if self._stop.is_set():
            return STOP_REQUESTED
        return None

    def _check(self, deadline: Deadline | None, when: str) -> None:
        if deadline is not None and self.clock() >= deadline.at:
            raise StepTimeout(f"{deadline.what} exceeded its timeout of {deadline.limit:g}s {when}")
