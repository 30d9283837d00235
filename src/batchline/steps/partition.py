"""The partitioned step: one step's work cut into partitions that run in parallel.

A Partitioner cuts the work into slices, each described by a JSON context (a key range, a file, a
byte range). Every slice runs as an ordinary StepExecution of the worker step, named
``<step>:0000``, ``<step>:0001``, ... under the same job execution, so each keeps its own
context, counters and restart point through ``execute_step``. The plan (names and first
contexts) goes into the manager's own context before any partition runs: a restart reuses it
without asking the partitioner again, and ``execute_step`` skips the partitions that completed
and resumes the others from their last commit.

Who runs the partitions is a PartitionHandler: threads (``steps.partition_threads``, the
builder's default) or processes (``batchline.workers``). The manager reads every outcome back
from the repository, never from the workers, so a handler may put workers anywhere that reaches
the repository.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

from batchline.errors import ConfigurationError, StepFailure
from batchline.listeners import callbacks
from batchline.logging import log
from batchline.model import COUNTERS, JobExecution, StepExecution
from batchline.repository.base import JobRepository
from batchline.status import BatchStatus, ExitStatus
from batchline.steps.base import (
    Step,
    StepOptions,
    StepRuntime,
    execute_step,
    prepare_step,
    run_prepared_step,
    step_failure,
)
from batchline.steps.control import SIBLING_FAILED, AbortSignal

PLAN_KEY = "batchline.partition.plan"


@dataclass(frozen=True, slots=True)
class Partition:
    """One slice of the work: the name of its step execution and the context it starts with."""

    name: str
    context: Mapping[str, Any]


@runtime_checkable
class Partitioner(Protocol):
    """Splits a step's work into partitions: one first execution context per partition.

    ``StepBuilder.partition`` takes one, or a factory that makes one from the manager's
    ``StepExecution`` (to read the job parameters); ``batchline.partitioners`` holds ready ones."""

    def partition(self, grid_size: int) -> Sequence[Mapping[str, Any]]:
        """The partitions' first contexts (JSON values only), about ``grid_size`` of them."""


# A Partitioner, or a factory that makes one from the manager's StepExecution (job parameters).
PartitionerSpec = Partitioner | Callable[[StepExecution], Partitioner]


@runtime_checkable
class Aggregator(Protocol):
    """Folds the partitions' results into the manager step's execution.

    The manager's counters are the partitions' sums by default; give an aggregator, or a
    function of the same two arguments (``StepBuilder.partition(..., aggregator=...)``), to
    carry anything else over, such as values the partitions left in their contexts."""

    def aggregate(self, manager: StepExecution, partitions: Sequence[StepExecution]) -> None:
        """Fold the partitions' results (their last executions, plan order) into the manager."""


class PartitionListener(Protocol):
    """Called around the planning of a partitioned step, and when a partition fails.

    Every method is optional: batchline calls the ones the listener has."""

    def before_partition(self, step_execution: StepExecution) -> None:
        """Before the plan is made (or read back on a restart)."""

    def after_partition(
        self, step_execution: StepExecution, partitions: Sequence[Partition]
    ) -> None:
        """The plan is ready; no partition has run yet."""

    def on_partition_error(self, step_execution: StepExecution, error: BaseException) -> None:
        """The partitioner failed, or a partition did (once per failed partition)."""


@dataclass(frozen=True, slots=True)
class PartitionRequest:
    """What a handler needs to run the partitions, as plain data a remote worker could take."""

    job_execution_id: int
    job_name: str
    step_name: str
    partitions: tuple[Partition, ...]
    rerun_completed: bool  # a fresh plan: partitions completed in an earlier run run again
    stop_on_failure: bool  # one failed partition stops the others at their next chunk


