"""What the demo prints: load progress, the step executions, the top symbols, and messages."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from batchline.demo.trades import file_of
from batchline.items.base import Chunk
from batchline.model import JobExecution, StepExecution


class LoadProgress:
    """A step and chunk listener: a progress bar in a terminal, a line per 10% elsewhere."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._total = 0
        self._resumed = 0
        self._next_tenth = 1

    def before_step(self, se: StepExecution) -> None:
        with file_of(se).open("rb") as source:
            self._total = max(sum(1 for _ in source) - 1, 0)  # minus the header
        self._resumed = int(se.context.get("csv.count", 0))
        self._next_tenth = 1
        if self.console.is_terminal:
            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("rows"),
                TimeElapsedColumn(),
                console=self.console,
            )
            self._task = self._progress.add_task(
                se.step_name, total=self._total, completed=self._resumed
            )
            self._progress.start()
        elif self._resumed:
            self.console.print(f"{se.step_name}: resuming after row {self._resumed:,}")

    def after_chunk(self, chunk: Chunk) -> None:
        done = self._resumed + chunk.step_execution.read_count
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, completed=done)
        elif self._total and done * 10 >= self._next_tenth * self._total:
            self.console.print(
                f"{chunk.step_execution.step_name}: {done:,} of {self._total:,} rows "
                f"({done / self._total:.0%}), chunk {chunk.number}"
            )
            while self._next_tenth * self._total <= done * 10:
                self._next_tenth += 1

    def after_step(self, se: StepExecution) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


def _duration(se: StepExecution) -> str:
    if se.start_time is None or se.end_time is None:
        return "-"
    return f"{(se.end_time - se.start_time).total_seconds():.2f} s"


def steps_table(execution: JobExecution) -> Table:
    table = Table(
        title=f"{execution.job_name} - job execution {execution.id}", title_justify="left"
    )
    table.add_column("step")
    table.add_column("status")
    for name in ("read", "written", "filtered", "commits"):
        table.add_column(name, justify="right")
    table.add_column("duration", justify="right")
    for se in execution.step_executions:
        colour = "green" if se.status.value == "COMPLETED" else "red"
        table.add_row(
            se.step_name,
            f"[{colour}]{se.status.value}[/{colour}]",
            f"{se.read_count:,}",
            f"{se.write_count:,}",
            f"{se.filter_count:,}",
            f"{se.commit_count:,}",
            _duration(se),
        )
    return table


def step_notes(execution: JobExecution) -> list[str]:
    """One line per step that said something about its work (its exit description)."""
    return [
        f"{se.step_name}: {se.exit_status.description.splitlines()[0]}"
        for se in execution.step_executions
        if se.exit_status.description and se.status.value == "COMPLETED"
    ]


def summary_table(trade_date: dt.date, rows: Sequence[sa.Row[Any]]) -> Table:
    table = Table(
        title=f"Top {len(rows)} symbols by notional, {trade_date}",
        title_justify="left",
        caption="notional = quantity x price, in the trade currency",
        caption_justify="left",
    )
    table.add_column("symbol")
    table.add_column("trades", justify="right")
    table.add_column("quantity", justify="right")
    table.add_column("notional", justify="right")
    table.add_column("ccy")
    for row in rows:
        table.add_row(
            row.symbol,
            f"{row.trades:,}",
            f"{row.quantity:,}",
            f"{row.notional:,.2f}",
            row.currency,
        )
    return table


def already_complete(
    console: Console, trade_date: dt.date, previous: JobExecution | None, output: str
) -> None:
    when = (
        f", finished {previous.end_time:%Y-%m-%d %H:%M:%S} UTC"
        if previous is not None and previous.end_time is not None
        else ""
    )
    which = f"execution {previous.id}{when}" if previous is not None else "an earlier execution"
    following = trade_date + dt.timedelta(days=1)
    extra = "" if output == "demo-output" else f" --output {output}"
    console.print(
        f"[bold]import_trades for trade_date={trade_date} already completed[/bold] ({which}).\n"
        "A completed job instance never runs again: its trades are loaded. "
        "To start a new instance, give another trade date:\n"
        f'  make demo ARGS="--date {following}{extra}"\n'
        f"  python -m batchline.demo --date {following}{extra}",
        soft_wrap=True,
    )
