"""A job: steps run in order, with listeners, parameter checks and a restart policy."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from batchline.errors import ConfigurationError, LaunchRefused, ParameterError
from batchline.flow import iter_steps
from batchline.flowrun import run_flow
from batchline.listeners import callbacks
from batchline.logging import job_scope, log
from batchline.model import JobExecution, utcnow
from batchline.parameters import JobParameters
from batchline.status import BatchStatus, ExitStatus
from batchline.steps.base import (
    Step,
    StepRuntime,
    cause_chain,
    connection_failed,
    execute_step,
)

if TYPE_CHECKING:
    from batchline.flowgraph import FlowGraph


@dataclass
class Job:
    """A named sequence of steps, with its listeners and parameter checks.

    Build one with ``JobBuilder`` and register it with ``Engine.register``.

    Attributes:
        name: the job's name, 1 to 100 characters.
        steps: the steps, run in order unless ``flow`` routes them.
        listeners: job listeners (``before_job``, ``after_job``).
        restartable: False refuses restarts of a failed or stopped execution.
        required_parameters: parameters a launch must give.
        validator: called with the parameters before anything is recorded; raises to refuse.
        timeout: seconds after which the job fails at its next chunk or step boundary.
        flow: the transitions between the steps (``JobBuilder.on``), or None."""

    name: str
    steps: Sequence[Step]
    listeners: list[Any] = field(default_factory=list)
    restartable: bool = True
    required_parameters: tuple[str, ...] = ()
    validator: Callable[[JobParameters], None] | None = None
    timeout: float | None = None
    # Transitions between the steps (JobBuilder's .on(...)); None: the steps run in order.
    flow: FlowGraph | None = None

    def __post_init__(self) -> None:
        if not self.name or len(self.name) > 100:
            raise ConfigurationError(f"job name {self.name!r} must be 1 to 100 characters")
        if not self.steps:
            raise ConfigurationError(f"job {self.name!r} has no steps")
        names = [s.name for s in iter_steps(self.steps)]  # split flows' steps too
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ConfigurationError(f"job {self.name!r} has more than one step named {duplicates}")

    def validate(self, parameters: JobParameters) -> None:
        """Raise ParameterError naming what is missing or wrong, before anything is recorded."""
        missing = [n for n in self.required_parameters if n not in parameters]
        if missing:
            raise ParameterError(
                f"job {self.name!r}: missing required parameter(s) {', '.join(missing)}"
            )
        if self.validator is not None:
            try:
                self.validator(parameters)
            except ParameterError:
                raise
            except ValueError as exc:
                raise ParameterError(f"job {self.name!r}: {exc}") from None


def run_job(job: Job, execution: JobExecution, runtime: StepRuntime) -> JobExecution:
    """Run the steps of an execution in order and record how it ended.

    ``runtime.control`` is this execution's run control (``RunControl.for_job``): whoever runs
    the job keeps it, to stop the job from this process without a database round trip.
    """
    repo = runtime.repository
    with job_scope(job.name, execution.id):
        execution.start_time = utcnow()
        execution.set_status(BatchStatus.STARTED)
        repo.update_job_execution(execution)
        log.info("job %s started with %r", job.name, execution.parameters)
        if runtime.observers is not None:
            runtime.observers.job_started(execution)
        final = BatchStatus.COMPLETED
        exit_status: ExitStatus | None = None
        try:
            for fn in callbacks(job.listeners, "before_job"):
                fn(execution)
            if job.flow is not None:
                final, exit_status = run_flow(job.flow, execution, runtime)
            else:
                final, exit_status = _run_in_order(job, execution, runtime)
        except (Exception, LaunchRefused) as exc:
            execution.failures.append(exc)
            final = BatchStatus.FAILED
            exit_status = ExitStatus("FAILED", cause_chain(exc))
            log.error("job %s failed: %s", job.name, exc)
        _finish(job, execution, final, exit_status, runtime)
    return execution


def _run_in_order(
    job: Job, execution: JobExecution, runtime: StepRuntime
) -> tuple[BatchStatus, ExitStatus | None]:
    """The steps one after the other; the first that does not complete ends the job. When all
    complete, the last step that ran gives the job its exit status (a listener's custom one)."""
    last: ExitStatus | None = None
    for step in job.steps:
        reason = runtime.control.before_step(step.name)
        if reason is not None:
            log.info("job %s stops before step %s: %s", job.name, step.name, reason)
            return BatchStatus.STOPPED, None
        step_execution = execute_step(step, execution, runtime)
        if step_execution is None:
            continue
        if execution.context.dirty:
            runtime.repository.save_job_context(execution)
        last = step_execution.exit_status
        if step_execution.status is not BatchStatus.COMPLETED:
            final = step_execution.status
            # The cause, not the step's exit description: a listener may replace that.
            detail = (
                cause_chain(step_execution.failures[0])
                if step_execution.failures
                else step_execution.exit_status.description
            )
            execution.failures.extend(step_execution.failures)
            return final, ExitStatus(
                final.value, f"step {step.name!r} {final.value}: {detail}".strip()
            )
    return BatchStatus.COMPLETED, last


def _finish(
    job: Job,
    execution: JobExecution,
    final: BatchStatus,
    exit_status: ExitStatus | None,
    runtime: StepRuntime,
) -> None:
    execution.set_status(final)
    execution.exit_status = exit_status or ExitStatus.of(final)
    execution.end_time = utcnow()
    for fn in callbacks(job.listeners, "after_job", reverse=True):
        try:
            fn(execution)
        except Exception as exc:
            execution.failures.append(exc)
            if execution.status is BatchStatus.COMPLETED:
                execution.set_status(BatchStatus.FAILED)
            execution.exit_status = ExitStatus("FAILED", cause_chain(exc))
    try:
        runtime.repository.update_job_execution(execution)
    except Exception as exc:
        _record_failure_instead(job, execution, runtime, exc)
    finally:
        if runtime.observers is not None:
            runtime.observers.job_ended(execution)
    log.info("job %s %s", job.name, execution.status.value)


def _record_failure_instead(
    job: Job, execution: JobExecution, runtime: StepRuntime, error: Exception
) -> None:
    """The job's end could not be written as it is (a context too large or not JSON, a row
    another process recovered): record FAILED with the real cause, steps included, unless the
    row has already ended elsewhere. If even that fails, the outcome is UNKNOWN here and the
    lease lets ``recover`` settle it."""
    repo = runtime.repository
    execution.failures.append(error)
    message = f"job {job.name!r} could not record its end: {error}"
    lost = next((f for f in execution.failures if connection_failed(f, error)), None)
    if lost is not None:
        message = (
            f"job {job.name!r} could not record its end after the repository connection "
            f"failed ({type(lost).__name__}: {lost}): {error}"
        )
    if execution.exit_status.description:
        message += f"; {execution.exit_status.description}"
    log.error("job %s: %s", job.name, message.splitlines()[0])
    try:
        stored = repo.get_job_execution(execution.id)
        if stored.status.is_running:
            stored = repo.mark_failed(execution.id, message)
    except Exception:
        log.exception("job %s: could not record even a failure", job.name)
        execution.set_status(BatchStatus.UNKNOWN)
        raise error from None
    execution.adopt(stored)
