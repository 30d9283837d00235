"""``batchline watch``: start a job for every file that arrives in a folder (any fsspec URL)."""

from __future__ import annotations

import click

from batchline.cli import output
from batchline.cli.jobs import non_identifying_option, parse_parameters
from batchline.cli.running import log, serve_until_signal
from batchline.cli.state import state
from batchline.cli.types import SECONDS
from batchline.errors import ConfigurationError
from batchline.status import BatchStatus


@click.command()
@click.argument("job")
@click.argument("url")
@click.argument("parameters", nargs=-1, metavar="[NAME[:TYPE]=VALUE]...")
@non_identifying_option
@click.option("--pattern", default="*", show_default=True, help="Glob of the files to take.")
@click.option(
    "--parameter", default="file", show_default=True, help="Parameter that gets the file URL."
)
@click.option(
    "--interval", type=SECONDS, default=5.0, show_default=True, help="Seconds between polls."
)
@click.option(
    "--wait-stable/--no-wait-stable",
    default=True,
    help="Take a file once two polls see the same size (off when files arrive atomically).",
)
@click.option("--once", is_flag=True, help="Poll once, wait for the launched jobs, exit.")
def watch(
    job: str,
    url: str,
    parameters: tuple[str, ...],
    non_identifying: tuple[str, ...],
    pattern: str,
    parameter: str,
    interval: float,
    wait_stable: bool,
    once: bool,
) -> None:
    """Launch JOB once per file arriving at URL, with the file's URL as a parameter.

    Several watchers may poll one folder: each file still starts exactly one execution.
    Runs until SIGTERM/SIGINT (exit 0); with --once, exits with the worst job outcome.
    """
    from batchline.triggers.files import FolderWatcher

    st = state()
    resolved = st.job(job)
    params = parse_parameters(parameters, non_identifying)
    engine = st.engine()
    try:
        watcher = FolderWatcher(
            engine,
            resolved,
            url,
            pattern=pattern,
            parameter=parameter,
            parameters=params,
            interval=interval,
            require_stable=wait_stable and not once,
        )
    except (ValueError, ImportError) as err:  # fsspec: unknown protocol, or its package missing
        raise ConfigurationError(f"cannot watch {url!r}: {err}") from None
    if not watcher.fs.isdir(watcher.root):
        if once:
            raise ConfigurationError(f"cannot watch {url!r}: no such folder")
        log.warning("%s: no folder %s yet; polling until it appears", resolved.name, url)
    if once:
        statuses = [handle.wait().status for handle in watcher.poll()]
        click.echo(f"{len(statuses)} execution(s) launched")
        worst = max(statuses, key=lambda s: s.severity, default=BatchStatus.COMPLETED)
        raise click.exceptions.Exit(output.exit_code_for(worst))
    log.info("watching %s for %s every %gs", watcher, pattern, interval)
    watcher.start()
    serve_until_signal(engine, watcher.running, watcher.stop)