class PartitionHandler(Protocol):
    """Runs a step's partitions and returns once none of them runs any more.

    A handler for workers on other machines sends each worker plain data (the request's ids
    and names, one Partition); the worker loads the job into its own registry, finds the
    PartitionStep with ``batchline.flow.find_step`` and calls ``run_partition`` against the shared
    repository. The handler then waits until the repository shows every partition ended::

        class QueueHandler:
            def handle(self, step, manager, request, runtime):
                for partition in request.partitions:
                    queue.send(request.job_name, request.step_name,
                               request.job_execution_id, partition.name, partition.context)
                wait_until_ended(runtime.repository, request)
                return {}

    It returns the errors that kept partitions from running (worker lost, job not found), by
    partition name; what the partitions themselves did is read from the repository.
    """

    def handle(
        self,
        step: PartitionStep,
        manager: StepExecution,
        request: PartitionRequest,
        runtime: StepRuntime,
    ) -> Mapping[str, BaseException]: ...


OnFailure = Literal["stop", "continue"]


class PartitionStep:
    """A manager step: plans partitions of ``worker``, has them run, and sums their outcome.

    Its counters are the sum of its partitions' executions in this job execution; its status the
    most severe of theirs. ``on_failure="stop"`` makes the other partitions stop at their next
    chunk boundary when one fails; ``"continue"`` lets them run to their end.
    """

    def __init__(
        self,
        name: str,
        worker: Step,
        partitioner: PartitionerSpec,
        *,
        grid_size: int = 4,
        handler: PartitionHandler,
        aggregator: Aggregator
        | Callable[[StepExecution, Sequence[StepExecution]], None]
        | None = None,
        on_failure: OnFailure = "stop",
        options: StepOptions | None = None,
    ) -> None:
        if len(name) > 94:  # room for ":0000" in a 100-character step name
            raise ConfigurationError(f"partitioned step name {name!r} is over 94 characters")
        if grid_size < 1:
            raise ConfigurationError(f"step {name!r}: grid_size must be >= 1, got {grid_size}")
        if isinstance(worker, PartitionStep):
            raise ConfigurationError(f"step {name!r}: a partition's worker cannot be partitioned")
        if on_failure not in ("stop", "continue"):
            raise ConfigurationError(f"step {name!r}: on_failure must be 'stop' or 'continue'")
        self.name = name
        self.worker = worker
        self.partitioner = partitioner
        self.grid_size = grid_size
        self.handler = handler
        self.aggregator = aggregator
        self.on_failure = on_failure
        opts = options or StepOptions()
        self.allow_start_if_complete = opts.allow_start_if_complete
        self.start_limit = opts.start_limit
        self.listeners = list(opts.listeners)

    def __repr__(self) -> str:
        return f"PartitionStep({self.name!r}, worker={self.worker.name!r}, grid={self.grid_size})"

    def execute(self, se: StepExecution, runtime: StepRuntime) -> None:
        execution = se.job_execution
        if execution is None:
            raise ConfigurationError(f"step {self.name!r} runs only inside a job execution")
        for fn in callbacks(self.listeners, "before_partition"):
            fn(se)
        partitions, fresh = self._plan(se, runtime)
        for fn in callbacks(self.listeners, "after_partition"):
            fn(se, partitions)
        pending = partitions
        if not fresh and not self.worker.allow_start_if_complete:
            # A restart: hand over only what did not complete (no worker started for nothing).
            last = runtime.repository.last_step_executions(
                execution.instance.id, [p.name for p in partitions]
            )
            done = {n for n, s in last.items() if s.status is BatchStatus.COMPLETED}
            pending = [p for p in partitions if p.name not in done]
        request = PartitionRequest(
            job_execution_id=execution.id,
            job_name=execution.job_name,
            step_name=self.name,
            partitions=tuple(pending),
            rerun_completed=fresh,
            stop_on_failure=self.on_failure == "stop",
        )
        log.info(
            "step %s: %d of %d partitions on %r",
            self.name,
            len(pending),
            len(partitions),
            self.handler,
        )
        errors = self.handler.handle(self, se, request, runtime) if pending else {}
        self._conclude(se, execution, partitions, errors, runtime)

    def _plan(self, se: StepExecution, runtime: StepRuntime) -> tuple[list[Partition], bool]:
        """The stored plan on a restart; otherwise a new one, stored before anything runs."""
        stored = se.context.get(PLAN_KEY)
        if stored is not None:
            log.info("step %s: reusing the partition plan of an earlier execution", self.name)
            return [Partition(p["name"], dict(p["context"])) for p in stored], False
        try:
            spec = self.partitioner
            partitioner = spec if isinstance(spec, Partitioner) else spec(se)
            contexts = list(partitioner.partition(self.grid_size))
        except Exception as exc:
            for fn in callbacks(self.listeners, "on_partition_error"):
                fn(se, exc)
            job = se.job_execution.job_name if se.job_execution else "?"
            message = f"job {job!r} step {self.name!r}: the partitioner failed"
            raise step_failure(message, exc) from exc
        partitions = [
            Partition(f"{self.name}:{index:04d}", dict(context))
            for index, context in enumerate(contexts)
        ]
        se.context[PLAN_KEY] = [{"name": p.name, "context": p.context} for p in partitions]
        runtime.repository.update_step_execution(se)
        return partitions, True

    def _conclude(
        self,
        se: StepExecution,
        execution: JobExecution,
        partitions: list[Partition],
        errors: Mapping[str, BaseException],
        runtime: StepRuntime,
    ) -> None:
        """Read every partition's outcome from the repository; sum, aggregate, decide."""
        repo = runtime.repository
        names = [p.name for p in partitions]
        latest = repo.last_step_executions(execution.instance.id, names)
        known = {s.id for s in execution.step_executions}
        worst = BatchStatus.COMPLETED
        failed: list[tuple[str, str, BaseException | None]] = []
        for name in names:
            last, error = latest.get(name), errors.get(name)
            ran = last if last is not None and last.job_execution_id == execution.id else None
            if ran is not None:
                if ran.status.is_running:
                    # The handler returned, so nothing runs it any more: its worker is gone.
                    message = str(error) if error else "its worker ended without recording it"
                    repo.fail_step_execution(ran.id, message)
                    ran.set_status(BatchStatus.FAILED)
                    ran.exit_status = ExitStatus("FAILED", message)
                if ran.id not in known:
                    execution.step_executions.append(ran)  # it ran in another process
                status = ran.status
            elif last is not None and last.status is BatchStatus.COMPLETED:
                status = BatchStatus.COMPLETED  # completed in an earlier execution
            else:
                status = BatchStatus.FAILED  # it never ran: the handler could not run it
            worst = worst.upgrade(status)
            if status.severity >= BatchStatus.FAILED.severity:
                failed.append((name, _description(ran, error), error))
        for counter in COUNTERS:
            total = sum(
                getattr(s, counter) for s in latest.values() if s.job_execution_id == execution.id
            )
            setattr(se, counter, total)
        self._aggregate(se, [latest[n] for n in names if n in latest])
        if failed:
            self._fail(se, execution, failed)
        if worst is not BatchStatus.COMPLETED:
            se.set_status(BatchStatus.STOPPING)
            se.exit_status = ExitStatus("STOPPED", f"partitions not completed: {worst.value}")

    def _aggregate(self, se: StepExecution, partitions: list[StepExecution]) -> None:
        if self.aggregator is None:
            return
        if isinstance(self.aggregator, Aggregator):
            self.aggregator.aggregate(se, partitions)
        else:
            self.aggregator(se, partitions)

    def _fail(
        self,
        se: StepExecution,
        execution: JobExecution,
        failed: list[tuple[str, str, BaseException | None]],
    ) -> None:
        in_memory = {s.step_name: s for s in execution.step_executions if s.failures}
        causes: list[BaseException | None] = []
        for name, description, error in failed:
            cause = error or (in_memory[name].failures[0] if name in in_memory else None)
            causes.append(cause)
            failure = StepFailure(f"partition {name!r} failed: {description}")
            failure.__cause__ = cause
            for fn in callbacks(self.listeners, "on_partition_error"):
                fn(se, failure)
        name, description, _ = failed[0]
        message = (
            f"job {execution.job_name!r} step {self.name!r}: partition {name!r} failed: "
            f"{description}"
        )
        if len(failed) > 1:
            message += f" ({len(failed)} partitions failed: {', '.join(f[0] for f in failed)})"
        first = StepFailure(message)
        first.__cause__ = causes[0]
        raise first


