"""``batchline worker``: a Celery worker that runs partitions of the jobs ``--jobs`` loads."""

from __future__ import annotations

import os

import click

from batchline.cli.state import state


@click.command()
@click.option(
    "--broker",
    envvar="BATCHLINE_BROKER",
    required=True,
    help="Celery broker URL: redis://host:6379/0 or amqp://user:password@host:5672//.",
)
@click.option("--queue", default="batchline", show_default=True, help="Queue to consume.")
@click.option(
    "--concurrency",
    "-c",
    type=click.IntRange(min=1),
    default=None,
    help="Worker processes (default: CPUs).",
)
@click.option("--pool", default="prefork", show_default=True, help="Celery pool: prefork or solo.")
@click.option(
    "--claim-timeout",
    type=click.FloatRange(min=0.1),
    default=300.0,
    show_default=True,
    envvar="BATCHLINE_CLAIM_TIMEOUT",
    show_envvar=True,
    help="Redis: a message a worker took and died holding before starting it is delivered "
    "again after this many seconds (RabbitMQ does it when the worker's connection drops).",
)
@click.option(
    "--hostname",
    "-n",
    default=None,
    help="Celery node name (default: batchline.PID@HOST, unique for each worker process).",
)
def worker(
    broker: str,
    queue: str,
    concurrency: int | None,
    pool: str,
    claim_timeout: float,
    hostname: str | None,
) -> None:
    """Run partitions sent by a CeleryPartitionHandler (needs batchline[celery]).

    Load the jobs whose partitions this worker may run with the group's --jobs option; the
    repository's URL comes with each task. Runs until SIGTERM/SIGINT.
    """
    from batchline.remote.app import make_app

    st = state()
    st.load_modules()
    if not len(st.registry):
        raise click.UsageError("batchline worker needs --jobs MODULE: the jobs it may run")
    app = make_app(broker, queue=queue, registry=st.registry, claim_timeout=claim_timeout)
    argv = ["worker", "--queues", queue, "--pool", pool, "-O", "fair", "--loglevel", "INFO"]
    argv += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
    # Celery's default node name is celery@HOST: a second worker on the same machine would then
    # fail on RabbitMQ, whose per-node control queue is exclusive to the first one.
    argv += ["--hostname", hostname or f"batchline.{os.getpid()}@%h"]
    if concurrency:
        argv += ["--concurrency", str(concurrency)]
    app.worker_main(argv)
