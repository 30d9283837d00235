"""The worker side of partitions: a process pool on this machine, and what runs in a worker.

A process worker gets plain data only (repository URL, job reference, names, ids), loads the job
with the same loader as the command line (``batchline.loader``), builds its own registry and
repository, finds the step by job and step name, runs the partition and reports through the
repository alone: the manager never trusts what comes back through the pool, so a killed worker
costs nothing but a restart. This lives beside the engine, above the steps layer: a worker
builds what the engine otherwise builds (a registry, a repository, a run control).

No process the pool causes to exist outlives its manager: a worker watches a pipe only the
manager writes to and exits when it reaches end-of-file (at once when idle, after its partition
stopped at a chunk boundary when busy). The forkserver and multiprocessing's resource tracker
then follow by themselves: they exit at end-of-file on pipes whose writing ends the manager and
the workers hold.
"""

from __future__ import annotations

import contextlib
import contextvars
import multiprocessing
import os
import threading
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any

from batchline.errors import ConfigurationError, LeaseLost, WorkerLost
from batchline.flow import find_step
from batchline.loader import load_jobs
from batchline.logging import log
from batchline.model import StepExecution
from batchline.observers import WorkerSpec, from_specs
from batchline.registry import JobRegistry
from batchline.repository.base import JobRepository
from batchline.repository.samples import DEFAULT_SAMPLE_INTERVAL
from batchline.status import BatchStatus
from batchline.steps.base import StepRuntime
from batchline.steps.control import AbortSignal, RunControl
from batchline.steps.partition import Partition, PartitionRequest, PartitionStep, run_partition


@dataclass(frozen=True)
class PartitionTask:
    """What a worker process is told: plain data, pickled to it through the pool."""

    repository_url: str
    job_ref: str
    job_name: str
    step_name: str
    job_execution_id: int
    partition: str
    context: dict[str, Any] = field(default_factory=dict)
    rerun_completed: bool = False
    # How the worker builds the manager's observers (a trace context among their arguments).
    observers: tuple[WorkerSpec, ...] = ()
    # The manager's repository's progress-sample interval, kept by the worker's repository.
    sample_interval: float | None = DEFAULT_SAMPLE_INTERVAL