def _description(last: StepExecution | None, error: BaseException | None) -> str:
    if error is not None:
        return f"{type(error).__name__}: {error}"
    if last is None:
        return "it did not run"
    lines = last.exit_status.description.strip().splitlines()
    return lines[0] if lines else last.exit_status.code


class _PartitionView:
    """The worker step seen under one partition's name, so execute_step keeps each apart."""

    def __init__(self, worker: Step, name: str, rerun_completed: bool) -> None:
        self.name = name
        self.partition_of = name.rpartition(":")[0]  # for logs and observers
        self.worker = worker
        self.allow_start_if_complete = rerun_completed or worker.allow_start_if_complete
        self.start_limit = worker.start_limit
        self.listeners = worker.listeners

    def execute(self, se: StepExecution, runtime: StepRuntime) -> None:
        abort = runtime.control.abort
        # Not even one chunk once a stop or a sibling's failure is known (Spring #4631).
        reason = runtime.control.before_step(self.name)
        if reason is not None:
            log.info("partition %s does not start: %s", self.name, reason)
            se.set_status(BatchStatus.STOPPING)
            se.exit_status = ExitStatus("STOPPED", reason)
            return
        try:
            self.worker.execute(se, runtime)
        except BaseException:
            if abort is not None:
                abort.set()  # before this failure is even recorded: siblings stop sooner
            raise
        if se.status is BatchStatus.STOPPING and abort is not None and abort.is_set():
            se.exit_status = ExitStatus("STOPPED", SIBLING_FAILED)


