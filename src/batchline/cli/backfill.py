"""``batchline backfill``: one job over a range of values, its grid shown as it goes.

The first SIGTERM/SIGINT stops the backfill (its executions end STOPPED at their chunk
boundary, nothing more is launched; ``--resume ID`` goes on); a second exits at once, as a kill
would. The exit code is the worst outcome's.
"""

from __future__ import annotations

import signal
from typing import TYPE_CHECKING

import click
from rich.console import Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from batchline.cli import audited, output
from batchline.cli.jobs import EXECUTION_ID, non_identifying_option, parse_parameters
from batchline.cli.running import GracefulStop
from batchline.cli.state import State, state
from batchline.status import BatchStatus

if TYPE_CHECKING:
    from batchline.backfill.grid import BackfillState
    from batchline.backfill.operations import BackfillHandle
    from batchline.launching import Launcher

REFRESH = 0.5  # seconds between two readings of the grid
GRID_COLUMNS = 7
_LABEL = {
    "PENDING": ("·", "dim"),
    "STARTING": ("…", "cyan"),
    "STARTED": ("▶", "cyan"),
    "STOPPING": ("■", "yellow"),
    "STOPPED": ("■", "yellow"),
    "COMPLETED": ("✓", "green"),
    "FAILED": ("✗", "red"),
    "ABANDONED": ("-", "magenta"),
    "UNKNOWN": ("?", "red"),
}


@click.command(epilog=output.EXIT_CODES_HELP)
@click.argument("job", required=False)
@click.option(
    "--range",
    "range_spec",
    metavar="NAME:TYPE=FIRST..LAST",
    help="The values: dates (by day, week or month), datetimes (by a duration) or integers.",
)
@click.option("--step", metavar="STEP", help="1d, 2w, 1month; 90s, 15min, 6h; or an integer.")
@click.option("--values", "values_spec", metavar="NAME[:TYPE]=A,B,C", help="A list instead.")
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="NAME[:TYPE]=VALUE",
    help="Another identifying parameter, the same for every instance.",
)
@non_identifying_option
@click.option("--concurrency", type=click.IntRange(1, 256), default=4, show_default=True)
@click.option(
    "--queue-to",
    "broker",
    metavar="BROKER_URL",
    help="Run on `batchline worker` processes of this Celery broker.",
)
@click.option("--queue", default="batchline", show_default=True, help="With --queue-to.")
@click.option(
    "--restart-failed",
    is_flag=True,
    help="Restart values whose instance failed or stopped (else left as they are).",
)
@click.option("--dry-run", is_flag=True, help="Print what would run, run nothing.")
@click.option(
    "--resume",
    "resume_id",
    type=EXECUTION_ID,
    metavar="ID",
    help="Run what backfill ID has not finished (killed, stopped or failed).",
)
def backfill(
    job: str | None,
    range_spec: str | None,
    step: str | None,
    values_spec: str | None,
    params: tuple[str, ...],
    non_identifying: tuple[str, ...],
    concurrency: int,
    broker: str | None,
    queue: str,
    restart_failed: bool,
    dry_run: bool,
    resume_id: int | None,
) -> None:
    """One instance of JOB per value of --range (or --values), at most --concurrency at once.

    Values whose instance completed are skipped, running ones left alone, failed or stopped
    ones restarted only with --restart-failed. Killed and started again (or --resume), it runs
    only what is missing.
    """
    from batchline.backfill.ranges import parse_range, parse_values

    st = state()
    if resume_id is not None:
        if job or range_spec or values_spec or dry_run:
            raise click.UsageError("--resume ID takes no JOB, --range, --values or --dry-run")
        engine = st.engine()  # the job must be loaded (--jobs): the record names it
        handle = audited.done(
            st,
            "backfill-resume",
            f"backfill {resume_id}",
            lambda: engine.resume_backfill(resume_id, on=_launcher(st, broker, queue), wait=True),
        )
        _follow(st, handle)
    if job is None:
        raise click.UsageError("missing JOB (or --resume ID)")
    if (range_spec is None) == (values_spec is None):
        raise click.UsageError("give --range or --values (one of them)")
    if values_spec is not None and step is not None:
        raise click.UsageError("--step goes with --range")
    found = parse_range(range_spec, step) if range_spec else parse_values(values_spec or "")
    resolved = st.job(job)
    parameters = parse_parameters(params, non_identifying)
    engine = st.engine()
    if dry_run:
        _print_plan(engine.backfill_plan(resolved, found, parameters, restart_failed))
        return
    target = f"job {resolved.name}"
    with audited.refusals(st, "backfill", target):
        handle = engine.backfill(
            resolved,
            found,
            parameters=parameters,
            concurrency=concurrency,
            on=_launcher(st, broker, queue),
            restart_failed=restart_failed,
            started_by=audited.actor(),
        )
    audited.record(st, "backfill", target, detail=f"backfill {handle.id} over {found.spec}")
    _follow(st, handle)


