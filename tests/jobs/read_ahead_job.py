"""A CSV file into PostgreSQL through COPY, with the chunk step's read-ahead on, killable.

Run as a process by tests/test_read_ahead_crash.py::

    python -m tests.jobs.read_ahead_job REPOSITORY_URL INPUT [--restart EXECUTION_ID]

The repository is on the same PostgreSQL database as the target table, so each chunk's rows
and progress commit together. ``BATCHLINE_READ_AHEAD_CRASH=point:n`` makes the process SIGKILL
itself the n-th time it passes ``point``:

- ``reader``: inside ``read()``, which runs on the read-ahead thread from the second chunk on;
- ``written``: after the chunk's COPY, before its commit (the next chunk is being read ahead);
- ``after_commit``: in an after-chunk listener, just after a commit.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from batchline import BatchStatus, Chunk, Engine, Job, JobBuilder, StepBuilder
from batchline.items.files.delimited import DelimitedReader
from batchline.items.postgres_copy import PostgresCopyWriter
from batchline.testing.crash import CrashInjector

JOB_NAME = "read_ahead_copy"
CHUNK_SIZE = 50
TABLE = "read_ahead_target"
DDL = f"CREATE TABLE IF NOT EXISTS {TABLE} (id integer, name text, qty integer)"
CRASH_ENV = "BATCHLINE_READ_AHEAD_CRASH"
POINTS = ("reader", "written", "after_commit")


class CrashingReader(DelimitedReader[Any]):
    read_ahead_safe = True

    def __init__(self, path: str, plan: CrashInjector) -> None:
        super().__init__(path)
        self.plan = plan

    def read(self) -> Any:
        self.plan.passing("reader")
        return super().read()


class CrashingWriter:
    overlaps_reads = True

    def __init__(self, plan: CrashInjector) -> None:
        self.inner = PostgresCopyWriter(TABLE, ["id", "name", "qty"])
        self.plan = plan

    def write(self, items: Sequence[Any], chunk: Chunk) -> None:
        self.inner.write(items, chunk)
        self.plan.passing("written")


class AfterCommit:
    def __init__(self, plan: CrashInjector) -> None:
        self.plan = plan

    def after_chunk(self, chunk: Chunk) -> None:
        self.plan.passing("after_commit")


def row(item: dict[str, str]) -> tuple[int, str, int]:
    return int(item["id"]), item["name"], int(item["qty"])


def build_job(source: str, plan: CrashInjector) -> Job:
    step = (
        StepBuilder("load")
        .chunk(CHUNK_SIZE)
        .reader(lambda se: CrashingReader(source, plan))
        .processor(row)
        .writer(CrashingWriter(plan))
        .listener(AfterCommit(plan))
        .read_ahead(True)
    )
    return JobBuilder(JOB_NAME).step(step).build()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="COPY job with read-ahead, for crash tests")
    parser.add_argument("url")
    parser.add_argument("source")
    parser.add_argument("--restart", type=int, metavar="EXECUTION_ID")
    args = parser.parse_args(argv)
    plan = CrashInjector.from_env(CRASH_ENV, POINTS)
    with Engine(args.url) as engine:
        engine.register(build_job(args.source, plan))
        with engine.transaction_manager.begin() as tx:
            tx.connection.exec_driver_sql(DDL)
        if args.restart is None:
            execution = engine.start(JOB_NAME, {"file": args.source})
        else:
            execution = engine.restart(args.restart)
    print(execution.id, execution.status.value, execution.exit_status.description[:2000])
    return 0 if execution.status is BatchStatus.COMPLETED else 1


if __name__ == "__main__":
    sys.exit(main())
