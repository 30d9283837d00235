"""The worker side of partitions: a process pool on this machine, and what runs in a worker.

A process worker gets plain data only (repository URL, job reference, names, ids), loads the job
with the same loader as the command line (``batchline.loader``), builds its own registry and
repository, finds the step by job and step name, runs the partition and reports through the
repository alone: the manager never trusts what comes back through the pool, so a killed worker
costs nothing but a restart. This lives beside the engine, above the steps layer: a worker
builds what the engine otherwise builds (a registry, a repository, a run control).
"""

from __future__ import annotations

import contextvars
import multiprocessing
import os
from collections.abc import Mapping
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any

from batchline.errors import ConfigurationError, WorkerLost
from batchline.flow import find_step
from batchline.loader import load_jobs
from batchline.logging import log
from batchline.model import StepExecution
from batchline.registry import JobRegistry
from batchline.repository.base import JobRepository
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


class ProcessPartitionHandler:
    """Runs partitions on a pool of ``workers`` processes started for each run of the step.

    ``job`` is an importable reference, ``package.module:attribute``, to the Job (or a callable
    returning a Job, or a list of Jobs) that holds the partitioned step: each worker imports it.
    ``start_method`` is "forkserver" (the default where the platform has it: a single-threaded
    server that has imported batchline forks each worker, so workers skip that import) or
    "spawn"; never "fork", which would copy the manager's threads and open connections into the
    worker.
    """

    def __init__(
        self, job: str, workers: int | None = None, *, start_method: str | None = None
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
        self.job = job
        self.workers = workers or os.cpu_count() or 2
        self.start_method = start_method

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
        pool = ProcessPoolExecutor(
            size,
            mp_context=context,
            initializer=_enter_worker,
            initargs=(abort if request.stop_on_failure else None, alive_r),
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


class _WorkerSignal:
    """A worker's abort signal: the run's event if it has one, and the manager's death.

    A worker whose manager died (SIGKILL, out of memory) must not run on unseen: a recovered
    and restarted job would run its partition twice. It stops at its next chunk boundary. The
    manager's death shows as end-of-file on a pipe whose only writer is the manager (a worker's
    parent may be a forkserver, so its parent pid says nothing).
    """

    def __init__(self, event: AbortSignal | None, manager_alive: Any) -> None:
        self.event = event
        self.manager_alive = manager_alive

    def is_set(self) -> bool:
        try:
            if self.manager_alive.poll():  # readable only at EOF: the manager never writes
                return True
        except (EOFError, OSError):
            return True
        return self.event is not None and self.event.is_set()

    def set(self) -> None:
        if self.event is not None:
            self.event.set()


# Set once in each worker process by the pool's initializer, which runs in the same thread and
# context as every task after it: the run's abort event, which cannot travel as an argument.
_worker_abort: contextvars.ContextVar[AbortSignal | None] = contextvars.ContextVar(
    "batchline_worker_abort", default=None
)


def _enter_worker(abort: AbortSignal | None, manager_alive: Any) -> None:
    _worker_abort.set(_WorkerSignal(abort, manager_alive))


def run_partition_task(task: PartitionTask) -> str:
    """Run one partition in a worker process; returns its status (the repository has the rest)."""
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
    repository = SqlJobRepository(task.repository_url, upgrade=False)
    try:
        execution = repository.get_job_execution(task.job_execution_id)
        control = RunControl(repository, execution.id, execution.job_name)
        runtime = StepRuntime(repository, repository.transaction_manager(), control)
        done = run_partition(
            step,
            Partition(task.partition, task.context),
            execution,
            runtime,
            rerun_completed=task.rerun_completed,
            abort=_worker_abort.get(),
        )
    finally:
        repository.dispose()
    return done.status.value if done is not None else BatchStatus.COMPLETED.value
