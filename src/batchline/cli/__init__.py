"""The ``batchline`` command line: start, operate and inspect jobs against a job repository.

Every error batchline raises ends the command with one line on stderr and an exit code from
``batchline.cli.output`` (never a traceback); bugs in batchline itself still show one.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from batchline.cli import output
from batchline.cli.backfill import backfill
from batchline.cli.db import db, purge
from batchline.cli.executions import executions, show, show_step
from batchline.cli.jobs import abandon, list_jobs, recover, restart, start, stop
from batchline.cli.listen import listen
from batchline.cli.logs import logs
from batchline.cli.schedule import schedule
from batchline.cli.serve import serve
from batchline.cli.state import State, configure_logging
from batchline.cli.tokens import token
from batchline.cli.types import SECONDS_OR_ZERO, Seconds
from batchline.cli.watch import watch
from batchline.cli.worker import worker
from batchline.errors import BatchlineError
from batchline.logging import DEFAULT_CAP, KEEP_LOGS_ENV, LOG_CAP_ENV, keep_logs_level
from batchline.repository import DEFAULT_URL

__all__ = ["main"]

_HELP = f"""Run and operate batchline jobs.

\b
A job is named as package.module:attribute (a Job, or a callable returning one), or by name
when its module is loaded with --jobs. Parameters are NAME[:TYPE]=VALUE, TYPE one of str (the
default), int, float, bool, date, datetime; -n marks one non-identifying.

\b
{output.EXIT_CODES_HELP}
"""


def _reported(err: Exception) -> bool:
    """Batchline's errors and the database's. SQLAlchemy is looked up, not imported (so that
    ``--help`` does not load it): an error cannot be one of its own unless it is loaded."""
    if isinstance(err, BatchlineError):
        return True
    sa_exc = sys.modules.get("sqlalchemy.exc")
    return sa_exc is not None and isinstance(err, sa_exc.DBAPIError)


class _UsageError(click.UsageError):
    """Click's usage error as one line, like every other error of the command."""

    def __init__(self, err: click.UsageError) -> None:
        super().__init__(err.format_message(), err.ctx)

    def show(self, file: Any = None) -> None:
        hint = f" (see '{self.ctx.command_path} --help')" if self.ctx is not None else ""
        line = output.printable(" ".join(self.format_message().split()))
        click.echo(f"batchline: error: {line}{hint}", err=True, file=file)


class _Group(click.Group):
    """Turns batchline and database errors into one line on stderr and their exit code."""

    def make_context(self, *args: Any, **kwargs: Any) -> click.Context:
        try:
            return super().make_context(*args, **kwargs)
        except click.UsageError as err:
            raise _UsageError(err) from None

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except _UsageError:
            raise
        except click.UsageError as err:
            raise _UsageError(err) from None
        except Exception as err:
            if not _reported(err):
                raise
            click.echo(f"batchline: error: {output.printable(output.one_line(err))}", err=True)
            ctx.exit(output.exit_code_for_error(err))


