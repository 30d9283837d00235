"""The thread partition handler: partitions on threads of this process.

Threads suit partitions that wait on I/O (databases, files); the default handler of a
partitioned step. CPU-bound partitions go to processes (``batchline.workers``).
"""

from __future__ import annotations

import contextvars
import functools
import os
import threading
from collections.abc import Mapping

from batchline.errors import ConfigurationError
from batchline.items.base import ItemReader, ItemStream
from batchline.model import StepExecution
from batchline.pools import WorkerPool
from batchline.status import BatchStatus
from batchline.steps.base import StepRuntime
from batchline.steps.partition import Partition, PartitionRequest, PartitionStep, run_partition


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
            f"{' and '.join(shared)} object; give a {' and a '.join(shared)} factory (a "
            "callable taking the StepExecution, e.g. lambda step: ListWriter()) so each "
            "partition gets its own"
        )
