"""What every step shares: the Step protocol and the flow around a step's own work.

``execute_step`` does what Spring's AbstractStep does: decide whether the step runs (skip a
completed step, refuse past ``start_limit``), create its StepExecution (resuming the context of
an execution that did not complete), call listeners, run the step, and record the outcome.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from batchline.errors import OptimisticLockingFailure, StartLimitExceeded, StepFailure
from batchline.listeners import callbacks
from batchline.logging import flush_captured, log, step_scope
from batchline.model import JobExecution, StepExecution, utcnow
from batchline.repository.base import JobRepository
from batchline.status import BatchStatus, ExitStatus
from batchline.steps.control import RunControl
from batchline.transaction import TransactionManager

if TYPE_CHECKING:
    from batchline.observers import Observers
    from batchline.pools import WorkerPool


@dataclass(slots=True)
class StepRuntime:
    """What a running step needs from the engine."""

    repository: JobRepository
    transaction_manager: TransactionManager
    # Stop requests, deadlines and a partition group's abort: asked before a step and at every
    # chunk boundary.
    control: RunControl
    # The engine's bounded pool for steps that run beside others (split flows, partitions).
    step_pool: WorkerPool | None = None
    # How a job step runs its child job: run_child(job, parameters, parent_control) launches
    # (or restarts) the child's instance and runs it to its end under the engine, which keeps
    # its heartbeat and passes the parent's stop requests on. None outside an engine.
    run_child: Callable[..., JobExecution] | None = None
    # The engine's observers (metrics, traces); None when there are none, so nothing is called.
    observers: Observers | None = None


class Step(Protocol):
    """What a job runs: a simple, chunk, columnar, partitioned or job step.

    Build one with ``StepBuilder``. ``execute`` does the work and leaves the execution
    COMPLETED or STOPPED, or raises."""

    name: str
    allow_start_if_complete: bool
    start_limit: int | None
    listeners: list[Any]

    def execute(self, step_execution: StepExecution, runtime: StepRuntime) -> None:
        """Do the step's work; end by setting the status to COMPLETED or STOPPED, or raise."""


@dataclass
class StepOptions:
    """Options every kind of step takes."""

    allow_start_if_complete: bool = False
    start_limit: int | None = None
    listeners: list[Any] = field(default_factory=list)


def execute_step(
    step: Step,
    job_execution: JobExecution,
    runtime: StepRuntime,
    *,
    context: Mapping[str, Any] | None = None,
) -> StepExecution | None:
    """Run one step of a job execution; None when the step completed before and is skipped.

    ``context`` seeds an execution that starts afresh (a partition's slice of the work); an
    execution that resumes keeps the context its predecessor saved.
    """
    se = prepare_step(step, job_execution, runtime.repository, context=context)
    if se is None:
        return None
    return run_prepared_step(step, se, runtime)


def prepare_step(
    step: Step,
    job_execution: JobExecution,
    repo: JobRepository,
    *,
    context: Mapping[str, Any] | None = None,
) -> StepExecution | None:
    """Decide whether the step runs and create its execution, STARTING: None when it completed
    before. The seed ``context`` is in memory only until the execution is first written."""
    previous = repo.get_step_context(job_execution.instance.id, step.name)
    if (
        previous is not None
        and previous.last_status is BatchStatus.COMPLETED
        and not step.allow_start_if_complete
    ):
        log.info("step %s completed in an earlier execution; skipping it", step.name)
        return None
    if step.start_limit is not None and previous and previous.start_count >= step.start_limit:
        raise StartLimitExceeded(
            f"job {job_execution.job_name!r} step {step.name!r} has been started "
            f"{previous.start_count} times; its start_limit is {step.start_limit}"
        )
    se = repo.create_step_execution(job_execution, step.name, previous)
    if context and not se.context:
        se.context.update(context)
    job_execution.step_executions.append(se)
    return se


def run_prepared_step(step: Step, se: StepExecution, runtime: StepRuntime) -> StepExecution:
    """Claim a STARTING execution and run it. The claim is its first write, STARTING ->
    STARTED with the version it was read at: of two runners of one execution (a message
    delivered twice), the second gets OptimisticLockingFailure and runs nothing."""
    repo = runtime.repository
    partition_of: str | None = getattr(step, "partition_of", None)
    with step_scope(step.name, se.id, partition_of):
        se.set_status(BatchStatus.STARTED)
        repo.update_step_execution(se)
        log.info("step %s started%s", step.name, " (resuming)" if se.context else "")
        if runtime.observers is not None:
            runtime.observers.step_started(se, partition_of)
        try:
            for fn in callbacks(step.listeners, "before_step"):
                fn(se)
            step.execute(se, runtime)
            if se.status is BatchStatus.STARTED:
                se.set_status(BatchStatus.COMPLETED)
        except BaseException as exc:
            se.failures.append(exc)
            se.set_status(BatchStatus.FAILED)
            se.exit_status = ExitStatus("FAILED", cause_chain(exc))
            log.error("step %s failed: %s", step.name, _one_line(exc))
            if not isinstance(exc, Exception):
                _finish(se, step, repo, runtime.observers)
                raise
        _finish(se, step, repo, runtime.observers)
    flush_captured()
    return se


