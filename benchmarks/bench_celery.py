"""Partitions on Celery workers: a CPU-bound partitioned step on 2 worker processes against 1.

The same eight partitions of pure-Python work as bench_partitions, sent by a
CeleryPartitionHandler over Redis to ``batchline worker`` processes; the repository and the
claims on PostgreSQL. Two worker groups run for the whole benchmark (their start-up is not
timed): one with two processes on one queue, one with a single process on another, and the
runs alternate between them. The goal, on a 2-core machine: a speed-up of 1.8x.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

from batchline import Engine, Job, JobBuilder, StepBuilder
from batchline.remote import CeleryPartitionHandler
from benchmarks.bench_partitions import (
    CHUNK,
    GRID,
    crunch,
    discard,
    items_partitioner,
    partition_items,
    two_against_one,
)
from benchmarks.harness import Comparison

SPEED_UP = 1.8
BROKER = os.environ.get("BATCHLINE_BENCH_BROKER", "redis://127.0.0.1:6379/0")
POSTGRES = os.environ.get(
    "BATCHLINE_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
QUEUE_ENV = "BATCHLINE_BENCH_QUEUE"
ROOT = Path(__file__).resolve().parent.parent


def make_job(processes: int) -> Job:
    worker = (
        StepBuilder("crunch_items")
        .chunk(CHUNK)
        .reader(partition_items)
        .processor(crunch)
        .writer(discard)
    )
    queue = f"{os.environ.get(QUEUE_ENV, 'bench')}-{processes}"
    handler = CeleryPartitionHandler(BROKER, queue=queue, poll_interval=0.1)
    step = StepBuilder("crunch").partition(
        worker, items_partitioner, grid_size=GRID, handler=handler
    )
    return JobBuilder(f"bench_celery_{processes}p").step(step).build()


# Top-level Jobs: what `batchline --jobs benchmarks.bench_celery worker` registers.
ONE_PROCESS = make_job(1)
TWO_PROCESSES = make_job(2)


def _workers(processes: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    queue = f"{env[QUEUE_ENV]}-{processes}"
    argv = [sys.executable, "-m", "batchline", "--jobs", "benchmarks.bench_celery", "worker"]
    argv += ["--broker", BROKER, "--queue", queue, "-c", str(processes)]
    return subprocess.Popen(
        argv,
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def run(quick: bool) -> list[Comparison]:
    import sqlalchemy as sa

    items = 1200 if quick else 16_000
    repeats = 1 if quick else 3
    name = f"bench_celery_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(POSTGRES, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    url = sa.make_url(POSTGRES).set(database=name).render_as_string(hide_password=False)
    env = {**os.environ, QUEUE_ENV: name}
    os.environ[QUEUE_ENV] = name
    jobs = [make_job(1), make_job(2)]  # built with this run's queue names
    groups = [_workers(1, env), _workers(2, env)]
    try:
        with Engine(url) as engine:
            two, one = two_against_one(engine, jobs[0], jobs[1], items, repeats)
    finally:
        for group in groups:
            os.killpg(group.pid, signal.SIGTERM)
            group.wait(timeout=30)
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()
    return [
        Comparison(
            name="partitions on Celery workers",
            candidate="2 worker processes",
            baseline="1 worker process",
            candidate_seconds=two,
            baseline_seconds=one,
            goal=f"ratio <= {1 / SPEED_UP:.2f}",
            goal_ratio=1 / SPEED_UP,
            note=(
                f"speed-up = 1/ratio = {one / two:.2f}x (goal {SPEED_UP}x) on "
                f"{os.cpu_count()} CPUs; {items} CPU-bound items in {GRID} partitions over Redis, "
                "repository and claims on PostgreSQL, worker start-up not timed"
            ),
        )
    ]
