"""A job step: a step whose work is to run another job (Spring's JobStep).

The child is a job of its own, with its own instance: its parameters are the parent's (or what
``parameters(step_execution)`` returns), so each parent instance has its child instance. They
are computed once and kept in the step's context (``batchline.child_parameters``) before the
child is launched: a parent restart launches the same child instance again with the same
parameters (a changed non-identifying value changes nothing), and it resumes where it stopped
(its completed steps skipped, its interrupted step from its last commit). A child instance that
completed before this step first launched it fails the step (Spring's JobStep:
JobInstanceAlreadyComplete), unless the step was built with ``allow_completed_child=True``;
the one this step launched itself, completed by an execution whose parent died before
recording it, completes the step. The child's exit status
becomes the job step's, so it routes the parent's flow. A stop of the parent reaches the child
(at once in the same process, at the engine's next heartbeat from another one); the child's
STOPPED makes the step, then the parent, STOPPED.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from batchline.errors import ConfigurationError, JobInstanceAlreadyComplete, StepFailure
from batchline.logging import log
from batchline.model import ExecutionContext, StepContribution, StepExecution
from batchline.parameters import JobParameters
from batchline.status import BatchStatus
from batchline.steps.base import StepOptions, StepRuntime


class ChildJob(Protocol):
    """What a job step holds of its child: a ``batchline.Job``, which the engine runs (the
    steps layer does not import the job layer above it)."""

    name: str


# Where the job step records its child's last execution, for operators.
CHILD_KEY = "batchline.child_execution"
# The child's parameters as first computed: a restart launches the child with these.
PARAMETERS_KEY = "batchline.child_parameters"

ParametersSpec = Callable[[StepExecution], JobParameters | Mapping[str, Any]] | None


class JobStep:
    """Runs ``job`` as this step's work."""

    def __init__(
        self,
        name: str,
        job: ChildJob,
        parameters: ParametersSpec = None,
        options: StepOptions | None = None,
        *,
        allow_completed_child: bool = False,
    ) -> None:
        self.name = name
        self.job = job
        self.parameters = parameters
        self.allow_completed_child = allow_completed_child
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

    @staticmethod
    def _keep(se: StepExecution, runtime: StepRuntime, params: JobParameters | None) -> None:
        """Commit the child's parameters in the step's context before the child exists (None:
        forget them, the child not being this step's)."""
        context = ExecutionContext(dict(se.context))
        if params is None:
            context.pop(PARAMETERS_KEY, None)
        else:
            context[PARAMETERS_KEY] = params.to_json()
        progress = StepContribution(context)
        runtime.repository.save_chunk_progress(se, progress)
        progress.apply(se)

    def execute(self, se: StepExecution, runtime: StepRuntime) -> None:
        parent = se.job_execution.job_name if se.job_execution else "?"
        where = f"job {parent!r} step {self.name!r}"
        if runtime.run_child is None:
            raise ConfigurationError(f"{where} runs job {self.job.name!r}: only under an Engine")
        stored = se.context.get(PARAMETERS_KEY)
        if stored is not None:
            params = JobParameters.from_json(stored)
        else:
            params = self.child_parameters(se)
            self._keep(se, runtime, params)
        try:
            child = runtime.run_child(self.job, params, runtime.control)
        except JobInstanceAlreadyComplete as exc:
            if stored is not None:
                # Launched by this step before: completed in an execution whose parent
                # died before recording it.
                log.info("%s: child job %s had already completed", where, self.job.name)
                return
            if not self.allow_completed_child:
                # Not this step's child: a restart must refuse it again, not take it as one
                # it launched itself.
                self._keep(se, runtime, None)
                raise JobInstanceAlreadyComplete(
                    f"{where}: {exc}; build the step with .job(..., allow_completed_child=True) "
                    "to accept a child that completed before"
                ) from None
            log.info("%s: child job %s had already completed: accepted", where, self.job.name)
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