class ProcessPartitionHandler:
    """Runs partitions on a pool of ``workers`` processes started for each run of the step.

    ``job`` is an importable reference, ``package.module:attribute``, to the Job (or a callable
    returning a Job, or a list of Jobs) that holds the partitioned step: each worker imports it.
    ``start_method`` is "forkserver" (the default where the platform has it: a single-threaded
    server that has imported batchline forks each worker, so workers skip that import) or
    "spawn"; never "fork", which would copy the manager's threads and open connections into the
    worker.

    When the manager dies (SIGKILL, out of memory), its workers end too: an idle one at once, a
    busy one once its partition stopped at the next chunk boundary, or after ``orphan_grace``
    seconds if no boundary comes (its open chunk rolls back, as in a crash). Keep it below the
    engine's ``lease``, so a recovered and restarted job never runs beside a late worker.
    """

    def __init__(
        self,
        job: str,
        workers: int | None = None,
        *,
        start_method: str | None = None,
        orphan_grace: float = 30.0,
    ) -> None:
        if start_method is None:
            methods = multiprocessing.get_all_start_methods()
            start_method = "forkserver" if "forkserver" in methods else "spawn"
        if ":" not in job:
            raise ConfigurationError(f"process partition handler: job {job!r} is not module:attr")
        if start_method not in ("spawn", "forkserver"):
            raise ConfigurationError("process partition handler: start_method spawn or forkserver")
        if workers is not None and workers < 1:
            raise ConfigurationError(f"process partition handler: workers must be >= 1: {workers}")
        if orphan_grace < 0:
            raise ConfigurationError(
                f"process partition handler: orphan_grace must be >= 0: {orphan_grace}"
            )
        self.job = job
        self.workers = workers or os.cpu_count() or 2
        self.start_method = start_method
        self.orphan_grace = orphan_grace

    def __repr__(self) -> str:
        return f"ProcessPartitionHandler({self.job!r}, workers={self.workers})"

    def handle(
        self,
        step: PartitionStep,
        manager: StepExecution,
        request: PartitionRequest,
        runtime: StepRuntime,
    ) -> Mapping[str, BaseException]:
        if not request.partitions:
            return {}
        url = repository_url(runtime.repository)
        context = multiprocessing.get_context(self.start_method)
        if self.start_method == "forkserver":
            context.set_forkserver_preload(["batchline"])
        abort = context.Event()  # passed to workers only when stop_on_failure
        # The manager keeps the writing end open, unused, for as long as it lives.
        alive_r, alive_w = context.Pipe(duplex=False)
        errors: dict[str, BaseException] = {}
        size = min(self.workers, len(request.partitions))
        specs = runtime.observers.worker_specs(manager) if runtime.observers else ()
        pool = ProcessPoolExecutor(
            size,
            mp_context=context,
            initializer=_enter_worker,
            initargs=(abort if request.stop_on_failure else None, alive_r, self.orphan_grace),
        )
        try:
            futures = {
                pool.submit(
                    run_partition_task,
                    PartitionTask(
                        url,
                        self.job,
                        request.job_name,
                        request.step_name,
                        request.job_execution_id,
                        p.name,
                        dict(p.context),
                        request.rerun_completed,
                        specs,
                        runtime.repository.sample_interval(),
                    ),
                ): p.name
                for p in request.partitions
            }
            for future in as_completed(futures):
                error = _error_of(future, futures[future])
                if error is not None:
                    errors[futures[future]] = error
                failed = error is not None or future.result() == BatchStatus.FAILED.value
                if failed and request.stop_on_failure:
                    abort.set()
        finally:
            # Every partition has ended: idle workers exit on their own, nothing waits for them
            # (a broken pool has already stopped and joined its processes).
            pool.shutdown(wait=False, cancel_futures=True)
            alive_r.close()
            alive_w.close()
        if errors:
            log.error(
                "step %s: %d partitions ended in their worker's failure", step.name, len(errors)
            )
        return errors


def _error_of(future: Future[str], name: str) -> BaseException | None:
    """What kept the partition's worker from reporting: a dead pool, or an error before or
    after the partition ran (the job could not be loaded, the repository not reached)."""
    try:
        future.result()
    except BrokenProcessPool:
        return WorkerLost(
            f"partition {name!r} lost its worker: a process of the pool ended abruptly "
            "(killed, out of memory) and the pool stopped all of them"
        )
    except Exception as exc:
        return exc
    return None


def repository_url(repository: JobRepository) -> str:
    """The URL a worker process connects to the same repository with."""
    url = repository.url()
    if url is None:
        raise ConfigurationError(
            f"process partitions need a repository that other processes reach by URL, "
            f"not {repository!r}"
        )
    return url


# --- the worker process side ------------------------------------------------------------------


class _ManagerWatch:
    """Ends a worker process soon after its manager dies, whatever the worker is doing.

    The manager's death shows as end-of-file on a pipe whose only writer is the manager (a
    worker's parent may be a forkserver, so its parent pid says nothing). Nothing else ends an
    orphaned worker: an idle one waits on the pool's task queue, whose writing end every worker
    holds, so it never reads end-of-file; and while any worker lives, it keeps the forkserver
    and the resource tracker alive through the pipes it inherited from them. A thread waits for
    that end-of-file: an idle worker exits at once; a busy one gets ``grace`` seconds to stop its
    partition at a chunk boundary (``_WorkerSignal``) and exits when it did; if it did not, the
    thread ends the process there.
    """

    def __init__(self, manager_alive: Any, grace: float) -> None:
        self.manager_alive = manager_alive
        self.grace = grace
        self.orphaned = threading.Event()
        self._lock = threading.Lock()
        self._busy = False

    def start(self) -> None:
        threading.Thread(target=self._watch, name="batchline-manager-watch", daemon=True).start()

    def manager_died(self) -> bool:
        if self.orphaned.is_set():
            return True
        try:
            return bool(self.manager_alive.poll())  # readable only at EOF: the manager never writes
        except (EOFError, OSError):
            return True

    def _watch(self) -> None:
        with contextlib.suppress(EOFError, OSError):
            self.manager_alive.poll(None)  # blocks until the manager's end closes
        with self._lock:
            self.orphaned.set()
            if not self._busy:
                os._exit(_ORPHAN_EXIT)
        # A partition runs: it sees the manager's death at its next chunk boundary and stops;
        # ``running`` ends the process then. This is for a chunk that never gets there.
        time.sleep(self.grace)
        os._exit(_ORPHAN_EXIT)

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        """Around one task: none starts after the manager died, and the worker exits after it."""
        with self._lock:
            if self.orphaned.is_set():
                os._exit(_ORPHAN_EXIT)
            self._busy = True
        try:
            yield
        finally:
            with self._lock:
                self._busy = False
                if self.orphaned.is_set():
                    os._exit(_ORPHAN_EXIT)


