"""Splits: flows of steps that run side by side in one job, which waits for all of them.

A Split is a step whose work is to run its flows in parallel on the engine's step pool, each
flow's steps in order through ``execute_step``: every inner step is an ordinary StepExecution of the
job execution, so a restart skips the inner steps that completed, and the split itself (recorded
as a step, without counters of its own) is skipped once all of its flows completed. As in Spring
Batch, a flow that fails does not stop its siblings: they run to their end, then the split fails.
"""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from batchline.errors import ConfigurationError, StepFailure
from batchline.logging import log
from batchline.model import JobExecution, StepExecution
from batchline.pools import WorkerPool
from batchline.status import BatchStatus
from batchline.steps.base import Step, StepOptions, StepRuntime, execute_step


@dataclass
class Flow:
    """Steps run one after the other inside a split."""

    name: str
    steps: Sequence[Step]

    def __post_init__(self) -> None:
        if not self.steps:
            raise ConfigurationError(f"flow {self.name!r} has no steps")


@dataclass
class _FlowEnd:
    status: BatchStatus
    step: StepExecution | None = None


class Split:
    """Runs flows in parallel and ends with the most severe of their statuses."""

    def __init__(
        self,
        name: str,
        flows: Sequence[Flow | Sequence[Step]],
        options: StepOptions | None = None,
    ) -> None:
        if not flows:
            raise ConfigurationError(f"split {name!r} has no flows")
        self.name = name
        self.flows = [
            f if isinstance(f, Flow) else Flow(f"{name}.{i}", list(f))
            for i, f in enumerate(flows, 1)
        ]
        opts = options or StepOptions()
        self.allow_start_if_complete = opts.allow_start_if_complete
        self.start_limit = opts.start_limit
        self.listeners = list(opts.listeners)

    def __repr__(self) -> str:
        return f"Split({self.name!r}, flows={[f.name for f in self.flows]})"

    def execute(self, se: StepExecution, runtime: StepRuntime) -> None:
        job_execution = se.job_execution
        if job_execution is None:
            raise ConfigurationError(f"split {self.name!r} runs only inside a job execution")
        tasks = [
            functools.partial(
                contextvars.copy_context().run, self._run_flow, flow, job_execution, runtime
            )
            for flow in self.flows
        ]
        own: WorkerPool | None = None
        pool = runtime.step_pool
        if pool is None:
            pool = own = WorkerPool(f"batchline-{self.name}", len(tasks))
        try:
            outcomes = pool.run_all(tasks)
        finally:
            if own is not None:
                own.shutdown()
        worst = BatchStatus.COMPLETED
        failure: BaseException | None = None
        for flow, outcome in zip(self.flows, outcomes, strict=True):
            if outcome.error is not None:
                worst = BatchStatus.FAILED
                failure = failure or _flow_failure(self.name, flow, None, outcome.error)
                continue
            end = outcome.value
            assert end is not None
            worst = worst.upgrade(end.status)
            if end.status is BatchStatus.FAILED and failure is None:
                cause = end.step.failures[0] if end.step and end.step.failures else None
                failure = _flow_failure(self.name, flow, end.step, cause)
        if failure is not None:
            raise failure
        if worst is not BatchStatus.COMPLETED:
            se.set_status(BatchStatus.STOPPING)

    def _run_flow(self, flow: Flow, execution: JobExecution, runtime: StepRuntime) -> _FlowEnd:
        for step in flow.steps:
            reason = runtime.control.before_step(step.name)
            if reason is not None:
                log.info(
                    "split %s: flow %s stops before step %s: %s",
                    self.name,
                    flow.name,
                    step.name,
                    reason,
                )
                return _FlowEnd(BatchStatus.STOPPED)
            done = execute_step(step, execution, runtime)
            if done is not None and done.status is not BatchStatus.COMPLETED:
                return _FlowEnd(done.status, done)
        return _FlowEnd(BatchStatus.COMPLETED)


def _flow_failure(
    split: str, flow: Flow, step: StepExecution | None, cause: BaseException | None
) -> StepFailure:
    where = f"split {split!r} flow {flow.name!r}"
    if step is not None:
        where += f" step {step.step_name!r}"
        detail = step.exit_status.description.strip().splitlines()
        what = detail[0] if detail else "FAILED"
    else:
        what = f"{type(cause).__name__}: {cause}" if cause else "FAILED"
    failure = StepFailure(f"{where} failed: {what}")
    failure.__cause__ = cause
    return failure


def iter_steps(steps: Sequence[Step]) -> Iterator[Step]:
    """Every step of a job, those inside splits' flows included, depth first."""
    for step in steps:
        yield step
        if isinstance(step, Split):
            for flow in step.flows:
                yield from iter_steps(flow.steps)


def find_step(steps: Sequence[Step], name: str) -> Step | None:
    """The step of that name anywhere in a job (inside splits too), or None."""
    return next((s for s in iter_steps(steps) if s.name == name), None)
