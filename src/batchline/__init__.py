"""batchline: restartable batch jobs for Python.

Jobs are sequences of steps; a step is a task run once or a chunk loop (read, process, write, one
transaction per chunk). Every run is recorded in a job repository, so a failed, stopped or killed
job restarts where it stopped.
"""

from batchline.builders import JobBuilder, StepBuilder
from batchline.engine import Engine, JobHandle
from batchline.errors import (
    BatchlineError,
    ConfigurationError,
    IllegalTransition,
    ItemReadError,
    JobExecutionAlreadyRunning,
    JobInstanceAlreadyComplete,
    JobRestartRefused,
    LaunchRefused,
    NoSuchExecution,
    NoSuchJob,
    OptimisticLockingFailure,
    ParameterError,
    RepositoryError,
    StartLimitExceeded,
    StepFailure,
)
from batchline.items import (
    Chunk,
    ItemProcessor,
    ItemReader,
    ItemStream,
    ItemWriter,
    IterableReader,
    ListWriter,
    SqlInsertWriter,
)
from batchline.job import Job
from batchline.listeners import ChunkListener, JobListener, StepListener
from batchline.logging import ExecutionFilter, get_logger
from batchline.model import (
    ExecutionContext,
    JobExecution,
    JobInstance,
    StepContext,
    StepExecution,
)
from batchline.parameters import JobParameter, JobParameters
from batchline.registry import JobRegistry
from batchline.repository import JobRepository, SqlJobRepository, create_engine, migrate
from batchline.status import BatchStatus, ExitStatus
from batchline.steps import ChunkStep, SimpleStep, Step
from batchline.transaction import (
    NoTransactionManager,
    SqlTransactionManager,
    Transaction,
    TransactionManager,
)

__version__ = "0.1.0"

__all__ = [
    "BatchStatus",
    "BatchlineError",
    "Chunk",
    "ChunkListener",
    "ChunkStep",
    "ConfigurationError",
    "Engine",
    "ExecutionContext",
    "ExecutionFilter",
    "ExitStatus",
    "IllegalTransition",
    "ItemProcessor",
    "ItemReadError",
    "ItemReader",
    "ItemStream",
    "ItemWriter",
    "IterableReader",
    "Job",
    "JobBuilder",
    "JobExecution",
    "JobExecutionAlreadyRunning",
    "JobHandle",
    "JobInstance",
    "JobInstanceAlreadyComplete",
    "JobListener",
    "JobParameter",
    "JobParameters",
    "JobRegistry",
    "JobRepository",
    "JobRestartRefused",
    "LaunchRefused",
    "ListWriter",
    "NoSuchExecution",
    "NoSuchJob",
    "NoTransactionManager",
    "OptimisticLockingFailure",
    "ParameterError",
    "RepositoryError",
    "SimpleStep",
    "SqlInsertWriter",
    "SqlJobRepository",
    "SqlTransactionManager",
    "StartLimitExceeded",
    "Step",
    "StepBuilder",
    "StepContext",
    "StepExecution",
    "StepFailure",
    "StepListener",
    "Transaction",
    "TransactionManager",
    "__version__",
    "create_engine",
    "get_logger",
    "migrate",
]
