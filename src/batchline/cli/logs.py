"""``batchline logs ID``: an execution's log lines from the repository, followed with -f."""

from __future__ import annotations

import logging
import time

import click

from batchline.cli.jobs import EXECUTION_ID
from batchline.cli.state import state
from batchline.errors import ConfigurationError
from batchline.terminal import printable

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
FOLLOW_INTERVAL = 1.0


@click.command()
@click.argument("execution_id", type=EXECUTION_ID)
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines until it ends.")
@click.option(
    "--level",
    type=click.Choice(LEVELS, case_sensitive=False),
    help="Only lines at this level and above.",
)
def logs(execution_id: int, follow: bool, level: str | None) -> None:
    """The log lines of a job execution, from every process that worked on it, in order."""
    from batchline.repository.logs import ExecutionLogs

    engine = state().engine()
    bind = getattr(engine.repository, "engine", None)
    if bind is None:
        raise ConfigurationError("this repository keeps no logs (not an SQL repository)")
    store = ExecutionLogs(bind)
    threshold = logging.getLevelName(level.upper()) if level else logging.NOTSET
    after: int | None = None
    running = engine.repository.get_job_execution(execution_id).status.is_running
    while True:
        page = store.page(execution_id, after=after, level=threshold, limit=1000)
        for line in page.items:
            click.echo(printable(line.text()))
        after = page.next_after
        if len(page.items) == 1000:
            continue
        if not (follow and running):
            break
        time.sleep(FOLLOW_INTERVAL)
        # One more page after the end: what the last processes flushed as it ended.
        running = engine.repository.get_job_execution(execution_id).status.is_running
    if page.dropped:
        click.echo(f"... {page.dropped} more lines dropped (cap {page.cap})", err=True)
