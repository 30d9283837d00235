"""batchline: restartable batch jobs for Python.

Jobs are sequences of steps; a step is a task run once or a chunk loop (read, process, write, one
transaction per chunk). Every run is recorded in a job repository, so a failed, stopped or killed
job restarts where it stopped.

Every public name is listed once in ``_EXPORTS`` with the module that defines it and is imported
on first use, so ``import batchline`` stays cheap: SQLAlchemy, rich, fsspec and APScheduler load
only when something needs them. ``docs/api.md`` describes each name; a test keeps the three
(``_EXPORTS``, ``__all__``, the docs) and the imports below in step.
"""

import typing as _typing

from batchline import _lazy

__version__ = "0.3.0.dev0"
"""This batchline's version, a PEP 440 version string."""

_EXPORTS: dict[str, str] = {
    "Aggregator": "batchline.steps.partition",
    "AlertRule": "batchline.alerts.rules",
    "AlertRules": "batchline.alerts.rules",
    "AlertWatcher": "batchline.alerts.watcher",
    "BackfillHandle": "batchline.backfill.operations",
    "BackfillRange": "batchline.backfill.ranges",
    "BackfillRunning": "batchline.errors",
    "BackfillState": "batchline.backfill.grid",
    "Backoff": "batchline.faults",
    "BatchStatus": "batchline.status",
    "BatchlineError": "batchline.errors",
    "ChecksumTask": "batchline.items.files.checksums",
    "Chunk": "batchline.items.base",
    "ChunkListener": "batchline.listeners",
    "ChunkStep": "batchline.steps.chunk",
    "CompletionPolicy": "batchline.completion",
    "CompositeWriter": "batchline.items.composite",
    "ConfigurationError": "batchline.errors",
    "Count": "batchline.repository.filters",
    "CountOrTimeCompletion": "batchline.completion",
    "CsvRecordReader": "batchline.items.files.records",
    "CursorReader": "batchline.items.sql_readers",
    "Decider": "batchline.flowgraph",
    "DelimitedReader": "batchline.items.files.delimited",
    "DelimitedWriter": "batchline.items.files.delimited",
    "Engine": "batchline.engine",
    "ExecutionContext": "batchline.model",
    "ExecutionFilter": "batchline.logging",
    "ExecutionLogs": "batchline.repository.logs",
    "ExecutionQuery": "batchline.repository.filters",
    "ExitStatus": "batchline.status",
    "FaultTolerance": "batchline.faults",
    "Field": "batchline.items.files.mapping",
    "FixedWidthReader": "batchline.items.files.fixed_width",
    "FixedWidthWriter": "batchline.items.files.fixed_width",
    "Flow": "batchline.flow",
    "FlowFailure": "batchline.errors",
    "FolderWatcher": "batchline.triggers.files",
    "IllegalTransition": "batchline.errors",
    "ItemProcessor": "batchline.items.base",
    "ItemReadError": "batchline.errors",
    "ItemReader": "batchline.items.base",
    "ItemStream": "batchline.items.base",
    "ItemWriter": "batchline.items.base",
    "IterableReader": "batchline.items.base",
    "Job": "batchline.job",
    "JobBuilder": "batchline.builders",
    "JobExecution": "batchline.model",
    "JobExecutionAlreadyRunning": "batchline.errors",
    "JobHandle": "batchline.engine",
    "JobInstance": "batchline.model",
    "JobInstanceAlreadyComplete": "batchline.errors",
    "JobInstanceAlreadyExists": "batchline.errors",
    "JobListener": "batchline.listeners",
    "JobParameter": "batchline.parameters",
    "JobParameters": "batchline.parameters",
    "JobRegistry": "batchline.registry",
    "JobRepository": "batchline.repository.base",
    "JobRestartRefused": "batchline.errors",
    "JobScheduler": "batchline.triggers.schedule",
    "JobSummary": "batchline.repository.filters",
    "JsonFormatter": "batchline.logging",
    "JsonLinesReader": "batchline.items.files.jsonl",
    "JsonLinesWriter": "batchline.items.files.jsonl",
    "KeysetReader": "batchline.items.sql_readers",
    "JobExecutionNotRunning": "batchline.errors",
    "LaunchRefused": "batchline.errors",
    "LeaseLost": "batchline.errors",
    "ListMapper": "batchline.items.files.mapping",
    "ListReader": "batchline.items.memory",
    "ListWriter": "batchline.items.memory",
    "MergeTask": "batchline.items.files.merge",
    "MySqlLoadDataWriter": "batchline.items.mysql_load",
    "NoSuchBackfill": "batchline.errors",
    "NoSuchExecution": "batchline.errors",
    "NoSuchJob": "batchline.errors",
    "NoSuchSchedule": "batchline.errors",
    "NoTransactionManager": "batchline.transaction",
    "Observer": "batchline.observers",
    "OptimisticLockingFailure": "batchline.errors",
    "OutputInUse": "batchline.errors",
    "Page": "batchline.repository.filters",
    "ParameterError": "batchline.errors",
    "ParquetReader": "batchline.items.parquet",
    "ParquetWriter": "batchline.items.parquet",
    "Partition": "batchline.steps.partition",
    "PartitionHandler": "batchline.steps.partition",
    "PartitionListener": "batchline.steps.partition",
    "PartitionStep": "batchline.steps.partition",
    "Partitioner": "batchline.steps.partition",
    "PostgresCopyWriter": "batchline.items.postgres_copy",
    "ProcessPartitionHandler": "batchline.workers",
    "ProgressReporter": "batchline.progress",
    "RecordMapper": "batchline.items.files.mapping",
    "RepositoryError": "batchline.errors",
    "RetryListener": "batchline.faults",
    "SimpleStep": "batchline.steps.simple",
    "SkipLimitExceeded": "batchline.errors",
    "SkipListener": "batchline.faults",
    "SkipPolicy": "batchline.faults",
    "SkippedItem": "batchline.model",
    "Split": "batchline.flow",
    "SqlInsertWriter": "batchline.items.sql",
    "SqlJobRepository": "batchline.repository.sql",
    "SqlTransactionManager": "batchline.transaction",
    "SqlWriter": "batchline.items.sql_writers",
    "StartLimitExceeded": "batchline.errors",
    "Step": "batchline.steps.base",
    "StepBuilder": "batchline.builders",
    "StepContext": "batchline.model",
    "StepExecution": "batchline.model",
    "StepFailure": "batchline.errors",
    "StepListener": "batchline.listeners",
    "StepTimeout": "batchline.errors",
    "ThreadPartitionHandler": "batchline.steps.partition_threads",
    "Transaction": "batchline.transaction",
    "TransactionManager": "batchline.transaction",
    "TransferTask": "batchline.items.files.transfer",
    "VerifyChecksumTask": "batchline.items.files.checksums",
    "WorkerLost": "batchline.errors",
    "create_engine": "batchline.repository.database",
    "get_logger": "batchline.logging",
    "json_logging": "batchline.logging",
    "migrate": "batchline.repository.database",
    "render_path": "batchline.items.files.templates:render",
}

