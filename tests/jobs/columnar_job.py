"""A columnar job, killable at chosen points: CSV into the repository's database, or Parquet
into Parquet. Run as a process by tests/test_columnar_crash.py::

    python -m tests.jobs.columnar_job URL MODE SOURCE TARGET --rows N [--restart EXECUTION_ID]

MODE ``db`` reads CSV (with bad rows, skipped) into table ``trades_out`` of the repository's
database: PostgresCopyWriter on PostgreSQL, MySqlLoadDataWriter on MariaDB, ArrowSqlWriter on
SQLite. MODE ``parquet`` reads Parquet and writes Parquet. The processor drops rows with
qty <= 0 and adds ``twice`` = 2 * qty. ``BATCHLINE_COLUMNAR_CRASH=point:n`` SIGKILLs the
process the n-th time it passes ``reader`` (in read_batch), ``before_commit`` (after the write,
before the commit) or ``after_commit`` (an after-chunk listener).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from batchline import BatchStatus, Chunk, Engine, ExecutionContext, Job, JobBuilder, StepBuilder
from batchline.items.arrow import (
    ArrowCsvReader,
    ArrowParquetReader,
    ArrowParquetWriter,
    ArrowSqlWriter,
)
from batchline.items.mysql_load import MySqlLoadDataWriter
from batchline.items.postgres_copy import PostgresCopyWriter
from batchline.testing.crash import CrashInjector

JOB_NAME = "columnar_copy"
CRASH_ENV = "BATCHLINE_COLUMNAR_CRASH"
POINTS = ("reader", "before_commit", "after_commit")
SCHEMA = pa.schema([("id", pa.int64()), ("name", pa.string()), ("qty", pa.int64())])
COLUMNS = ["id", "name", "qty", "twice"]
metadata = sa.MetaData()
trades_out = sa.Table(
    "trades_out",
    metadata,
    sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("name", sa.String(60)),
    sa.Column("qty", sa.BigInteger),
    sa.Column("twice", sa.BigInteger),
)


class CrashingReader:
    read_ahead_safe = True  # so the kills also land while the next batch is read ahead

    def __init__(self, inner: Any, plan: CrashInjector) -> None:
        self.inner, self.plan = inner, plan

    def open(self, context: ExecutionContext) -> None:
        self.inner.open(context)

    def read_batch(self, rows: int) -> Any:
        self.plan.passing("reader")
        return self.inner.read_batch(rows)

    def update(self, context: ExecutionContext) -> None:
        self.inner.update(context)

    def close(self) -> None:
        self.inner.close()


class CrashingWriter:
    overlaps_reads = True

    def __init__(self, inner: Any, plan: CrashInjector) -> None:
        self.inner, self.plan = inner, plan

    def open(self, context: ExecutionContext) -> None:
        if hasattr(self.inner, "open"):
            self.inner.open(context)

    def write(self, items: Sequence[Any], chunk: Chunk) -> None:
        self.inner.write(items, chunk)
        if not hasattr(self.inner, "update"):
            self.plan.passing("before_commit")

    def update(self, context: ExecutionContext) -> None:
        if hasattr(self.inner, "update"):
            self.inner.update(context)
            self.plan.passing("before_commit")

    def complete(self) -> None:
        if hasattr(self.inner, "complete"):
            self.inner.complete()

    def close(self) -> None:
        if hasattr(self.inner, "close"):
            self.inner.close()


class AfterCommit:
    def __init__(self, plan: CrashInjector) -> None:
        self.plan = plan

    def after_chunk(self, chunk: Chunk) -> None:
        self.plan.passing("after_commit")


def transform(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Rows with qty > 0, with ``twice`` = 2 * qty."""
    kept = batch.filter(pc.greater(batch["qty"], 0))
    return kept.append_column("twice", pc.multiply(kept["qty"], 2))


def db_writer(url: str) -> Any:
    backend = sa.make_url(url).get_backend_name()
    if backend == "postgresql":
        return PostgresCopyWriter("trades_out", COLUMNS)
    if backend in ("mysql", "mariadb"):
        return MySqlLoadDataWriter("trades_out", COLUMNS)
    return ArrowSqlWriter(trades_out)


def build_job(url: str, mode: str, source: str, target: str, rows: int, plan: CrashInjector) -> Job:
    if mode == "db":
        reader: Any = ArrowCsvReader(source, schema=SCHEMA, block_size=1500)
        writer = db_writer(url)
    else:
        reader = ArrowParquetReader(source)
        writer = ArrowParquetWriter(target)
    step = (
        StepBuilder("load")
        .columnar(rows)
        .reader(CrashingReader(reader, plan))
        .processor(transform)
        .writer(CrashingWriter(writer, plan))
        .skip(Exception, limit=None)
        .listener(AfterCommit(plan))
    )
    return JobBuilder(JOB_NAME).step(step).build()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    for name in ("url", "mode", "source", "target"):
        parser.add_argument(name)
    parser.add_argument("--rows", type=int, required=True)
    parser.add_argument("--restart", type=int)
    args = parser.parse_args(argv)
    plan = CrashInjector.from_env(CRASH_ENV, POINTS)
    with Engine(args.url) as engine:
        if args.mode == "db":
            metadata.create_all(engine.repository.engine)  # type: ignore[attr-defined]
        job = build_job(args.url, args.mode, args.source, args.target, args.rows, plan)
        engine.register(job)
        execution = engine.start(job) if args.restart is None else engine.restart(args.restart)
        print(execution.status, execution.exit_status, flush=True)
        return 0 if execution.status is BatchStatus.COMPLETED else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
