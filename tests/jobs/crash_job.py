"""A two-step chunk job copying a source table into a target table, killable at chosen points.

Run as a process by the crash tests::

    python -m tests.jobs.crash_job URL [--restart EXECUTION_ID]

Step ``copy_low`` copies the source rows with id <= SPLIT, ``copy_high`` the rest; both read with a
keyset reader (the last id read is kept in the step's context) and insert through the chunk's
connection, so data and progress commit together. ``BATCHLINE_CRASH_AT=point:n`` makes the
process SIGKILL itself the n-th time it passes ``point``:

- ``reader``: inside ``read()``, before a chunk's transaction begins;
- ``writer``: inside the writer, after its INSERT and before the commit;
- ``after_chunk``: in an after-chunk listener, just after a commit;
- ``step_end``: in ``copy_low``'s after-step listener, before its COMPLETED is recorded;
- ``between_steps``: in ``copy_high``'s before-step listener, after ``copy_low`` completed.

It prints ``running <execution id>`` when the job starts and exits 0 when the job COMPLETED, 1
when it ended otherwise.
"""

from __future__ import annotations

import argparse
import sys
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from batchline import (
    BatchStatus,
    Chunk,
    Engine,
    ExecutionContext,
    Job,
    JobBuilder,
    JobExecution,
    SqlInsertWriter,
    StepBuilder,
    StepExecution,
)
from batchline.testing.crash import CrashInjector

JOB_NAME = "crash_copy"
ROWS = 3000
SPLIT = 1500
CHUNK_SIZE = 50
CRASH_ENV = "BATCHLINE_CRASH_AT"
POINTS = ("reader", "writer", "after_chunk", "step_end", "between_steps")

tables = sa.MetaData()
source = sa.Table(
    "crash_source",
    tables,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("payload", sa.String(64), nullable=False),
)
# No unique constraint on source_id: a row written twice must show up, not fail the job.
target = sa.Table(
    "crash_target",
    tables,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("source_id", sa.Integer, nullable=False),
    sa.Column("payload", sa.String(64), nullable=False),
)


def create_tables(bind: sa.Engine, rows: int = ROWS) -> None:
    """The source table with ``rows`` rows and an empty target table."""
    tables.create_all(bind)
    with bind.begin() as conn:
        conn.execute(
            source.insert(),
            [{"id": i, "payload": f"payload-{i * 7919 % 104729}"} for i in range(1, rows + 1)],
        )


class KeysetReader:
    """Reads source rows with low < id <= high in id order; restarts after the last id read."""

    KEY = "keyset.last_id"

    def __init__(self, bind: sa.Engine, low: int, high: int, plan: CrashInjector, page: int = 200):
        self._bind = bind
        self._low = low
        self._high = high
        self._plan = plan
        self._page = page
        self._last = low
        self._fetched = low
        self._buffer: deque[Any] = deque()

    def open(self, context: ExecutionContext) -> None:
        self._last = self._fetched = int(context.get(self.KEY, self._low))
        self._buffer.clear()

    def read(self) -> dict[str, Any] | None:
        self._plan.passing("reader")
        if not self._buffer:
            query = (
                sa.select(source.c.id, source.c.payload)
                .where(source.c.id > self._fetched, source.c.id <= self._high)
                .order_by(source.c.id)
                .limit(self._page)
            )
            with self._bind.connect() as conn:  # closed at once: holds no lock while writing
                self._buffer.extend(conn.execute(query).all())
            if not self._buffer:
                return None
            self._fetched = self._buffer[-1].id
        row = self._buffer.popleft()
        self._last = row.id
        return {"source_id": row.id, "payload": row.payload}

    def update(self, context: ExecutionContext) -> None:
        context[self.KEY] = self._last

    def close(self) -> None:
        self._buffer.clear()


class CrashingWriter:
    """Inserts through the chunk's connection, then passes the ``writer`` point (pre-commit)."""

    def __init__(self, plan: CrashInjector) -> None:
        self._insert = SqlInsertWriter(target)
        self._plan = plan

    def write(self, items: Sequence[Mapping[str, Any]], chunk: Chunk) -> None:
        self._insert.write(items, chunk)
        self._plan.passing("writer")


class Announcer:
    """Prints ``running <execution id>`` when the job starts, so a parent can time a kill."""

    def before_job(self, execution: JobExecution) -> None:
        print(f"running {execution.id}", flush=True)


class CrashListener:
    """Passes a crash point from a chunk or step callback."""

    def __init__(self, plan: CrashInjector, *, step_point: str | None = None) -> None:
        self._plan = plan
        self._step_point = step_point

    def after_chunk(self, chunk: Chunk) -> None:
        self._plan.passing("after_chunk")

    def before_step(self, step_execution: StepExecution) -> None:
        if self._step_point == "between_steps":
            self._plan.passing("between_steps")

    def after_step(self, step_execution: StepExecution) -> None:
        if self._step_point == "step_end":
            self._plan.passing("step_end")


def build_job(bind: sa.Engine, plan: CrashInjector | None = None) -> Job:
    plan = plan or CrashInjector(None, POINTS)

    def copy(name: str, low: int, high: int, step_point: str) -> StepBuilder:
        return (
            StepBuilder(name)
            .chunk(CHUNK_SIZE)
            .reader(lambda se: KeysetReader(bind, low, high, plan))
            .writer(CrashingWriter(plan))
            .listener(CrashListener(plan, step_point=step_point))
        )

    return (
        JobBuilder(JOB_NAME)
        .listener(Announcer())
        .step(copy("copy_low", 0, SPLIT, "step_end"))
        .step(copy("copy_high", SPLIT, 2**31 - 1, "between_steps"))
        .build()
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--restart", type=int, metavar="EXECUTION_ID")
    args = parser.parse_args(argv)
    plan = CrashInjector.from_env(CRASH_ENV, POINTS)
    with Engine(args.url) as engine:
        bind = engine.repository.engine  # type: ignore[attr-defined]
        engine.register(build_job(bind, plan))
        restart = args.restart
        execution = engine.start(JOB_NAME) if restart is None else engine.restart(restart)
    print(execution.id, execution.status.value, execution.exit_status.description[:2000])
    return 0 if execution.status is BatchStatus.COMPLETED else 1


if __name__ == "__main__":
    sys.exit(main())
