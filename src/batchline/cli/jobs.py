"""Commands that launch or change executions: start, restart, stop, abandon, recover, list-jobs."""

from __future__ import annotations

import os
import time

import click
from click.core import ParameterSource
from rich.table import Table

from batchline.cli import audited, output
from batchline.cli.running import run_in_foreground
from batchline.cli.state import state
from batchline.cli.types import SECONDS
from batchline.errors import NoSuchJob
from batchline.parameters import JobParameters

_PARAMS_HELP = "Identifying parameters NAME[:TYPE]=VALUE."

# Ids are BIGINT: a larger number is no execution, and SQLite cannot even bind it.
MAX_ID = 2**63 - 1
EXECUTION_ID = click.IntRange(1, MAX_ID)


def parse_parameters(
    parameters: tuple[str, ...], non_identifying: tuple[str, ...]
) -> JobParameters:
    return JobParameters.parse(identifying=parameters, non_identifying=non_identifying)


non_identifying_option = click.option(
    "-n",
    "--non-identifying",
    "non_identifying",
    multiple=True,
    metavar="NAME[:TYPE]=VALUE",
    help="A parameter that travels with the execution but does not identify the instance.",
)


@click.command(epilog=output.EXIT_CODES_HELP)
@click.argument("job")
@click.argument("parameters", nargs=-1, metavar="[NAME[:TYPE]=VALUE]...")
@non_identifying_option
@click.option(
    "--next",
    "next_instance",
    is_flag=True,
    help="A new instance: the next run.id, and no parameter of earlier runs unless --carry.",
)
@click.option(
    "--carry",
    multiple=True,
    metavar="NAME",
    help="With --next: copy this parameter from the job's newest execution.",
)
@click.option(
    "--queue-to",
    "broker",
    metavar="BROKER_URL",
    help="Queue the execution for `batchline worker` processes on this Celery broker, print "
    "its id and exit 0 (it stays STARTING until a worker claims it).",
)
@click.option("--queue", default="batchline", show_default=True, help="With --queue-to.")
def start(
    job: str,
    parameters: tuple[str, ...],
    non_identifying: tuple[str, ...],
    next_instance: bool,
    carry: tuple[str, ...],
    broker: str | None,
    queue: str,
) -> None:
    """Start JOB (package.module:attribute, or a name loaded with --jobs) and wait for its end.

    SIGTERM or SIGINT stops it at the next chunk boundary (exit 3); restart it later.
    """
    if carry and not next_instance:
        raise click.UsageError("--carry goes with --next")
    ctx = click.get_current_context()
    if broker is None and ctx.get_parameter_source("queue") is not ParameterSource.DEFAULT:
        raise click.UsageError("--queue goes with --queue-to BROKER_URL")
    if next_instance and broker is not None:
        raise click.UsageError("--next and --queue-to do not go together yet")
    st = state()
    resolved = st.job(job)
    params = parse_parameters(parameters, non_identifying)
    if next_instance:
        engine = st.engine()
        run_in_foreground(
            st,
            resolved,
            audited.launch(
                st,
                "start",
                f"job {resolved.name}",
                lambda: engine.start_next_instance_async(resolved, params, carry=carry),
            ),
        )
    resolved.validate(params)  # before connecting: a bad command line needs no database
    engine = st.engine()
    if broker is not None:
        from batchline.remote.launcher import CeleryLauncher

        # The worker's lease: --worker-lease (the launcher reads it), else the engine's.
        launcher = CeleryLauncher(
            broker,
            queue=queue,
            lease=None if os.environ.get("BATCHLINE_WORKER_LEASE") else st.lease,
            heartbeat_interval=st.heartbeat_interval,
        )
        handle = audited.launch(
            st,
            "start",
            f"job {resolved.name}",
            lambda: engine.start_async(resolved, params, on=launcher),
        )()
        click.echo(f"{handle.execution_id} STARTING: queued on {queue!r}")
        return
    run_in_foreground(
        st,
        resolved,
        audited.launch(
            st, "start", f"job {resolved.name}", lambda: engine.start_async(resolved, params)
        ),
    )


