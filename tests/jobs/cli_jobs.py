"""Jobs the CLI tests run, in process and as ``python -m batchline`` subprocesses.

``cli_count`` reads ``count:int`` numbers (default 200) in chunks of 10 and inserts each into
``cli_output`` through the chunk's connection, so output and progress commit together. The
environment variable CLI_JOBS_DELAY (seconds per item) slows it down for kill and signal tests;
the variable, not a parameter, so that a restart can run at full speed. ``cli_dated`` requires
``date:date``; ``cli_failing`` always fails; ``make_job`` is a factory; ``cli_file`` counts the
lines of the file its ``file`` parameter names (any fsspec URL).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from batchline import Chunk, Job, JobBuilder, JobParameters, StepBuilder, StepExecution

DELAY_ENV = "CLI_JOBS_DELAY"

tables = sa.MetaData()
output = sa.Table(
    "cli_output",
    tables,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("item", sa.Integer, nullable=False),  # not unique: a duplicate must show
    sa.Column("execution_id", sa.Integer, nullable=False),
)


def create_output(url: str) -> None:
    bind = sa.create_engine(url)
    tables.create_all(bind)
    bind.dispose()


def _numbers(se: StepExecution) -> range:
    return range(int(se.parameters.get("count", 200)))


def _slow(item: int) -> int:
    delay = float(os.environ.get(DELAY_ENV, "0") or 0)
    if delay:
        time.sleep(delay)
    return item


def _insert(items: Sequence[int], chunk: Chunk) -> None:
    rows = [{"item": i, "execution_id": chunk.step_execution.job_execution_id} for i in items]
    chunk.connection.execute(output.insert(), rows)


count_job = (
    JobBuilder("cli_count")
    .step(StepBuilder("count").chunk(10).reader(_numbers).processor(_slow).writer(_insert))
    .build()
)


def _needs_date(parameters: JobParameters) -> None:
    if "date" in parameters and not isinstance(parameters["date"], dt.date):
        raise ValueError("date must be of type date")


def _chatter(se: StepExecution) -> None:
    app = logging.getLogger("cli_jobs.app")  # the application's own logger, not batchline's
    app.info("hello from the application")
    app.debug("details only -v shows")


chatty_job = JobBuilder("cli_chatty").step(StepBuilder("chatter").task(_chatter)).build()


def _hello(se: StepExecution) -> None:
    se.context["greeted"] = str(se.parameters["date"])


dated_job = (
    JobBuilder("cli_dated")
    .step(StepBuilder("hello").task(_hello))
    .require("date")
    .validator(_needs_date)
    .build()
)


def _explode(se: StepExecution) -> None:
    raise RuntimeError("the task exploded\nsecond line of the message")


failing_job = JobBuilder("cli_failing").step(StepBuilder("explode").task(_explode)).build()


def make_job() -> Job:
    """A factory: the CLI calls it with no arguments."""
    return JobBuilder("cli_made").step(StepBuilder("noop").task(lambda se: None)).build()


not_a_job: Any = 42


def _count_lines(se: StepExecution) -> None:
    import fsspec

    with fsspec.open(str(se.parameters["file"]), "rt") as handle:
        se.context["lines"] = sum(1 for _ in handle)


file_job = JobBuilder("cli_file").step(StepBuilder("lines").task(_count_lines)).build()


def _reject_multiples_of_seven(item: int) -> int:
    if item and item % 7 == 0:
        raise ValueError(f"{item} is a multiple of seven")
    return item


skipping_job = (
    JobBuilder("cli_skipping")
    .step(
        StepBuilder("filter")
        .chunk(10)
        .reader(list(range(30)))
        .processor(_reject_multiples_of_seven)
        .writer(lambda items: None)
        .skip((ValueError,))
    )
    .build()
)


HOG_ENV = "CLI_JOBS_HOG"


def _insert_and_hold(items: Sequence[int], chunk: Chunk) -> None:
    """Insert, then keep the chunk's transaction (on SQLite: the write lock) open a while."""
    _insert(items, chunk)
    time.sleep(float(os.environ.get(HOG_ENV, "0") or 0))


# Holds the repository's write lock nearly all the time on SQLite: the case where a stop
# request or a reader from another process used to wait until the job had finished.
hog_job = (
    JobBuilder("cli_hog")
    .step(StepBuilder("hog").chunk(5).reader(_numbers).writer(_insert_and_hold))
    .build()
)
