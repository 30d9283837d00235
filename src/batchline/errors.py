"""Every error batchline raises derives from BatchlineError::

BatchlineError
├── ConfigurationError          a job or step built wrong (names the job, step, option)
│   ├── NoSuchJob               a job name the registry does not know
│   ├── NoSuchSchedule          a schedule id the scheduler does not run
│   └── ExecutionContextError   a context that cannot be stored: not JSON, or too large
├── ParameterError              a malformed or missing job parameter (names it)
├── IllegalTransition           a status change the state machine forbids
├── RepositoryError             the job repository failed or refused
│   ├── OptimisticLockingFailure    a row changed under its writer
│   └── NoSuchExecution         an execution id the repository does not hold
│       └── NoSuchBackfill      a backfill id the repository does not hold
├── LaunchRefused               the instance may not run now
│   ├── JobExecutionAlreadyRunning
│   ├── JobInstanceAlreadyComplete
│   ├── JobInstanceAlreadyExists    a trigger asked for a first execution only
│   ├── JobRestartRefused       the job is not restartable, or its state is UNKNOWN
│   ├── StartLimitExceeded      a step has been started start_limit times
│   └── BackfillRunning         a backfill another live process runs
├── JobExecutionNotRunning      stop or recover asked of an execution that is not running
├── LeaseLost                   this process can no longer prove it owns its execution
├── OutputInUse                 an output file is still held open by another process
├── ItemReadError               a record that could not be read (file, line, field, raw input)
├── StepTimeout                 a step or job ran past its time limit
├── SkipLimitExceeded           more items skipped than the step allows
├── FlowFailure                 a flow's exit status matched none of its node's transitions
└── StepFailure                 wraps what a step raised, with job, step and position
    └── WorkerLost              a partition's worker process died before recording an end
"""

from __future__ import annotations


class BatchlineError(Exception):
    """Base of every error batchline raises."""


class ConfigurationError(BatchlineError):
    """A job, step or engine was configured wrongly."""


class NoSuchJob(ConfigurationError):
    """The registry holds no job of that name."""


class NoSuchSchedule(ConfigurationError):
    """The scheduler runs no schedule of that id."""


class ExecutionContextError(ConfigurationError):
    """A job or step context that cannot be stored: a value that is not JSON (names the key),
    or more bytes than the repository's context column takes (names the largest keys)."""


class ParameterError(BatchlineError, ValueError):
    """A job parameter is malformed, of the wrong type, or missing."""


class IllegalTransition(BatchlineError):
    """A status transition that the state machine forbids."""


class RepositoryError(BatchlineError):
    """The job repository failed to record or find something."""


class OptimisticLockingFailure(RepositoryError):
    """A row's version changed between read and write: someone else wrote it."""


class NoSuchExecution(RepositoryError):
    """No job execution with that id."""


class NoSuchBackfill(NoSuchExecution):
    """No backfill with that id."""


class LaunchRefused(BatchlineError):
    """The job instance may not be launched now."""


class JobExecutionAlreadyRunning(LaunchRefused):
    """An execution of this job instance is running (STARTING, STARTED or STOPPING)."""


class JobInstanceAlreadyComplete(LaunchRefused):
    """This job instance completed (or was abandoned); new parameters make a new instance."""


class JobInstanceAlreadyExists(LaunchRefused):
    """A launch asked to create a new instance only, and the instance has run before."""


class JobRestartRefused(LaunchRefused):
    """The job may not be restarted: not restartable, or its last state is UNKNOWN."""


class StartLimitExceeded(LaunchRefused):
    """A step was started as often as its start_limit allows."""


class BackfillRunning(LaunchRefused):
    """The backfill is run by another process whose heartbeat lease still holds."""


class JobExecutionNotRunning(BatchlineError):
    """Stop or recover was asked of an execution that has already ended: nothing to do."""


class LeaseLost(BatchlineError):
    """This process can no longer prove it holds its execution's lease (its heartbeat is too
    old, or another process recovered the execution): it writes nothing more."""


class OutputInUse(BatchlineError):
    """An output file is held open by another process: a stale execution may still write it."""


class StepTimeout(BatchlineError):
    """A step or job ran past its time limit; it ends FAILED at a chunk boundary."""


class SkipLimitExceeded(BatchlineError):
    """More items were skipped than the step's skip limit allows."""


class FlowFailure(BatchlineError):
    """A step's or decider's exit status matched none of its transitions: the job failed."""


class StepFailure(BatchlineError):
    """What a step raised, wrapped with where it happened (job, step, chunk, item)."""


class WorkerLost(StepFailure):
    """A partition's worker process died (killed, out of memory) before it recorded an end."""


class ItemReadError(BatchlineError):
    """A record could not be read or parsed.

    The reader has already moved past the bad record when it raises this, so a skip policy can
    skip it and the next ``read()`` goes on with the following record. ``source`` is the file or
    table, ``line`` the 1-based line (or key), ``field`` the field name, ``raw`` the raw input.
    """

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        line: int | str | None = None,
        field: str | None = None,
        raw: str | None = None,
    ) -> None:
        where = ", ".join(
            part
            for part in (
                source,
                f"line {line}" if line is not None else None,
                f"field {field!r}" if field is not None else None,
            )
            if part
        )
        super().__init__(f"{where}: {message}" if where else message)
        self.source = source
        self.line = line
        self.field = field
        self.raw = raw
