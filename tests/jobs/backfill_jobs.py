"""Jobs for the backfill tests: one instance per day, its rows written with its progress.

``daily_load`` (parameter ``day:date``, optionally ``region``) writes ROWS rows for its day into
``backfill_out`` through the chunk's connection, CHUNK at a time, so rows and progress commit
together; ``BATCHLINE_BACKFILL_PAUSE`` seconds per item slow it down (the crash tests kill it
mid-run). A day listed in ``BATCHLINE_BACKFILL_FAIL`` (comma-separated) fails.
"""

from __future__ import annotations

import os
import time
from typing import Any

import sqlalchemy as sa

from batchline import Job, JobBuilder, ListReader, SqlInsertWriter, StepBuilder
from batchline.model import StepExecution

JOB_NAME = "daily_load"
ROWS = 12
CHUNK = 4
PAUSE_ENV = "BATCHLINE_BACKFILL_PAUSE"
FAIL_ENV = "BATCHLINE_BACKFILL_FAIL"

tables = sa.MetaData()
# No unique constraint: a row written twice must show up, not fail the job.
out = sa.Table(
    "backfill_out",
    tables,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("day", sa.String(10), nullable=False),
    sa.Column("n", sa.Integer, nullable=False),
    sa.Column("region", sa.String(20), nullable=False),
)


def rows_for(step: StepExecution) -> ListReader[dict[str, Any]]:
    day = step.parameters.require("day")
    region = str(step.parameters.get("region", "all"))
    if str(day) in os.environ.get(FAIL_ENV, "").split(","):
        raise RuntimeError(f"no data for {day}")
    return ListReader([{"day": str(day), "n": n, "region": region} for n in range(ROWS)])


def slow(item: dict[str, Any]) -> dict[str, Any]:
    """The pause outside the chunk's transaction: on SQLite a sleeping writer would hold the
    write lock and starve every other execution's heartbeat."""
    pause = float(os.environ.get(PAUSE_ENV, "0"))
    if pause:
        time.sleep(pause)
    return item


def build() -> Job:
    return (
        JobBuilder(JOB_NAME)
        .step(
            StepBuilder("load")
            .chunk(CHUNK)
            .reader(rows_for)
            .processor(slow)
            .writer(SqlInsertWriter(out))
        )
        .build()
    )


daily_load = build()