_ORPHAN_EXIT = 1  # nobody waits for this status: the manager is dead


class _WorkerSignal:
    """A worker's abort signal: the run's event if it has one, and the manager's death.

    A worker whose manager died (SIGKILL, out of memory) must not run on unseen: a recovered
    and restarted job would run its partition twice. It stops at its next chunk boundary.
    """

    def __init__(self, event: AbortSignal | None, watch: _ManagerWatch) -> None:
        self.event = event
        self.watch = watch

    def is_set(self) -> bool:
        if self.watch.manager_died():
            return True
        return self.event is not None and self.event.is_set()

    def set(self) -> None:
        if self.event is not None:
            self.event.set()


# Set once in each worker process by the pool's initializer, which runs in the same thread and
# context as every task after it: the run's abort event, which cannot travel as an argument.
_worker_abort: contextvars.ContextVar[_WorkerSignal | None] = contextvars.ContextVar(
    "batchline_worker_abort", default=None
)


def _enter_worker(abort: AbortSignal | None, manager_alive: Any, orphan_grace: float) -> None:
    watch = _ManagerWatch(manager_alive, orphan_grace)
    _worker_abort.set(_WorkerSignal(abort, watch))
    watch.start()


def run_partition_task(task: PartitionTask) -> str:
    """Run one partition in a worker process; returns its status (the repository has the rest)."""
    signal = _worker_abort.get()
    with signal.watch.running() if signal is not None else contextlib.nullcontext():
        return _run_partition_task(task, signal)


def _run_partition_task(task: PartitionTask, abort: _WorkerSignal | None) -> str:
    from batchline.repository.logs import kept_logs
    from batchline.repository.sql import SqlJobRepository

    registry = JobRegistry()
    for job in load_jobs(task.job_ref):
        registry.register(job, replace=True)
    step = find_step(registry.get(task.job_name).steps, task.step_name)
    if not isinstance(step, PartitionStep):
        raise ConfigurationError(
            f"job {task.job_name!r} from {task.job_ref!r} has no partitioned step "
            f"{task.step_name!r}"
        )
    repository = SqlJobRepository(
        task.repository_url, upgrade=False, sample_interval=task.sample_interval
    )
    try:
        execution = repository.get_job_execution(task.job_execution_id)
        if not execution.status.is_running:
            # The fencing token: a manager thawed after a restart took its execution over
            # still hands out partitions; nothing is created for them (the repository refuses
            # a step under an execution that stopped running, too, should it change now).
            raise LeaseLost(
                f"partition {task.partition!r}: job execution {execution.id} is "
                f"{execution.status.value}; its manager lost it, so the partition does not run"
            )
        control = RunControl(repository, execution.id, execution.job_name)
        runtime = StepRuntime(
            repository,
            repository.transaction_manager(),
            control,
            observers=from_specs(task.observers),
        )
        with kept_logs(repository.engine, execution.job_name, execution.id):
            done = run_partition(
                step,
                Partition(task.partition, task.context),
                execution,
                runtime,
                rerun_completed=task.rerun_completed,
                abort=abort,
            )
    finally:
        repository.dispose()
    return done.status.value if done is not None else BatchStatus.COMPLETED.value
