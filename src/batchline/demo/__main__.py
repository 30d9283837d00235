"""``python -m batchline.demo [--date YYYY-MM-DD] [--rows N] [--output DIR]``.

Exit codes: 0 when the job completed or had already completed, 1 when it failed or is running.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
from pathlib import Path

from rich.console import Console
from rich.logging import RichHandler

from batchline.demo import (
    DEFAULT_DATE,
    DEFAULT_ROWS,
    JOB_NAME,
    LEASE,
    build_job,
    csv_path,
    open_engine,
    parameters,
)
from batchline.demo.report import (
    LoadProgress,
    already_complete,
    step_notes,
    steps_table,
    summary_table,
)
from batchline.demo.trades import top_symbols
from batchline.engine import Engine
from batchline.errors import JobExecutionAlreadyRunning, JobInstanceAlreadyComplete
from batchline.job import Job
from batchline.model import JobExecution
from batchline.parameters import JobParameters
from batchline.status import BatchStatus


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date YYYY-MM-DD") from None


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("the row count must be at least 1")
    return value


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m batchline.demo",
        description="Load a generated day of trades from CSV into SQLite, then summarise it.",
    )
    parser.add_argument(
        "--date", type=_date, default=DEFAULT_DATE, help=f"trade date (default {DEFAULT_DATE})"
    )
    parser.add_argument(
        "--rows",
        type=_positive,
        default=DEFAULT_ROWS,
        help=f"trades to generate when the day's file does not exist (default {DEFAULT_ROWS:,})",
    )
    parser.add_argument(
        "--output",
        default="demo-output",
        help="directory for the CSV file and batchline.db (default demo-output)",
    )
    return parser.parse_args(argv)


def _completed_execution(engine: Engine, params: JobParameters) -> JobExecution | None:
    for execution in engine.list_executions(JOB_NAME, limit=1000):
        if execution.instance.job_key == params.key and execution.status in (
            BatchStatus.COMPLETED,
            BatchStatus.ABANDONED,
        ):
            return execution
    return None


def _start(engine: Engine, job: Job, params: JobParameters, console: Console) -> JobExecution:
    """Start the instance; if a killed run holds it (no heartbeat within the lease), recover
    that run and resume it from its last committed chunk."""
    try:
        return engine.start(job, params)
    except JobExecutionAlreadyRunning:
        dead = [e for e in engine.recover() if e.instance.job_key == params.key]
        if not dead:
            raise
    console.print(
        f"Execution {dead[0].id} stopped sending heartbeats (its process died): marked FAILED, "
        "resuming from its last committed chunk.",
        soft_wrap=True,
    )
    return engine.start(job, params)


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    console = Console()
    handler = RichHandler(console=console, show_time=False, show_path=False)
    logger = logging.getLogger("batchline")
    logger.addHandler(handler)  # batchline's warnings and errors, in rich's style
    try:
        return _run(args, console)
    finally:
        logger.removeHandler(handler)


def _run(args: argparse.Namespace, console: Console) -> int:
    output = Path(args.output)
    file = csv_path(output, args.date)
    params = parameters(args.date, file)
    engine, db = open_engine(output)
    with engine:
        job = build_job(db, rows=args.rows, listeners=[LoadProgress(console)])
        console.print(
            f"[bold]{JOB_NAME}[/bold] trade_date={args.date}: input {file}, "
            f"job repository and trades table in {output / 'batchline.db'}",
            soft_wrap=True,
        )
        try:
            execution = _start(engine, job, params, console)
        except JobInstanceAlreadyComplete:
            already_complete(console, args.date, _completed_execution(engine, params), args.output)
            return 0
        except JobExecutionAlreadyRunning:
            console.print(
                f"[red]{JOB_NAME} for trade_date={args.date} is running[/red] (or its process "
                f"died less than {LEASE:g} s ago). Wait for it, or run the same command again "
                f"in {LEASE:g} s: a dead run is then recovered and resumed.",
                soft_wrap=True,
            )
            return 1
        console.print()
        console.print(steps_table(execution))
        for note in step_notes(execution):
            console.print(f"  {note}", soft_wrap=True, highlight=False)
        if execution.status is not BatchStatus.COMPLETED:
            reason = execution.exit_status.description.splitlines() or [""]
            console.print(
                f"\n[red bold]{JOB_NAME} {execution.status.value}[/red bold]: {reason[0]}\n"
                "Run the same command again to resume where it stopped.",
                soft_wrap=True,
            )
            return 1
        with db.connect() as conn:
            top = top_symbols(conn, args.date)
        console.print()
        console.print(summary_table(args.date, top))
        took = (
            (execution.end_time - execution.start_time).total_seconds()
            if execution.end_time and execution.start_time
            else 0.0
        )
        console.print(
            f"\n[green bold]{JOB_NAME} COMPLETED[/green bold] in {took:.1f} s "
            f"(job execution {execution.id}). Run the same command again and batchline "
            "will tell you this instance is complete.",
            soft_wrap=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