def prepare_partition(
    step: PartitionStep,
    partition: Partition,
    job_execution: JobExecution,
    repository: JobRepository,
    *,
    rerun_completed: bool,
) -> StepExecution | None:
    """Create one partition's step execution (STARTING, its first context stored) for a worker
    elsewhere to claim; None when it completed in an earlier run."""
    view = _PartitionView(step.worker, partition.name, rerun_completed)
    se = prepare_step(view, job_execution, repository, context=partition.context)
    if se is not None:
        repository.update_step_execution(se)
    return se


def run_prepared_partition(
    step: PartitionStep,
    se: StepExecution,
    runtime: StepRuntime,
    *,
    rerun_completed: bool,
) -> StepExecution:
    """Claim and run a partition a manager prepared (OptimisticLockingFailure: another worker
    claimed it first)."""
    view = _PartitionView(step.worker, se.step_name, rerun_completed)
    return run_prepared_step(view, se, runtime)


def run_partition(
    step: PartitionStep,
    partition: Partition,
    job_execution: JobExecution,
    runtime: StepRuntime,
    *,
    rerun_completed: bool,
    abort: AbortSignal | None,
) -> StepExecution | None:
    """Run one partition where this is called; None when it completed in an earlier run.

    ``abort`` is the partitions' shared signal: checked at every chunk boundary and set when
    this partition fails; None lets the partitions run on whatever the others do.
    """
    view = _PartitionView(step.worker, partition.name, rerun_completed)
    own = dataclasses.replace(runtime, control=runtime.control.for_group(abort))
    return execute_step(view, job_execution, own, context=partition.context)