@click.group(cls=_Group, help=_HELP, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--repository",
    "-r",
    envvar="BATCHLINE_REPOSITORY",
    default=DEFAULT_URL,
    show_default=True,
    show_envvar=True,
    metavar="URL",
    help="Job repository database URL (SQLAlchemy form).",
)
@click.option(
    "--jobs",
    "job_modules",
    multiple=True,
    envvar="BATCHLINE_JOBS",
    show_envvar=True,
    metavar="MODULE",
    help="Register every Job in MODULE (repeatable; the variable takes a space-separated list).",
)
@click.option(
    "--heartbeat-interval",
    type=Seconds(0.01, inclusive=True),
    default=10.0,
    show_default=True,
    envvar="BATCHLINE_HEARTBEAT_INTERVAL",
    show_envvar=True,
    help="Seconds between heartbeats of a running execution.",
)
@click.option(
    "--lease",
    type=Seconds(0.01, inclusive=True),
    default=60.0,
    show_default=True,
    envvar="BATCHLINE_LEASE",
    show_envvar=True,
    help="Seconds without a heartbeat after which an execution counts as dead.",
)
@click.option(
    "--connect-timeout",
    type=SECONDS_OR_ZERO,
    default=10.0,
    show_default=True,
    envvar="BATCHLINE_CONNECT_TIMEOUT",
    show_envvar=True,
    help="Seconds to wait for a connection to the repository (0: no limit).",
)
@click.option(
    "--statement-timeout",
    type=SECONDS_OR_ZERO,
    default=60.0,
    show_default=True,
    envvar="BATCHLINE_STATEMENT_TIMEOUT",
    show_envvar=True,
    help="Seconds a repository statement may take, a writer's sharing its database included "
    "(0: no limit); a server silent for longer counts as unreachable (exit 5).",
)
@click.option(
    "--sample-interval",
    type=SECONDS_OR_ZERO,
    default=5.0,
    show_default=True,
    envvar="BATCHLINE_SAMPLE_INTERVAL",
    show_envvar=True,
    help="Seconds between two progress samples of a running step (the dashboard's throughput), "
    "each carried by a chunk commit.",
)
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Live progress display (default: when stderr is a terminal; log lines otherwise).",
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    envvar="BATCHLINE_LOG_FORMAT",
    show_envvar=True,
    help="json: one JSON object per log line, with job, step, execution and partition ids "
    "(no live progress display).",
)
@click.option(
    "--push-gateway",
    metavar="URL",
    envvar="BATCHLINE_PUSHGATEWAY",
    show_envvar=True,
    help="Push batchline's Prometheus metrics to this Pushgateway when a job ends, grouped by "
    "job name (the prometheus extra).",
)
@click.option(
    "--otel/--no-otel",
    default=False,
    envvar="BATCHLINE_OTEL",
    show_envvar=True,
    help="Traces and metrics through OpenTelemetry's global providers (the otel extra; set up "
    "the SDK, e.g. with opentelemetry-instrument).",
)
@click.option(
    "--worker-lease",
    type=click.FloatRange(min=0.01, min_open=False),
    default=None,
    envvar="BATCHLINE_WORKER_LEASE",
    show_envvar=True,
    help="Celery workers: seconds without a sign of life after which a partition (or a queued "
    "job) counts as lost [default: 60].",
)
@click.option(
    "--claim-timeout",
    type=click.FloatRange(min=0.1),
    default=None,
    envvar="BATCHLINE_CLAIM_TIMEOUT",
    show_envvar=True,
    help="Celery workers: seconds a partition or queued job waits for a worker's claim before "
    "it is offered again [default: 120 for partitions, 300 for jobs].",
)
@click.option(
    "--on-worker-lost",
    type=click.Choice(["fail", "retry"]),
    default=None,
    envvar="BATCHLINE_ON_WORKER_LOST",
    show_envvar=True,
    help="Celery workers: a lost partition fails the step, or is offered to another worker "
    "[default: fail].",
)
@click.option(
    "--keep-logs",
    type=click.Choice(
        ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL", "OFF"], case_sensitive=False
    ),
    default="INFO",
    show_default=True,
    envvar=KEEP_LOGS_ENV,
    show_envvar=True,
    help="Keep a running job's log lines at this level and up, from any logger, with its "
    "execution in the repository (batchline logs ID); OFF keeps none.",
)
@click.option(
    "--log-cap",
    type=click.IntRange(0, 10_000_000),
    default=DEFAULT_CAP,
    show_default=True,
    envvar=LOG_CAP_ENV,
    show_envvar=True,
    help="Log lines kept per execution at most; those after it are counted, not kept.",
)
@click.option("-v", "--verbose", count=True, help="More log output (-v: debug).")
@click.option("-q", "--quiet", is_flag=True, help="Warnings and errors only.")
@click.version_option(package_name="batchline")
@click.pass_context
def main(
    ctx: click.Context,
    repository: str,
    job_modules: tuple[str, ...],
    heartbeat_interval: float,
    lease: float,
    connect_timeout: float,
    statement_timeout: float,
    sample_interval: float,
    progress: bool | None,
    log_format: str,
    push_gateway: str | None,
    otel: bool,
    worker_lease: float | None,
    claim_timeout: float | None,
    on_worker_lost: str | None,
    keep_logs: str,
    log_cap: int,
    verbose: int,
    quiet: bool,
) -> None:
    # Handlers and launchers built without these values read them from the environment
    # (batchline.remote.settings): set here, they reach those built in job modules too.
    for name, value in (
        ("BATCHLINE_WORKER_LEASE", worker_lease),
        ("BATCHLINE_CLAIM_TIMEOUT", claim_timeout),
        ("BATCHLINE_ON_WORKER_LOST", on_worker_lost),
    ):
        if value is not None:
            os.environ[name] = str(value)
    if lease <= heartbeat_interval:
        raise click.BadParameter(
            f"the lease ({lease:g}s) must be longer than the heartbeat interval "
            f"({heartbeat_interval:g}s)",
            param_hint="--lease",
        )
    console = output.stderr_console()
    json_lines = log_format == "json"
    live = not json_lines and (console.is_terminal if progress is None else progress)
    ctx.call_on_close(
        configure_logging(-1 if quiet else verbose, console if live else None, json=json_lines)
    )
    # Exported: the processes this one starts (pool partitions) and a worker's tasks read them.
    os.environ[KEEP_LOGS_ENV], os.environ[LOG_CAP_ENV] = keep_logs.upper(), str(log_cap)
    ctx.obj = State(
        repository=repository,
        job_modules=job_modules,
        heartbeat_interval=heartbeat_interval,
        lease=lease,
        connect_timeout=connect_timeout or None,
        statement_timeout=statement_timeout or None,
        sample_interval=sample_interval,
        progress=live,
        console=console,
        push_gateway=push_gateway or None,
        otel=otel,
        keep_logs=keep_logs_level(),
        log_cap=log_cap,
    )


for _command in (
    start,
    restart,
    stop,
    abandon,
    recover,
    list_jobs,
    executions,
    show,
    show_step,
    logs,
    db,
    purge,
    schedule,
    watch,
    listen,
    serve,
    token,
    worker,
    backfill,
):
    main.add_command(_command)
