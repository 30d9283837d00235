"""Framework overhead: a chunk step against the loop a person would write by hand.

Both sides make the same calls on the same reader, processor and writer objects (trivial ones, so
only the framework's own cost shows) and the same commits on the same SQLite database: one
transaction per chunk of 1000 that records progress (counters and a JSON position) in a row.
The candidate is ``Engine.start`` on a chunk step, each run a new job instance; the baseline is a
plain loop over ``batchline.repository.create_engine`` (the same pragmas and BEGIN IMMEDIATE),
updating its own progress row with a statement built once, as a careful hand-written job would.

What the baseline leaves out is what the framework adds: the job instance, job and step execution
records, the stop-request check at each chunk boundary, listener and fault-tolerance hooks.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import tempfile
from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa

from batchline import Chunk, Engine, ExecutionContext, JobBuilder, StepBuilder
from batchline.repository import create_engine
from benchmarks.harness import Comparison, side_by_side

CHUNK = 1000
GOAL = 1.3


class CountingReader:
    """Returns 0, 1, ... n-1 then None; keeps its position in the step context."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.position = 0

    def open(self, context: ExecutionContext) -> None:
        self.position = int(context.get("position", 0))

    def read(self) -> int | None:
        if self.position >= self.n:
            return None
        self.position += 1
        return self.position - 1

    def update(self, context: ExecutionContext) -> None:
        context["position"] = self.position

    def close(self) -> None:
        pass


def increment(item: int) -> int:
    return item + 1


class CountingWriter:
    def __init__(self) -> None:
        self.written = 0

    def write(self, items: Sequence[int], chunk: Chunk) -> None:
        self.written += len(items)


metadata = sa.MetaData()
progress = sa.Table(
    "baseline_progress",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("read_count", sa.BigInteger, nullable=False),
    sa.Column("write_count", sa.BigInteger, nullable=False),
    sa.Column("filter_count", sa.BigInteger, nullable=False),
    sa.Column("commit_count", sa.BigInteger, nullable=False),
    sa.Column("position", sa.Text, nullable=False),
    sa.Column("last_updated", sa.DateTime, nullable=False),
)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def hand_written(db: sa.Engine, n: int) -> int:
    """The loop without a framework: same calls, one committed progress update per chunk."""
    reader, process, writer = CountingReader(n), increment, CountingWriter()
    with db.begin() as conn:
        row_id = conn.execute(
            progress.insert().values(
                status="STARTED",
                read_count=0,
                write_count=0,
                filter_count=0,
                commit_count=0,
                position="{}",
                last_updated=_now(),
            )
        ).inserted_primary_key[0]  # type: ignore[index]
    save = progress.update().where(progress.c.id == sa.bindparam("row_id"))
    read_count = write_count = filter_count = commits = 0
    done = False
    while not done:
        items = []
        for _ in range(CHUNK):
            item = reader.read()
            if item is None:
                done = True
                break
            items.append(item)
        if not items:
            break
        outputs = [out for out in map(process, items) if out is not None]
        with db.begin() as conn:
            if outputs:
                writer.write(outputs, Chunk(commits + 1, conn, None))  # type: ignore[arg-type]
            read_count += len(items)
            write_count += len(outputs)
            filter_count += len(items) - len(outputs)
            commits += 1
            conn.execute(
                save,
                {
                    "row_id": row_id,
                    "read_count": read_count,
                    "write_count": write_count,
                    "filter_count": filter_count,
                    "commit_count": commits,
                    "position": json.dumps({"position": reader.position}),
                    "last_updated": _now(),
                },
            )
    with db.begin() as conn:
        conn.execute(save, {"row_id": row_id, "status": "COMPLETED", "last_updated": _now()})
    assert writer.written == n
    return writer.written


def with_batchline(engine: Engine, n: int, run: int) -> int:
    """The same work as a one-step job; a new run number makes a new instance."""
    writer = CountingWriter()
    step = (
        StepBuilder("count")
        .chunk(CHUNK)
        .reader(CountingReader(n))
        .processor(increment)
        .writer(writer)
        .build()
    )
    job = JobBuilder("chunk_overhead").step(step).build()
    execution = engine.start(job, {"run": run})
    assert execution.status.value == "COMPLETED", execution.exit_status
    assert writer.written == n
    return writer.written


def run(quick: bool) -> list[Comparison]:
    n = 50_000 if quick else 1_000_000
    with tempfile.TemporaryDirectory(prefix="bench-chunk-") as folder:
        url = f"sqlite:///{Path(folder) / 'bench.db'}"
        runs = itertools.count(1)
        with Engine(url) as engine:
            db = create_engine(url)
            metadata.create_all(db)
            try:
                cand, base = side_by_side(
                    lambda: with_batchline(engine, n, next(runs)),
                    lambda: hand_written(db, n),
                    repeats=3 if quick else 5,
                )
            finally:
                db.dispose()
    return [
        Comparison(
            name=f"chunk overhead ({n:,} items, chunk {CHUNK})",
            candidate="ChunkStep via Engine.start",
            baseline="hand-written loop, same commits",
            candidate_seconds=cand,
            baseline_seconds=base,
            goal=f"ratio <= {GOAL}",
            goal_ratio=GOAL,
            note=f"{n // CHUNK:,} commits per run on one SQLite file (WAL, synchronous=NORMAL)",
        )
    ]
