"""A partitioned step with a CPU-bound processor on the process pool: 2 workers against 1.

Both sides run the same job shape: eight partitions of an integer range, a chunk step whose
processor burns CPU in pure Python (so threads would gain nothing under the GIL), a trivial
writer, progress committed to a temporary SQLite repository. The only difference is the process
handler's worker count. Each run is a new job instance and pays for starting its worker
processes (spawn), as a real run would. The goal, on a 2-core machine, is a speed-up of 1.7x:
candidate / baseline <= 1 / 1.7.
"""

from __future__ import annotations

import itertools
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from batchline import BatchStatus, Engine, Job, JobBuilder, StepBuilder, StepExecution
from batchline.partitioners import IntegerRangePartitioner
from batchline.workers import ProcessPartitionHandler
from benchmarks.harness import Comparison, side_by_side

GRID = 8
CHUNK = 50
WORK = 12_000  # loop turns per item: about 1 ms of pure Python
SPEED_UP = 1.7


def crunch(item: int) -> int:
    total = item
    for i in range(WORK):
        total = (total * 31 + i) % 1_000_003
    return total


def partition_items(se: StepExecution) -> range:
    return range(se.context["partition.min"], se.context["partition.max"] + 1)


def items_partitioner(se: StepExecution) -> IntegerRangePartitioner:
    return IntegerRangePartitioner(0, int(se.parameters["items"]) - 1)


def discard(items: Sequence[int]) -> None:
    pass


def make_job(workers: int) -> Job:
    worker = (
        StepBuilder("crunch_items")
        .chunk(CHUNK)
        .reader(partition_items)
        .processor(crunch)
        .writer(discard)
    )
    handler = ProcessPartitionHandler("benchmarks.bench_partitions:JOBS", workers=workers)
    step = StepBuilder("crunch").partition(
        worker, items_partitioner, grid_size=GRID, handler=handler
    )
    return JobBuilder(f"bench_partitions_{workers}w").step(step).build()


JOBS = [make_job(1), make_job(2)]


def two_against_one(
    engine: Engine, one: Job, two: Job, items: int, repeats: int
) -> tuple[float, float]:
    """Register both jobs, run each once on a few items (untimed: worker start-up, imports from
    disk), then time the two-worker job against the one-worker job, alternating."""
    runs = itertools.count()
    for job in (one, two):
        engine.register(job)

    def start(job: Job, count: int = items) -> None:
        execution = engine.start(job.name, {"items": count, "run": next(runs)})
        if execution.status is not BatchStatus.COMPLETED:
            raise RuntimeError(f"{job.name}: {execution.exit_status.description}")

    for job in (one, two):
        start(job, GRID)
    return side_by_side(lambda: start(two), lambda: start(one), repeats=repeats)


def run(quick: bool) -> list[Comparison]:
    # Big enough that starting the workers (about 0.5 s each: Python, SQLAlchemy, the job
    # module) does not hide the work: about 13 s of CPU on one core.
    items = 1200 if quick else 24_000
    repeats = 1 if quick else 3
    with tempfile.TemporaryDirectory(prefix="bench-partitions-") as folder:
        url = f"sqlite:///{Path(folder) / 'repository.db'}"
        with Engine(url) as engine:
            two, one = two_against_one(engine, JOBS[0], JOBS[1], items, repeats)
    return [
        Comparison(
            name="partitions_process_pool",
            candidate="2 worker processes",
            baseline="1 worker process",
            candidate_seconds=two,
            baseline_seconds=one,
            goal=f"ratio <= {1 / SPEED_UP:.2f}",
            goal_ratio=1 / SPEED_UP,
            note=(
                f"speed-up = 1/ratio = {one / two:.2f}x (goal {SPEED_UP}x) on "
                f"{os.cpu_count()} CPUs; {items} CPU-bound items in {GRID} partitions, "
                "worker start-up included"
            ),
        )
    ]
