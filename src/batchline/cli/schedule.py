"""``batchline schedule``: run a job on a cron schedule until SIGTERM or SIGINT."""

from __future__ import annotations

import click

from batchline.cli import audited
from batchline.cli.jobs import non_identifying_option, parse_parameters
from batchline.cli.running import log, serve_until_signal
from batchline.cli.state import state
from batchline.cli.types import SECONDS


@click.command()
@click.argument("job")
@click.argument("cron")
@click.argument("parameters", nargs=-1, metavar="[NAME[:TYPE]=VALUE]...")
@non_identifying_option
@click.option(
    "--misfire-grace-time",
    type=SECONDS,
    default=300.0,
    show_default=True,
    help="Seconds an occurrence may be late and still run; later ones are skipped.",
)
@click.option("--coalesce/--no-coalesce", default=True, help="Run only the latest of due ones.")
@click.option(
    "--catch-up/--no-catch-up",
    default=True,
    help="On start, run the latest occurrence missed within the grace time.",
)
@click.option(
    "--overlap/--no-overlap",
    default=True,
    help="--no-overlap: skip an occurrence while an earlier one still runs.",
)
@click.option("--timezone", default="UTC", show_default=True, help="Time zone of the cron fields.")
@click.option(
    "--parameter",
    default="scheduled_at",
    show_default=True,
    help="Identifying datetime parameter that receives the occurrence's fire time.",
)
def schedule(
    job: str,
    cron: str,
    parameters: tuple[str, ...],
    non_identifying: tuple[str, ...],
    misfire_grace_time: float,
    coalesce: bool,
    catch_up: bool,
    overlap: bool,
    timezone: str,
    parameter: str,
) -> None:
    """Launch JOB at every occurrence of CRON (quoted; 5 fields, or 6 with seconds first).

    Each occurrence's fire time is an identifying parameter, so replicas of this command
    against one repository run each occurrence once. Stops on SIGTERM/SIGINT (exit 0).
    """
    from batchline.triggers.schedule import JobScheduler

    st = state()
    resolved = st.job(job)
    params = parse_parameters(parameters, non_identifying)
    scheduler = JobScheduler(
        st.engine(),
        misfire_grace_time=misfire_grace_time,
        coalesce=coalesce,
        catch_up=catch_up,
        timezone=timezone,
        parameter=parameter,
    )
    target = f"job {resolved.name}"
    with audited.refusals(st, "schedule", target):
        scheduler.add(resolved, cron, params, overlap=overlap)
        scheduler.start()
    audited.record(st, "schedule", target, detail=f"cron {cron!r} ({timezone})")
    for name, when in scheduler.next_fire_times().items():
        log.info("scheduled %s; next occurrence %s", name, when)
    serve_until_signal(st.engine(), scheduler.running, scheduler.shutdown)
