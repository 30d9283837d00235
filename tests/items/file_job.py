"""A file-to-file chunk job (CSV in, CSV out with header and footer), killable at chosen points.

Run as a process by tests/items/test_file_crash.py::

    python -m tests.items.file_job REPOSITORY_URL INPUT OUTPUT [--restart EXECUTION_ID]

``BATCHLINE_FILE_CRASH=point:n`` makes the process SIGKILL itself the n-th time it passes
``point``:

- ``reader``: inside ``read()``, in the middle of reading a chunk;
- ``mid_write``: inside ``write()``, after half of the chunk is written and flushed to the file;
- ``before_commit``: in the writer's ``update()``, after the file is flushed, before the commit;
- ``after_commit``: in an after-chunk listener, just after a commit.

``FILE_JOB_FREEZE=point:n`` makes it SIGSTOP itself there instead (a freeze inside the chunk's
transaction at ``before_commit``), for the frozen-process tests to thaw.

``FILE_JOB_DELAY`` slows the processor (seconds per item) and ``FILE_JOB_LEASE`` sets the
engine's lease, for the frozen-process tests.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from batchline import BatchStatus, Chunk, Engine, ExecutionContext, Job, JobBuilder, StepBuilder
from batchline.items.files.delimited import DelimitedReader, DelimitedWriter
from batchline.testing.crash import CrashInjector

JOB_NAME = "file_copy"
CHUNK_SIZE = 40
CRASH_ENV = "BATCHLINE_FILE_CRASH"
# Seconds per item in the processor, and the engine's lease (its heartbeat is a fifth of it).
DELAY_ENV = "FILE_JOB_DELAY"
LEASE_ENV = "FILE_JOB_LEASE"
FREEZE_ENV = "FILE_JOB_FREEZE"
POINTS = ("reader", "mid_write", "before_commit", "after_commit")
FIELDS = ["id", "name", "qty", "price", "total"]


class CrashingReader:
    def __init__(self, inner: DelimitedReader[Any], plan: CrashInjector) -> None:
        self.inner = inner
        self.plan = plan

    def open(self, context: ExecutionContext) -> None:
        self.inner.open(context)

    def read(self) -> Any:
        self.plan.passing("reader")
        return self.inner.read()

    def update(self, context: ExecutionContext) -> None:
        self.inner.update(context)

    def close(self) -> None:
        self.inner.close()


class CrashingWriter:
    def __init__(self, inner: DelimitedWriter, plan: CrashInjector) -> None:
        self.inner = inner
        self.plan = plan

    def open(self, context: ExecutionContext) -> None:
        self.inner.open(context)

    def write(self, items: Sequence[Any], chunk: Chunk) -> None:
        if self.plan.point == "mid_write" and self.plan.remaining <= 1:
            self.inner.write(items[: len(items) // 2], chunk)
            self.inner.update(ExecutionContext())  # flush the half chunk to the file
        self.plan.passing("mid_write")
        self.inner.write(items, chunk)

    def update(self, context: ExecutionContext) -> None:
        self.inner.update(context)
        self.plan.passing("before_commit")

    def complete(self) -> None:
        self.inner.complete()

    def close(self) -> None:
        self.inner.close()


class AfterCommit:
    def __init__(self, plan: CrashInjector) -> None:
        self.plan = plan

    def after_chunk(self, chunk: Chunk) -> None:
        self.plan.passing("after_commit")


def total(row: dict[str, str]) -> dict[str, Any]:
    """The processor: upper-cases the name and adds qty * price."""
    delay = float(os.environ.get(DELAY_ENV, "0") or 0)
    if delay:
        time.sleep(delay)
    qty, price = int(row["qty"]), Decimal(row["price"])
    return {**row, "name": row["name"].upper(), "total": qty * price}


def build_job(source: str, target: str, plan: CrashInjector | None = None) -> Job:
    plan = plan or CrashInjector(None, POINTS)
    step = (
        StepBuilder("copy")
        .chunk(CHUNK_SIZE)
        .reader(lambda se: CrashingReader(DelimitedReader(source), plan))
        .processor(total)
        .writer(
            CrashingWriter(
                DelimitedWriter(target, fields=FIELDS, header=True, footer=lambda n: f"# {n} rows"),
                plan,
            )
        )
        .listener(AfterCommit(plan))
    )
    return JobBuilder(JOB_NAME).step(step).build()


class Freezer(CrashInjector):
    """Stops this process (SIGSTOP) instead of killing it: a test thaws it with SIGCONT."""

    def passing(self, point: str) -> None:
        if point == self.point:
            self.remaining -= 1
            if self.remaining == 0:
                os.kill(os.getpid(), signal.SIGSTOP)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="file-to-file job for the crash tests")
    parser.add_argument("url")
    parser.add_argument("source")
    parser.add_argument("target")
    parser.add_argument("--restart", type=int, metavar="EXECUTION_ID")
    args = parser.parse_args(argv)
    plan = (
        Freezer.from_env(FREEZE_ENV, POINTS)
        if os.environ.get(FREEZE_ENV)
        else CrashInjector.from_env(CRASH_ENV, POINTS)
    )
    lease = float(os.environ.get(LEASE_ENV, "60"))
    with Engine(args.url, lease=lease, heartbeat_interval=min(10.0, lease / 5)) as engine:
        engine.register(build_job(args.source, args.target, plan))
        if args.restart is None:
            execution = engine.start(JOB_NAME, {"target": args.target})
        else:
            execution = engine.restart(args.restart)
    print(execution.id, execution.status.value, execution.exit_status.description[:2000])
    return 0 if execution.status is BatchStatus.COMPLETED else 1


if __name__ == "__main__":
    sys.exit(main())
