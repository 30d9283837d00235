"""A job step: a step whose work is to run another job (Spring's JobStep).

The child is a job of its own, with its own instance: its parameters are the parent's (or what
``parameters(step_execution)`` returns), so each parent instance has its child instance. A
parent restart launches the same child instance again, which resumes where it stopped (its
completed steps skipped, its interrupted step from its last commit). The child's exit status
becomes the job step's, so it routes the parent's flow. A stop of the parent reaches the child
(at once in the same process, at the engine's next heartbeat from another one); the child's
STOPPED makes the step, then the parent, STOPPED.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from batchline.errors import ConfigurationError, JobInstanceAlreadyComplete, StepFailure
from batchline.logging import log
from batchline.model import StepExecution
from batchline.parameters import JobParameters
from batchline.status import BatchStatus
from batchline.steps.base import StepOptions, StepRuntime


class ChildJob(Protocol):
    """What a job step holds of its child: a ``batchline.Job``, which the engine runs (the
    steps layer does not import the job layer above it)."""

    name: str


# Where the job step records its child's last execution, for operators.
CHILD_KEY = "batchline.child_execution"

ParametersSpec = Callable[[StepExecution], JobParameters | Mapping[str, Any]] | None


class JobStep:
    """Runs ``job`` as this step's work."""

    def __init__(
        self,
        name: str,
        job: ChildJob,
        parameters: ParametersSpec = None,
        options: StepOptions | None = None,
    ) -> None:
        self.name = name
        self.job = job
        self.parameters = parameters
        opts = options or StepOptions()
        self.allow_start_if_complete = opts.allow_start_if_complete
        self.start_limit = opts.start_limit
        self.listeners = list(opts.listeners)

    def __repr__(self) -> str:
        return f"JobStep({self.name!r}, job={self.job.name!r})"

    def child_parameters(self, se: StepExecution) -> JobParameters:
        if self.parameters is None:
            assert se.job_execution is not None
            return se.job_execution.parameters
        made = self.parameters(se)
        return made if isinstance(made, JobParameters) else JobParameters(made)

    def execute(self, se: StepExecution, runtime: StepRuntime) -> None:
        parent = se.job_execution.job_name if se.job_execution else "?"
        where = f"job {parent!r} step {self.name!r}"
        if runtime.run_child is None:
            raise ConfigurationError(f"{where} runs job {self.job.name!r}: only under an Engine")
        try:
            child = runtime.run_child(self.job, self.child_parameters(se), runtime.control)
        except JobInstanceAlreadyComplete:
            # The child completed in an earlier execution whose parent did not record it.
            log.info("%s: child job %s had already completed", where, self.job.name)
            return
        se.context[CHILD_KEY] = child.id
        if child.status is BatchStatus.COMPLETED:
            se.exit_status = child.exit_status
            return
        if child.status is BatchStatus.STOPPED:
            se.set_status(BatchStatus.STOPPING)
            return
        lines = child.exit_status.description.strip().splitlines()
        failure = StepFailure(
            f"{where}: child job {self.job.name!r} execution {child.id} ended "
            f"{child.status.value}: {lines[0] if lines else child.exit_status.code}"
        )
        if child.failures:
            failure.__cause__ = child.failures[0]
        raise failure
