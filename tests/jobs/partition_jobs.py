"""Partitioned copy jobs that tests run on worker processes, or kill as a whole process.

Both copy ``part_source`` into ``part_target`` (tables in the repository's own database, so each
chunk's rows and progress commit together) in four partitions of ``TablePartitioner``. Job
parameter ``db`` is that database's URL.

- ``partition_copy`` runs its partitions on a pool of two worker processes. With ``kill_at`` (a
  source id) and ``marker`` (a file path), the worker about to hand out that row SIGKILLs itself,
  the first time only (the marker file records it). With ``gate`` (a file path), each partition
  waits before its 30th row until that file exists; with ``hold_at`` (a source id) too, only the
  partition holding that row waits, there.
- ``partition_slow_copy`` runs them on four threads.

``python -m tests.jobs.partition_jobs URL [--process] [name=value ...]`` starts
``partition_slow_copy`` (or ``partition_copy``) with job parameters ``db=URL`` and the named ones
(digits make an int); with BATCHLINE_TEST_ITEM_DELAY=<seconds> each item takes that long, so a
test can SIGKILL the manager's process while partitions are half done, and
BATCHLINE_TEST_ORPHAN_GRACE=<seconds> sets the process pool's ``orphan_grace``.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from batchline import Engine, ExecutionContext, Job, JobBuilder, SqlInsertWriter, StepBuilder
from batchline.model import StepExecution
from batchline.partitioners import TablePartitioner, TableRangeReader
from batchline.steps.partition import PartitionerSpec
from batchline.steps.partition_threads import ThreadPartitionHandler
from batchline.testing import eventually
from batchline.workers import ProcessPartitionHandler

ROWS = 400
CHUNK = 20
GRID = 4
DELAY_ENV = "BATCHLINE_TEST_ITEM_DELAY"
GRACE_ENV = "BATCHLINE_TEST_ORPHAN_GRACE"
LEASE_ENV = "BATCHLINE_TEST_LEASE"  # the manager's lease (its heartbeat is a fifth of it)

tables = sa.MetaData()
source = sa.Table(
    "part_source",
    tables,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("payload", sa.String(64), nullable=False),
)
# No unique constraint on source_id: a row copied twice must show, not fail the job.
target = sa.Table(
    "part_target",
    tables,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("source_id", sa.Integer, nullable=False),
    sa.Column("payload", sa.String(64), nullable=False),
)


def create_tables(url: str, rows: int = ROWS) -> None:
    """The source table with ids 1..rows and an empty target table."""
    bind = sa.create_engine(url)
    tables.create_all(bind)
    with bind.begin() as conn:
        conn.execute(
            source.insert(),
            [{"id": i, "payload": f"p{i * 7919 % 104729}"} for i in range(1, rows + 1)],
        )
    bind.dispose()


def copied(url: str) -> list[tuple[int, str]]:
    """The target's (source_id, payload) pairs, sorted; duplicates stay."""
    bind = sa.create_engine(url)
    with bind.connect() as conn:
        rows = conn.execute(sa.select(target.c.source_id, target.c.payload)).all()
    bind.dispose()
    return sorted((r.source_id, r.payload) for r in rows)


def expected(rows: int = ROWS) -> list[tuple[int, str]]:
    return [(i, f"p{i * 7919 % 104729}") for i in range(1, rows + 1)]


class HookedReader:
    """Hands out the rows of its inner reader; SIGKILLs its process at ``kill_at`` once, and
    waits for the ``gate`` file before the 30th row of each hundred (or before ``hold_at``)."""

    def __init__(
        self, inner: TableRangeReader, kill_at: Any, marker: Any, gate: Any, hold_at: Any = None
    ) -> None:
        self.inner = inner
        self.kill_at = kill_at
        self.hold_at = hold_at
        self.marker = Path(str(marker)) if marker else None
        self.gate = Path(str(gate)) if gate else None

    def open(self, context: ExecutionContext) -> None:
        self.inner.open(context)

    def read(self) -> dict[str, Any] | None:
        row = self.inner.read()
        held = row is not None and (
            row["id"] == self.hold_at if self.hold_at else row["id"] % 100 == 30
        )
        if held and self.gate is not None:
            eventually(self.gate.exists, timeout=60, interval=0.01, message="the gate stayed shut")
        marker = self.marker
        if row is not None and row["id"] == self.kill_at and marker and not marker.exists():
            marker.write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)
        return row

    def update(self, context: ExecutionContext) -> None:
        self.inner.update(context)

    def close(self) -> None:
        self.inner.close()


def reader(se: StepExecution) -> HookedReader:
    params = se.parameters
    inner = TableRangeReader.for_partition(se, str(params["db"]), "part_source", "id", page_size=50)
    hooks = (params.get(k) for k in ("kill_at", "marker", "gate", "hold_at"))
    return HookedReader(inner, *hooks)


def to_target(row: dict[str, Any]) -> dict[str, Any]:
    delay = float(os.environ.get(DELAY_ENV, "0"))
    if delay:
        time.sleep(delay)
    return {"source_id": row["id"], "payload": row["payload"]}


def table_partitioner(se: StepExecution) -> TablePartitioner:
    return TablePartitioner(str(se.parameters["db"]), "part_source", "id")


class RecordPid:
    """Notes in each partition's context the process that ran it."""

    def before_step(self, se: StepExecution) -> None:
        se.context["pid"] = os.getpid()


def copy_rows() -> StepBuilder:
    return (
        StepBuilder("copy_rows")
        .chunk(CHUNK)
        .reader(reader)
        .processor(to_target)
        .writer(SqlInsertWriter(target))
        .listener(RecordPid())
    )


PROCESS_JOB = (
    JobBuilder("partition_copy")
    .step(
        StepBuilder("copy").partition(
            copy_rows(),
            table_partitioner,
            grid_size=GRID,
            handler=ProcessPartitionHandler(
                "tests.jobs.partition_jobs:PROCESS_JOB",
                workers=2,
                orphan_grace=float(os.environ.get(GRACE_ENV, "30")),
            ),
        )
    )
    .build()
)


def slow_job(partitioner: PartitionerSpec = table_partitioner) -> Job:
    """The thread-pool copy; a restart may pass a partitioner that must not be called."""
    step = StepBuilder("copy").partition(
        copy_rows(), partitioner, grid_size=GRID, handler=ThreadPartitionHandler(workers=GRID)
    )
    return JobBuilder("partition_slow_copy").step(step).build()


def main(argv: list[str]) -> int:
    url = argv[0]
    job = PROCESS_JOB if "--process" in argv else slow_job()
    params: dict[str, Any] = {"db": url}
    for arg in argv[1:]:
        if "=" in arg:
            name, value = arg.split("=", 1)
            params[name] = int(value) if value.isdigit() else value
    lease = float(os.environ.get(LEASE_ENV, "60"))
    with Engine(url, lease=lease, heartbeat_interval=min(10.0, lease / 5)) as engine:
        execution = engine.start(job, params)
    print(execution.status.value, execution.id, flush=True)
    return 0 if execution.status.value == "COMPLETED" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
