"""Partition handlers that run partitions on this machine: on threads, or on processes.

Threads suit partitions that wait on I/O (databases, files). Processes suit CPU-bound processors,
which threads would serialise on the GIL. A process worker gets plain data only (repository URL,
job reference, names, ids), builds its own registry and repository, finds the step by job and
step name, runs the partition and reports through the repository alone: the manager never
trusts what comes back through the pool, so a killed worker costs nothing but a restart.
"""

from __future__ import annotations

import contextvars
import functools
import importlib
import multiprocessing
import os
import threading
from collections.abc import Iterable, Mapping
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any

from batchline.errors import ConfigurationError, StepFailure
from batchline.flow import find_step
from batchline.items.base import ItemReader, ItemStream
from batchline.job import Job
from batchline.logging import log
from batchline.model import StepExecution
from batchline.pools import WorkerPool
from batchline.registry import JobRegistry
from batchline.status import BatchStatus
from batchline.steps.base import StepRuntime
from batchline.steps.partition import (
    AbortSignal,
    Partition,
    PartitionRequest,
    PartitionStep,
    run_partition,
)


class WorkerLost(StepFailure):
    """A partition's worker process died (killed, out of memory) before it recorded an end."""


class ThreadPartitionHandler:
    """Runs partitions on threads: a pool of ``workers`` of its own, or the engine's step pool.

    Without ``workers`` the partitions share the engine's ``max_concurrent_steps`` with every
    other job's partitions and split flows.
    """

    def __init__(self, workers: int | None = None) -> None:
        if workers is not None and workers < 1:
            raise ConfigurationError(f"thread partition handler: workers must be >= 1: {workers}")
        self.workers = workers

    def __repr__(self) -> str:
        return f"ThreadPartitionHandler(workers={self.workers})"

    def handle(
        self,
        step: PartitionStep,
        manager: StepExecution,
        request: PartitionRequest,
        runtime: StepRuntime,
    ) -> Mapping[str, BaseException]:
        execution = manager.job_execution
        assert execution is not None
        _check_shareable(step)
        abort = threading.Event() if request.stop_on_failure else None

        def run(partition: Partition) -> StepExecution | None:
            try:
                done = run_partition(
                    step,
                    partition,
                    execution,
                    runtime,
                    rerun_completed=request.rerun_completed,
                    abort=abort,
                )
            except BaseException:
                if abort is not None:
                    abort.set()
                raise
            if done is not None and done.status is BatchStatus.FAILED and abort is not None:
                abort.set()  # failed after its work (an after-step listener)
            return done

        tasks = [
            functools.partial(contextvars.copy_context().run, run, p) for p in request.partitions
        ]
        if not tasks:
            return {}
        own: WorkerPool | None = None
        pool = runtime.step_pool if self.workers is None else None
        if pool is None:
            size = min(self.workers or os.cpu_count() or 2, len(tasks))
            pool = own = WorkerPool(f"batchline-{step.name}", size)
        try:
            outcomes = pool.run_all(tasks)
        finally:
            if own is not None:
                own.shutdown()
        return {
            p.name: o.error
            for p, o in zip(request.partitions, outcomes, strict=True)
            if o.error is not None
        }


def _check_shareable(step: PartitionStep) -> None:
    """Partitions on threads share the worker's objects: a stateful one would be shared too."""
    worker = step.worker
    shared = [
        what
        for what in ("reader", "processor", "writer")
        if isinstance(getattr(worker, what, None), ItemStream)
        or (what == "reader" and isinstance(getattr(worker, what, None), ItemReader))
    ]
    if shared:
        raise ConfigurationError(
            f"step {step.name!r}: partitions on threads would share the worker's "
            f"{' and '.join(shared)} object; give a reader factory (a callable taking the "
            "StepExecution) so each partition gets its own, and a stateless processor and writer"
        )


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
    after run_step (the job could not be loaded, the repository not reached)."""
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


def repository_url(repository: Any) -> str:
    """The URL a worker process connects to the same repository with."""
    engine = getattr(repository, "engine", None)
    url = getattr(engine, "url", None)
    if url is None:
        raise ConfigurationError(
            f"process partitions need a repository reachable by URL, not {repository!r}"
        )
    return str(url.render_as_string(hide_password=False))


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
    from batchline.transaction import SqlTransactionManager

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
        runtime = StepRuntime(repository, SqlTransactionManager(repository.engine))
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


def load_jobs(reference: str) -> list[Job]:
    """The Jobs ``module:attribute`` names: a Job, a list of Jobs, or a callable returning one."""
    module_name, _, attribute = reference.partition(":")
    try:
        target: Any = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(f"cannot load job {reference!r}: {exc}") from exc
    if callable(target) and not isinstance(target, Job):
        target = target()
    found = [target] if isinstance(target, Job) else list(_jobs_in(target))
    if not found:
        raise ConfigurationError(f"job reference {reference!r} names no batchline Job")
    return found


def _jobs_in(target: Any) -> Iterable[Job]:
    if isinstance(target, Iterable) and not isinstance(target, str | bytes):
        return [j for j in target if isinstance(j, Job)]
    return []
