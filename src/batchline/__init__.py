"""batchline: restartable batch jobs for Python.

Jobs are sequences of steps; a step is a task run once or a chunk loop (read, process, write, one
transaction per chunk). Every run is recorded in a job repository, so a failed, stopped or killed
job restarts where it stopped.
"""

from batchline.builders import JobBuilder, StepBuilder
from batchline.completion import CompletionPolicy, CountOrTimeCompletion
from batchline.engine import Engine, JobHandle
from batchline.errors import (
    BatchlineError,
    ConfigurationError,
    IllegalTransition,
    ItemReadError,
    JobExecutionAlreadyRunning,
    JobInstanceAlreadyComplete,
    JobInstanceAlreadyExists,
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
from batchline.faults import (
    Backoff,
    FaultTolerance,
    RetryListener,
    SkipLimitExceeded,
    SkipListener,
    SkipPolicy,
)
from batchline.flow import Flow, Split
from batchline.items import (
    ChecksumTask,
    Chunk,
    CsvRecordReader,
    CursorReader,
    DelimitedReader,
    DelimitedWriter,
    Field,
    FixedWidthReader,
    FixedWidthWriter,
    ItemProcessor,
    ItemReader,
    ItemStream,
    ItemWriter,
    IterableReader,
    JsonLinesReader,
    JsonLinesWriter,
    KeysetReader,
    ListMapper,
    ListReader,
    ListWriter,
    MergeTask,
    ParquetReader,
    ParquetWriter,
    PostgresCopyWriter,
    RecordMapper,
    SqlInsertWriter,
    SqlWriter,
    TransferTask,
    VerifyChecksumTask,
)
from batchline.items import render as render_path
from batchline.job import Job
from batchline.listeners import ChunkListener, JobListener, StepListener
from batchline.logging import ExecutionFilter, get_logger
from batchline.model import (
    ExecutionContext,
    JobExecution,
    JobInstance,
    SkippedItem,
    StepContext,
    StepExecution,
)
from batchline.parameters import JobParameter, JobParameters
from batchline.progress import ProgressReporter
from batchline.registry import JobRegistry
from batchline.repository import JobRepository, SqlJobRepository, create_engine, migrate
from batchline.status import BatchStatus, ExitStatus
from batchline.steps import ChunkStep, SimpleStep, Step
from batchline.steps.chunk import StepTimeout
from batchline.steps.partition import (
    Aggregator,
    Partition,
    Partitioner,
    PartitionHandler,
    PartitionListener,
    PartitionStep,
)
from batchline.steps.partition_handlers import (
    ProcessPartitionHandler,
    ThreadPartitionHandler,
    WorkerLost,
)
from batchline.transaction import (
    NoTransactionManager,
    SqlTransactionManager,
    Transaction,
    TransactionManager,
)
from batchline.triggers import FolderWatcher, JobScheduler

__version__ = "0.1.0"

__all__ = [
    "Aggregator",
    "Backoff",
    "BatchStatus",
    "BatchlineError",
    "ChecksumTask",
    "Chunk",
    "ChunkListener",
    "ChunkStep",
    "CompletionPolicy",
    "ConfigurationError",
    "CountOrTimeCompletion",
    "CsvRecordReader",
    "CursorReader",
    "DelimitedReader",
    "DelimitedWriter",
    "Engine",
    "ExecutionContext",
    "ExecutionFilter",
    "ExitStatus",
    "FaultTolerance",
    "Field",
    "FixedWidthReader",
    "FixedWidthWriter",
    "Flow",
    "FolderWatcher",
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
    "JobInstanceAlreadyExists",
    "JobListener",
    "JobParameter",
    "JobParameters",
    "JobRegistry",
    "JobRepository",
    "JobRestartRefused",
    "JobScheduler",
    "JsonLinesReader",
    "JsonLinesWriter",
    "KeysetReader",
    "LaunchRefused",
    "ListMapper",
    "ListReader",
    "ListWriter",
    "MergeTask",
    "NoSuchExecution",
    "NoSuchJob",
    "NoTransactionManager",
    "OptimisticLockingFailure",
    "ParameterError",
    "ParquetReader",
    "ParquetWriter",
    "Partition",
    "PartitionHandler",
    "PartitionListener",
    "PartitionStep",
    "Partitioner",
    "PostgresCopyWriter",
    "ProcessPartitionHandler",
    "ProgressReporter",
    "RecordMapper",
    "RepositoryError",
    "RetryListener",
    "SimpleStep",
    "SkipLimitExceeded",
    "SkipListener",
    "SkipPolicy",
    "SkippedItem",
    "Split",
    "SqlInsertWriter",
    "SqlJobRepository",
    "SqlTransactionManager",
    "SqlWriter",
    "StartLimitExceeded",
    "Step",
    "StepBuilder",
    "StepContext",
    "StepExecution",
    "StepFailure",
    "StepListener",
    "StepTimeout",
    "ThreadPartitionHandler",
    "Transaction",
    "TransactionManager",
    "TransferTask",
    "VerifyChecksumTask",
    "WorkerLost",
    "__version__",
    "create_engine",
    "get_logger",
    "migrate",
    "render_path",
]
