"""What the CLI prints and how it exits.

Exit codes, one per outcome, so a scheduler or a shell script can branch on them:

====  ====================================================================================
code  meaning
====  ====================================================================================
0     the job COMPLETED (or a command other than start/restart succeeded)
1     the job FAILED (also ABANDONED or UNKNOWN), or an unexpected error
2     usage error: bad option or parameter, unknown job or execution, missing parameter
3     the job STOPPED (a stop request, SIGTERM or SIGINT); restart it to go on
4     launch refused: already running, already complete, not restartable, lease still live
5     the job repository cannot be reached
====  ====================================================================================
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from batchline.errors import (
    BatchlineError,
    ConfigurationError,
    JobExecutionNotRunning,
    LaunchRefused,
    NoSuchExecution,
    ParameterError,
)
from batchline.model import JobExecution, StepExecution
from batchline.status import BatchStatus
from batchline.terminal import printable as printable

EXIT_COMPLETED = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_STOPPED = 3
EXIT_REFUSED = 4
EXIT_UNREACHABLE = 5

EXIT_CODES_HELP = """\b
Exit codes:
  0  completed
  1  failed (also abandoned or unknown)
  2  usage error: bad option or parameter, unknown job or execution
  3  stopped (a stop request, SIGTERM or SIGINT); restart to go on
  4  launch refused: already running or complete, heartbeat lease still live
  5  job repository unreachable"""


def exit_code_for(status: BatchStatus) -> int:
    if status is BatchStatus.COMPLETED:
        return EXIT_COMPLETED
    if status is BatchStatus.STOPPED:
        return EXIT_STOPPED
    return EXIT_FAILED


def exit_code_for_error(err: BaseException) -> int:
    """The exit code of an error that ends a command before (or instead of) a final status."""
    from batchline.repository.database import is_unreachable  # SQLAlchemy: only on an error

    if is_unreachable(err):
        return EXIT_UNREACHABLE
    if isinstance(err, ConfigurationError | ParameterError | NoSuchExecution):
        return EXIT_USAGE
    if isinstance(err, LaunchRefused | JobExecutionNotRunning):
        return EXIT_REFUSED
    return EXIT_FAILED


def one_line(err: BaseException) -> str:
    """The first line of an error's message: the CLI never prints a traceback."""
    if not isinstance(err, BatchlineError):
        orig = getattr(err, "orig", None)
        err = orig if isinstance(orig, BaseException) else err
    lines = str(err).strip().splitlines()
    text = lines[0] if lines else type(err).__name__
    return text if isinstance(err, BatchlineError) else f"{type(err).__name__}: {text}"


def literal(value: object, style: str = "") -> Text:
    """A table cell or title from data: printed as it is, never read as rich markup."""
    if isinstance(value, Text):
        return value
    return Text(printable(str(value)), style=style)


def add_row(table: Table, *cells: object) -> None:
    table.add_row(*(literal(cell) for cell in cells))


