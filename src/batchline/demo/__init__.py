"""The sample job ``make demo`` runs: a day of trades from CSV into SQLite, then a summary.

``import_trades`` (identifying parameter ``trade_date``, non-identifying ``file``):

1. ``generate`` writes the day's CSV (deterministic, with some invalid rows) unless it exists;
2. ``load`` reads it in chunks of 1,000, validates and transforms each row (an invalid one is
   filtered out and counted by reason) and inserts the good ones into ``trades``. The table lives
   in the job repository's database, so each chunk's rows and the step's progress commit in one
   transaction: kill it at any instant and a restart goes on with nothing lost or doubled;
3. ``summary`` replaces the day's rows of ``symbol_summary`` (count, quantity, notional per
   symbol) from ``trades``.

    engine, db = open_engine(Path("demo-output"))
    with engine:
        execution = engine.start(build_job(db), parameters(date(2026, 11, 28), csv_path))
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa

from batchline.builders import JobBuilder, StepBuilder
from batchline.demo.data import generate_trades
from batchline.demo.trades import (
    TradeProcessor,
    file_of,
    metadata,
    read_trades,
    summarise,
    trade_date_of,
    trades,
)
from batchline.engine import Engine
from batchline.items.sql import SqlInsertWriter
from batchline.job import Job
from batchline.model import StepExecution
from batchline.parameters import JobParameters
from batchline.repository.sql import SqlJobRepository
from batchline.status import ExitStatus

JOB_NAME = "import_trades"
DEFAULT_DATE = dt.date(2026, 11, 28)
DEFAULT_ROWS = 100_000
CHUNK_SIZE = 1_000
# A killed demo can be recovered this many seconds after its last heartbeat (every 2 s).
LEASE = 10.0

__all__ = [
    "CHUNK_SIZE",
    "DEFAULT_DATE",
    "DEFAULT_ROWS",
    "JOB_NAME",
    "LEASE",
    "build_job",
    "csv_path",
    "open_engine",
    "parameters",
]


def open_engine(output: Path) -> tuple[Engine, sa.Engine]:
    """An Engine whose repository is ``output/batchline.db``, and that database's SQL engine."""
    output.mkdir(parents=True, exist_ok=True)
    repository = SqlJobRepository(f"sqlite:///{output / 'batchline.db'}")
    return Engine(repository, heartbeat_interval=2.0, lease=LEASE), repository.engine


def csv_path(output: Path, trade_date: dt.date) -> Path:
    return output / f"trades-{trade_date.isoformat()}.csv"


def parameters(trade_date: dt.date, file: Path) -> JobParameters:
    return JobParameters({"trade_date": trade_date}, non_identifying={"file": str(file)})


class _Generate:
    def __init__(self, rows: int) -> None:
        self.rows = rows

    def __call__(self, se: StepExecution) -> ExitStatus:
        path = file_of(se)
        if path.exists():
            return ExitStatus("COMPLETED", f"kept the existing {path}")
        made = generate_trades(path, trade_date_of(se), self.rows)
        se.write_count = made.rows
        se.context["invalid"] = made.invalid
        return ExitStatus(
            "COMPLETED",
            f"generated {made.rows:,} trades into {path} "
            f"({made.invalid_total:,} invalid on purpose)",
        )


class _EnsureTables:
    """Step listener: the load step creates its target tables if they are missing."""

    def __init__(self, db: sa.Engine) -> None:
        self.db = db

    def before_step(self, se: StepExecution) -> None:
        metadata.create_all(self.db)


class _Summarise:
    def __init__(self, db: sa.Engine) -> None:
        self.db = db

    def __call__(self, se: StepExecution) -> ExitStatus:
        with self.db.begin() as conn:
            symbols, trade_count = summarise(conn, trade_date_of(se))
        se.read_count = trade_count
        se.write_count = symbols
        return ExitStatus(
            "COMPLETED", f"{trade_count:,} trades summarised into {symbols} symbol rows"
        )


def _check(params: JobParameters) -> None:
    if not isinstance(params["trade_date"], dt.date):
        raise ValueError("trade_date must be a date (trade_date:date=YYYY-MM-DD)")


def build_job(db: sa.Engine, *, rows: int = DEFAULT_ROWS, listeners: Sequence[object] = ()) -> Job:
    """The ``import_trades`` job on ``db`` (the repository's database); ``rows`` is the size of
    a generated file; ``listeners`` go on the load step (say, a progress display)."""
    processor = TradeProcessor()
    load = (
        StepBuilder("load")
        .chunk(CHUNK_SIZE)
        .reader(read_trades)
        .processor(processor)
        .writer(SqlInsertWriter(trades))
        .listener(_EnsureTables(db))
        .listener(processor)
    )
    for listener in listeners:
        load.listener(listener)
    return (
        JobBuilder(JOB_NAME)
        .step(StepBuilder("generate").task(_Generate(rows)))
        .step(load)
        .step(StepBuilder("summary").task(_Summarise(db)))
        .require("trade_date", "file")
        .validator(_check)
        .build()
    )