def _launcher(st: State, broker: str | None, queue: str) -> Launcher | None:
    if broker is None:
        return None
    from batchline.remote.launcher import CeleryLauncher

    return CeleryLauncher(
        broker, queue=queue, lease=st.lease, heartbeat_interval=st.heartbeat_interval
    )


def _print_plan(rows: list[tuple[str, str, str]]) -> None:
    table = Table(title="Backfill plan (dry run: nothing launched)")
    for column in ("value", "status now", "would"):
        table.add_column(column)
    for row in rows:
        output.add_row(table, *row)
    output.stdout_console().print(table)


def _follow(st: State, handle: BackfillHandle) -> None:
    """Show the grid until the backfill ends; exit with its worst outcome's code."""
    click.echo(f"backfill {handle.id} started", err=True)
    stopper = GracefulStop()
    sent = False
    last = ""
    with (
        stopper.installed(),
        Live(console=st.console, auto_refresh=False, transient=True)
        if st.progress
        else _NoLive() as live,
    ):
        while True:
            try:
                final = handle.wait(timeout=REFRESH)
                break
            except TimeoutError:
                pass
            if stopper.requested and not sent:
                sent = True
                name = signal.Signals(stopper.received or signal.SIGTERM).name
                click.echo(
                    f"batchline: {name} received: stopping backfill {handle.id} (send it again "
                    "to exit at once)",
                    err=True,
                )
                audited.done(st, "backfill-stop", f"backfill {handle.id}", handle.stop)
            grid = handle.state()
            if isinstance(live, Live):
                live.update(render(grid), refresh=True)
            else:
                line = summary_line(grid)
                if line != last:
                    click.echo(line, err=True)
                    last = line
        if isinstance(live, Live):
            live.update(render(final), refresh=True)
    output.stdout_console().print(render(final))
    worst = final.worst()
    raise click.exceptions.Exit(output.exit_code_for(worst or BatchStatus.COMPLETED))


class _NoLive:
    def __enter__(self) -> _NoLive:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def summary_line(grid: BackfillState) -> str:
    counts = ", ".join(f"{s} {n}" for s, n in sorted(grid.counts.items()))
    pace = f", {grid.per_minute:.1f}/min" if grid.per_minute else ""
    eta = f", ETA {grid.eta_seconds:.0f}s" if grid.eta_seconds is not None else ""
    return (
        f"backfill {grid.id} {grid.status}: {grid.finished}/{grid.total} ended ({counts}){pace}"
        f"{eta}"
    )


def render(grid: BackfillState) -> Group:
    """The grid: a cell per value, its status as a symbol and a word, coloured."""
    table = Table(
        title=f"Backfill {grid.id}: {grid.record.job_name} over {grid.record.describe_range()}",
        show_header=False,
        box=None,
        padding=(0, 1),
    )
    for _ in range(GRID_COLUMNS):
        table.add_column()
    cells = [_cell(c.value, c.status, c.execution_id) for c in grid.cells]
    for start in range(0, len(cells), GRID_COLUMNS):
        table.add_row(*cells[start : start + GRID_COLUMNS])
    return Group(table, Text(output.printable(summary_line(grid))))


def _cell(value: str, status: str, execution_id: int | None) -> Text:
    symbol, style = _LABEL.get(status, ("?", ""))
    text = Text(f"{symbol} ", style=style)
    text.append(output.printable(value))
    text.append(f" {status.lower()}" + (f" #{execution_id}" if execution_id else ""), style=style)
    return text