@click.command(epilog=output.EXIT_CODES_HELP)
@click.argument("target", metavar="EXECUTION_ID|JOB")
@click.option("--job", "job_ref", metavar="MODULE:ATTR", help="Where the job is defined.")
def restart(target: str, job_ref: str | None) -> None:
    """Restart a FAILED or STOPPED execution (or JOB's last one) where it ended.

    An execution still marked running whose heartbeat lease has run out is first recovered
    (marked FAILED); while its lease is live the restart is refused (exit 4).
    """
    st = state()
    if job_ref is not None:
        st.job(job_ref)
    engine = st.engine()
    if target.isdigit():
        if int(target) > MAX_ID:
            raise click.BadParameter(f"{target} is no execution id", param_hint="TARGET")
        old = engine.get_execution(int(target))
        if old.job_name not in st.registry:
            raise NoSuchJob(
                f"job {old.job_name!r} of execution {old.id} is not loaded: pass --job "
                "MODULE:ATTR or --jobs MODULE"
            )
        job = st.registry.get(old.job_name)
        run_in_foreground(
            st,
            job,
            audited.launch(
                st, "restart", f"execution {old.id}", lambda: engine.restart_async(old.id), old.id
            ),
        )
    job = st.job(target)
    run_in_foreground(
        st,
        job,
        audited.launch(
            st, "restart", f"job {job.name}", lambda: engine.restart_async(job_name=job.name)
        ),
    )


@click.command()
@click.argument("execution_id", type=EXECUTION_ID)
@click.option("--wait/--no-wait", default=False, help="Wait until the execution has ended.")
@click.option("--timeout", type=SECONDS, default=600.0, show_default=True, help="With --wait.")
def stop(execution_id: int, wait: bool, timeout: float) -> None:
    """Ask a running execution to stop at its next chunk boundary."""
    st = state()
    engine = st.engine()
    target = f"execution {execution_id}"
    execution = audited.done(st, "stop", target, lambda: engine.stop(execution_id), execution_id)
    click.echo(f"stop requested for execution {execution_id} ({execution.status.value})")
    if not wait:
        return
    deadline = time.monotonic() + timeout
    while execution.status.is_running and time.monotonic() < deadline:
        time.sleep(0.5)
        execution = engine.get_execution(execution_id)
    output.stdout_console().print(output.execution_detail(execution))
    if execution.status.is_running:
        raise click.ClickException(f"execution {execution_id} still running after {timeout:g}s")
    raise click.exceptions.Exit(output.exit_code_for(execution.status))


@click.command()
@click.argument("execution_id", type=EXECUTION_ID)
def abandon(execution_id: int) -> None:
    """Mark a FAILED, STOPPED or UNKNOWN execution ABANDONED: its instance never runs again."""
    st = state()
    execution = audited.done(
        st,
        "abandon",
        f"execution {execution_id}",
        lambda: st.engine().abandon(execution_id),
        execution_id,
    )
    output.stdout_console().print(output.execution_detail(execution))


@click.command()
@click.argument("execution_id", type=EXECUTION_ID, required=False)
@click.option("--force", is_flag=True, help="Recover even while the lease is live.")
def recover(execution_id: int | None, force: bool) -> None:
    """Mark dead executions FAILED (all of them, or EXECUTION_ID) so they can be restarted.

    Dead: still marked running, but no heartbeat within the lease. Use --force only when you
    know the process is gone.
    """
    skipped: list[str] = []
    st = state()
    target = "dead executions" if execution_id is None else f"execution {execution_id}"
    with audited.refusals(st, "recover", target, execution_id):
        recovered = st.engine().recover(
            execution_id, force=force, skipped=lambda i, why: skipped.append(f"{i}: {why}")
        )
    ids = ", ".join(str(e.id) for e in recovered)
    audited.record(
        st,
        "recover",
        target,
        execution_id=execution_id,
        detail=f"recovered {ids}" if ids else "none was dead",
    )
    for line in skipped:
        click.echo(line)
    if not recovered:
        live = st.engine().running_executions() if execution_id is None else []
        if live:  # say why nothing was done: the running ones renew their leases
            listed = ", ".join(f"{e.id} ({e.job_name}, {e.status.value})" for e in live)
            click.echo(f"no dead executions; running with a live lease: {listed}")
        else:
            click.echo("no dead executions")
        return
    console = output.stdout_console()
    console.print(output.executions_table(recovered, title="Recovered executions"))
    for execution in recovered:
        console.print(output.literal(f"{execution.id}: {execution.exit_status.description}"))


@click.command("list-jobs")
def list_jobs() -> None:
    """Jobs loaded with --jobs and jobs the repository has run, with their last execution."""
    st = state()
    engine = st.engine()
    names = set(st.registry.names())
    names.update(engine.repository.job_names())
    table = Table(title="Jobs", title_justify="left")
    for column in ("job", "loaded", "steps", "last execution", "status", "started"):
        table.add_column(column)
    for name in sorted(names):
        loaded = name in st.registry
        steps = ", ".join(s.name for s in st.registry.get(name).steps) if loaded else "-"
        last = engine.repository.last_job_execution(name)
        output.add_row(
            table,
            name,
            "yes" if loaded else "no",
            steps,
            str(last.id) if last else "-",
            output.styled(last.status) if last else "-",
            output.when(last.start_time or last.create_time) if last else "-",
        )
    output.stdout_console().print(table)