__all__ = [
    "Aggregator",
    "AlertRule",
    "AlertRules",
    "AlertWatcher",
    "BackfillHandle",
    "BackfillRange",
    "BackfillRunning",
    "BackfillState",
    "Backoff",
    "BatchStatus",
    "BatchlineError",
    "ChecksumTask",
    "Chunk",
    "ChunkListener",
    "ChunkStep",
    "CompletionPolicy",
    "CompositeWriter",
    "ConfigurationError",
    "Count",
    "CountOrTimeCompletion",
    "CsvRecordReader",
    "CursorReader",
    "Decider",
    "DelimitedReader",
    "DelimitedWriter",
    "Engine",
    "ExecutionContext",
    "ExecutionFilter",
    "ExecutionLogs",
    "ExecutionQuery",
    "ExitStatus",
    "FaultTolerance",
    "Field",
    "FixedWidthReader",
    "FixedWidthWriter",
    "Flow",
    "FlowFailure",
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
    "JobExecutionNotRunning",
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
    "JobSummary",
    "JsonFormatter",
    "JsonLinesReader",
    "JsonLinesWriter",
    "KeysetReader",
    "LaunchRefused",
    "LeaseLost",
    "ListMapper",
    "ListReader",
    "ListWriter",
    "MergeTask",
    "MySqlLoadDataWriter",
    "NoSuchBackfill",
    "NoSuchExecution",
    "NoSuchJob",
    "NoSuchSchedule",
    "NoTransactionManager",
    "Observer",
    "OptimisticLockingFailure",
    "OutputInUse",
    "Page",
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
    "json_logging",
    "migrate",
    "render_path",
]

