"""Commands that read the repository: executions, show, show-step."""

from __future__ import annotations

import datetime as dt
import json

import click
from rich.table import Table

from batchline.cli import output
from batchline.cli.jobs import EXECUTION_ID, MAX_ID
from batchline.cli.state import state
from batchline.errors import NoSuchExecution
from batchline.parameters import ParamValue, parse_parameter
from batchline.repository.filters import RUNNING, ExecutionQuery
from batchline.status import BatchStatus


@click.command()
@click.option("--job", "job_name", metavar="NAME", help="Only this job's executions.")
@click.option("--job-prefix", metavar="TEXT", help="Only jobs whose name starts with this.")
@click.option(
    "--running", is_flag=True, help="Running now: STARTING, STARTED or STOPPING (with --status)."
)
@click.option(
    "--message",
    metavar="TEXT",
    help="Exit message holds this (any case; the newest 10,000 candidates per page).",
)
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice([s.value for s in BatchStatus], case_sensitive=False),
    help="Only executions with this status (repeatable: any of them).",
)
@click.option("--since", type=click.DateTime(), help="Created at or after this time (UTC).")
@click.option("--until", type=click.DateTime(), help="Created before this time (UTC).")
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="NAME[:TYPE]=VALUE",
    help="Only executions with this parameter value (repeatable: all of them).",
)
@click.option("--after", type=EXECUTION_ID, help="Ids below this one: the next page.")
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
def executions(
    job_name: str | None,
    job_prefix: str | None,
    running: bool,
    message: str | None,
    statuses: tuple[str, ...],
    since: dt.datetime | None,
    until: dt.datetime | None,
    params: tuple[str, ...],
    after: int | None,
    limit: int,
) -> None:
    """List job executions, newest first, filtered in the repository."""
    query = ExecutionQuery.of(
        job_name=job_name,
        job_prefix=job_prefix,
        message=message,
        statuses=[*statuses, *(RUNNING if running else ())],
        created_from=since,
        created_to=until,
        parameters=dict(_value(p) for p in params),
    )
    page = state().engine().find_executions(query, after=after, limit=limit)
    console = output.stdout_console()
    console.print(output.executions_table(page.items))
    if page.next_after is not None:
        console.print(f"next page: --after {page.next_after}")


def _value(text: str) -> tuple[str, ParamValue]:
    name, parameter = parse_parameter(text)
    return name, parameter.value


@click.command()
@click.argument("execution_id", type=EXECUTION_ID)
@click.option(
    "--skipped",
    "skipped_limit",
    type=click.IntRange(0, MAX_ID),
    default=20,
    show_default=True,
    help="Skips listed.",
)
def show(execution_id: int, skipped_limit: int) -> None:
    """One job execution: its parameters, outcome, step executions and skipped items."""
    engine = state().engine()
    execution = engine.get_execution(execution_id)
    console = output.stdout_console()
    console.print(output.execution_detail(execution))
    console.print(output.steps_table(execution.step_executions))
    skipped = getattr(engine.repository, "skipped_items", None)
    if (
        skipped_limit > 0
        and callable(skipped)
        and any(s.skip_count for s in execution.step_executions)
    ):
        console.print(output.skipped_table(skipped(execution_id, limit=skipped_limit)))


@click.command("show-step")
@click.argument("execution_id", type=EXECUTION_ID)
@click.argument("step_name")
def show_step(execution_id: int, step_name: str) -> None:
    """One step execution of a job execution: counters, context, exit message, skips."""
    engine = state().engine()
    steps = [s for s in engine.step_executions(execution_id) if s.step_name == step_name]
    if not steps:
        raise NoSuchExecution(f"job execution {execution_id} has no step named {step_name!r}")
    step = steps[0]
    table = Table(title=output.literal(f"Step {step.step_name} ({step.id})"), show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    output.add_row(table, "status", output.styled(step.status))
    output.add_row(table, "exit code", step.exit_status.code)
    for name, value in step.counters().items():
        output.add_row(table, name.replace("_count", "").replace("_", " "), f"{value:,}")
    output.add_row(table, "started", output.when(step.start_time))
    output.add_row(table, "ended", output.when(step.end_time))
    output.add_row(table, "duration", output.duration(step.start_time, step.end_time))
    output.add_row(table, "context", json.dumps(dict(step.context), sort_keys=True)[:1000] or "{}")
    message = output.first_lines(step.exit_status.description, 5)
    if message:
        output.add_row(table, "exit message", message)
    console = output.stdout_console()
    console.print(table)
    skipped = getattr(engine.repository, "skipped_items", None)
    if step.skip_count and callable(skipped):
        console.print(output.skipped_table(skipped(execution_id, step_name=step_name, limit=50)))