def _finish(
    se: StepExecution, step: Step, repo: JobRepository, observers: Observers | None
) -> None:
    if se.status is BatchStatus.STOPPING:
        se.set_status(BatchStatus.STOPPED)
    if se.exit_status.code == "EXECUTING":
        se.exit_status = ExitStatus.of(se.status)
    for fn in callbacks(step.listeners, "after_step", reverse=True):
        try:
            replaced = fn(se)
        except Exception as exc:
            se.failures.append(exc)
            se.set_status(BatchStatus.FAILED)
            se.exit_status = ExitStatus("FAILED", cause_chain(exc))
            continue
        if isinstance(replaced, ExitStatus):
            se.exit_status = replaced
    se.end_time = utcnow()
    try:
        repo.update_step_execution(se)
    except Exception as exc:
        _record_failure_instead(se, repo, exc)
    finally:
        if observers is not None:
            observers.step_ended(se, getattr(step, "partition_of", None))
    log.info(
        "step %s %s: read=%d written=%d filtered=%d skipped=%d commits=%d rollbacks=%d",
        step.name,
        se.status.value,
        se.read_count,
        se.write_count,
        se.filter_count,
        se.skip_count,
        se.commit_count,
        se.rollback_count,
    )


def _record_failure_instead(se: StepExecution, repo: JobRepository, error: Exception) -> None:
    """The step's end could not be written as it is (a context that cannot be stored, a commit
    whose reply was lost, a row another process recovered): record FAILED with the real cause
    where the row still says it runs as this process left it (or one commit further, a commit
    whose reply was lost), so no step stays STARTED under an ended job. A row changed by
    someone else since (recovered, offered again to another worker, claimed there) is theirs:
    this process writes nothing to it."""
    first = se.failures[0] if se.failures else None
    se.failures.append(error)
    message = f"its end could not be recorded: {_one_line(error)}"
    if first is not None and connection_failed(first, error):
        # The version moved on because the commit landed and only its reply was lost: the
        # cause is the connection, not "someone else".
        message = (
            f"the repository connection failed ({_one_line(first)}), so its end could not be "
            f"recorded as it was ({_one_line(error)})"
        )
    if first is not None:
        message += f"; it had failed: {cause_chain(first)}"
    log.error("step %s: %s", se.step_name, message.splitlines()[0])
    repo.fail_step_execution(se.id, message, written=se.version)
    se.set_status(BatchStatus.FAILED)
    se.persisted_status = BatchStatus.FAILED
    se.exit_status = ExitStatus("FAILED", message)


def connection_failed(cause: BaseException, error: BaseException) -> bool:
    """Whether ``error`` (a lost update) followed the repository connection failing with
    ``cause``: a commit whose reply was lost leaves the row one version further."""
    if not isinstance(error, OptimisticLockingFailure):
        return False
    from batchline.repository.database import is_unreachable  # SQLAlchemy: only on an error

    return is_unreachable(cause)


def cause_chain(exc: BaseException) -> str:
    """The whole chain of causes, innermost last, then the traceback of the outermost."""
    lines: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        lines.append(_one_line(current))
        current = current.__cause__ or current.__context__
    trace = "".join(traceback.format_exception(exc))
    return "\n  caused by: ".join(lines) + "\n\n" + trace


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    line = f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
    where = _server_context(exc)
    return f"{line} ({where})" if where else line


def _server_context(exc: BaseException) -> str | None:
    """Where PostgreSQL says the statement failed: for a COPY, the line and column of the
    value ("COPY trades, line 3, column qty: ..."), which it puts on a CONTEXT line of its own,
    below the first line the failure keeps."""
    orig = getattr(exc, "orig", None) or exc
    context = getattr(getattr(orig, "diag", None), "context", None)
    if not isinstance(context, str) or not context.strip():
        return None
    first = context.strip().splitlines()[0]
    return first if len(first) <= 200 else first[:199] + "…"


def step_failure(message: str, exc: BaseException) -> StepFailure:
    failure = StepFailure(f"{message}: {_one_line(exc)}")
    failure.__cause__ = exc
    return failure