if _typing.TYPE_CHECKING:
    from batchline.alerts.rules import AlertRule, AlertRules
    from batchline.alerts.watcher import AlertWatcher
    from batchline.backfill.grid import BackfillState
    from batchline.backfill.operations import BackfillHandle
    from batchline.backfill.ranges import BackfillRange
    from batchline.builders import JobBuilder, StepBuilder
    from batchline.completion import CompletionPolicy, CountOrTimeCompletion
    from batchline.engine import Engine, JobHandle
    from batchline.errors import (
        BackfillRunning,
        BatchlineError,
        ConfigurationError,
        FlowFailure,
        IllegalTransition,
        ItemReadError,
        JobExecutionAlreadyRunning,
        JobExecutionNotRunning,
        JobInstanceAlreadyComplete,
        JobInstanceAlreadyExists,
        JobRestartRefused,
        LaunchRefused,
        LeaseLost,
        NoSuchBackfill,
        NoSuchExecution,
        NoSuchJob,
        NoSuchSchedule,
        OptimisticLockingFailure,
        OutputInUse,
        ParameterError,
        RepositoryError,
        SkipLimitExceeded,
        StartLimitExceeded,
        StepFailure,
        StepTimeout,
        WorkerLost,
    )
    from batchline.faults import (
        Backoff,
        FaultTolerance,
        RetryListener,
        SkipListener,
        SkipPolicy,
    )
    from batchline.flow import Flow, Split
    from batchline.flowgraph import Decider
    from batchline.items.base import (
        Chunk,
        ItemProcessor,
        ItemReader,
        ItemStream,
        ItemWriter,
        IterableReader,
    )
    from batchline.items.composite import CompositeWriter
    from batchline.items.files.checksums import ChecksumTask, VerifyChecksumTask
    from batchline.items.files.delimited import DelimitedReader, DelimitedWriter
    from batchline.items.files.fixed_width import FixedWidthReader, FixedWidthWriter
    from batchline.items.files.jsonl import JsonLinesReader, JsonLinesWriter
    from batchline.items.files.mapping import Field, ListMapper, RecordMapper
    from batchline.items.files.merge import MergeTask
    from batchline.items.files.records import CsvRecordReader
    from batchline.items.files.templates import render as render_path
    from batchline.items.files.transfer import TransferTask
    from batchline.items.memory import ListReader, ListWriter
    from batchline.items.mysql_load import MySqlLoadDataWriter
    from batchline.items.parquet import ParquetReader, ParquetWriter
    from batchline.items.postgres_copy import PostgresCopyWriter
    from batchline.items.sql import SqlInsertWriter
    from batchline.items.sql_readers import CursorReader, KeysetReader
    from batchline.items.sql_writers import SqlWriter
    from batchline.job import Job
    from batchline.listeners import ChunkListener, JobListener, StepListener
    from batchline.logging import ExecutionFilter, JsonFormatter, get_logger, json_logging
    from batchline.model import (
        ExecutionContext,
        JobExecution,
        JobInstance,
        SkippedItem,
        StepContext,
        StepExecution,
    )
    from batchline.observers import Observer
    from batchline.parameters import JobParameter, JobParameters
    from batchline.progress import ProgressReporter
    from batchline.registry import JobRegistry
    from batchline.repository.base import JobRepository
    from batchline.repository.database import create_engine, migrate
    from batchline.repository.filters import Count, ExecutionQuery, JobSummary, Page
    from batchline.repository.logs import ExecutionLogs
    from batchline.repository.sql import SqlJobRepository
    from batchline.status import BatchStatus, ExitStatus
    from batchline.steps.base import Step
    from batchline.steps.chunk import ChunkStep
    from batchline.steps.partition import (
        Aggregator,
        Partition,
        Partitioner,
        PartitionHandler,
        PartitionListener,
        PartitionStep,
    )
    from batchline.steps.partition_threads import ThreadPartitionHandler
    from batchline.steps.simple import SimpleStep
    from batchline.transaction import (
        NoTransactionManager,
        SqlTransactionManager,
        Transaction,
        TransactionManager,
    )
    from batchline.triggers.files import FolderWatcher
    from batchline.triggers.schedule import JobScheduler
    from batchline.workers import ProcessPartitionHandler
else:
    __getattr__, __dir__ = _lazy.exports(__name__, _EXPORTS, __all__)