def when(moment: dt.datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else "-"


def duration(start: dt.datetime | None, end: dt.datetime | None) -> str:
    if start is None or end is None:
        return "-"
    seconds = (end - start).total_seconds()
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


_STYLE = {
    BatchStatus.COMPLETED: "green",
    BatchStatus.FAILED: "red",
    BatchStatus.STOPPED: "yellow",
    BatchStatus.ABANDONED: "magenta",
    BatchStatus.UNKNOWN: "red",
}


def styled(status: BatchStatus) -> Text:
    return Text(status.value, style=_STYLE.get(status, "cyan"))


def parameters_text(execution: JobExecution) -> str:
    params = execution.parameters
    parts = []
    for name in params:
        param = params.parameter(name)
        value = param.value.isoformat() if isinstance(param.value, dt.date) else param.value
        mark = "" if param.identifying else " (non-identifying)"
        parts.append(f"{name}:{param.type_name}={value}{mark}")
    return "\n".join(parts) or "-"


def executions_table(executions: Iterable[JobExecution], title: str = "Job executions") -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("id", "job", "instance", "status", "exit code", "started", "duration"):
        table.add_column(column, justify="right" if column in ("id", "instance") else "left")
    table.add_column("parameters")
    for e in executions:
        add_row(
            table,
            str(e.id),
            e.job_name,
            str(e.instance.id),
            styled(e.status),
            e.exit_status.code,
            when(e.start_time or e.create_time),
            duration(e.start_time, e.end_time),
            parameters_text(e),
        )
    return table


def execution_detail(execution: JobExecution) -> Table:
    title = literal(f"Job execution {execution.id}")
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column("field", style="bold")
    table.add_column("value")
    rows: list[tuple[str, str | Text]] = [
        ("job", execution.job_name),
        ("instance", f"{execution.instance.id} (key {execution.instance.job_key[:12]})"),
        ("status", styled(execution.status)),
        ("exit code", execution.exit_status.code),
        ("created", when(execution.create_time)),
        ("started", when(execution.start_time)),
        ("ended", when(execution.end_time)),
        ("duration", duration(execution.start_time, execution.end_time)),
        ("parameters", parameters_text(execution)),
    ]
    message = summary(execution.exit_status.description)
    if message:
        rows.append(("exit message", message))
    if execution.context:
        rows.append(("context", json.dumps(dict(execution.context), sort_keys=True)[:500]))
    for name, value in rows:
        add_row(table, name, value)
    return table


def steps_table(steps: Iterable[StepExecution], title: str = "Step executions") -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("id", justify="right")
    table.add_column("step")
    table.add_column("status")
    for column in ("read", "written", "filtered", "skipped r/p/w", "commits", "rollbacks"):
        table.add_column(column, justify="right")
    table.add_column("duration")
    table.add_column("exit code")
    for s in steps:
        add_row(
            table,
            str(s.id),
            s.step_name,
            styled(s.status),
            f"{s.read_count:,}",
            f"{s.write_count:,}",
            f"{s.filter_count:,}",
            f"{s.read_skip_count}/{s.process_skip_count}/{s.write_skip_count}",
            f"{s.commit_count:,}",
            f"{s.rollback_count:,}",
            duration(s.start_time, s.end_time),
            s.exit_status.code,
        )
    return table


def skipped_table(skips: Iterable[Any], title: str = "Skipped items") -> Table:
    """Rows of whatever the repository records for skipped items (SkippedItem)."""
    table = Table(title=title, title_justify="left")
    for column in ("step", "phase", "position", "item", "error"):
        table.add_column(column, overflow="fold")
    for skip in skips:
        item = getattr(skip, "item", None) or "-"
        add_row(
            table,
            str(getattr(skip, "step_name", None) or getattr(skip, "step_execution_id", "-")),
            str(getattr(skip, "phase", "-")),
            str(getattr(skip, "position", None) or "-"),
            item if len(item) <= 80 else item[:77] + "...",
            f"{getattr(skip, 'error_type', '')}: {first_lines(getattr(skip, 'error_message', ''))}",
        )
    return table


def first_lines(text: str, count: int = 3) -> str:
    # Split at newlines only: a carriage return or form feed in data is shown, not obeyed.
    lines = [line for line in (text or "").strip().split("\n") if line.strip()]
    return "\n".join(lines[:count])


def summary(description: str, count: int = 5) -> str:
    """An exit message without its traceback: the cause chain comes before the blank line."""
    return first_lines((description or "").strip().split("\n\n", 1)[0], count)


def stdout_console() -> Console:
    console = Console(highlight=False, soft_wrap=False)
    if not console.is_terminal:  # a pipe or a file: 80 columns would fold every table
        console.width = max(console.width, 160)
    return console


def stderr_console() -> Console:
    return Console(stderr=True, highlight=False)
