"""``batchline listen``: start a job for every message on a RabbitMQ or Redis queue."""

from __future__ import annotations

import json
from typing import Any

import click

from batchline.cli.jobs import non_identifying_option, parse_parameters
from batchline.cli.running import log, serve_until_signal
from batchline.cli.state import state


def _transport_options(given: tuple[str, ...]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for text in given:
        name, sep, raw = text.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"{text!r}: expected NAME=VALUE", param_hint="-o")
        try:
            options[name] = json.loads(raw)  # 10 is a number, "true" a boolean
        except ValueError:
            options[name] = raw
    return options


@click.command()
@click.argument("job")
@click.argument("url")
@click.argument("parameters", nargs=-1, metavar="[NAME[:TYPE]=VALUE]...")
@click.option(
    "--queue", required=True, metavar="NAME", help="Queue to consume (declared durable if missing)."
)
@non_identifying_option
@click.option(
    "--parameter",
    default="message_id",
    show_default=True,
    help="Identifying parameter that gets the message's identity.",
)
@click.option(
    "--max-failures",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="Failures after which a message goes to the dead-letter queue.",
)
@click.option(
    "--dead-letter-queue", metavar="NAME", help="Where failed messages go [default: QUEUE.dead]."
)
@click.option(
    "--concurrency",
    "-c",
    type=click.IntRange(min=1),
    default=4,
    show_default=True,
    help="Jobs running at once; no message is taken while this many run.",
)
@click.option(
    "--prefetch",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Messages the broker hands over before they are acknowledged.",
)
@click.option(
    "--transport-option",
    "-o",
    "transport_options",
    multiple=True,
    metavar="NAME=VALUE",
    help="A kombu transport option, e.g. confirm_publish=true (repeatable).",
)
def listen(
    job: str,
    url: str,
    parameters: tuple[str, ...],
    queue: str,
    non_identifying: tuple[str, ...],
    parameter: str,
    max_failures: int,
    dead_letter_queue: str | None,
    concurrency: int,
    prefetch: int,
    transport_options: tuple[str, ...],
) -> None:
    """Launch JOB once per message on QUEUE at the broker URL (amqp://... or redis://...).

    \b
    JOB is package.module:attribute, or a job's name with the group's --jobs MODULE:
      batchline listen trades.jobs:load_trades amqp://guest:guest@localhost// --queue trades
      batchline --jobs trades.jobs listen load_trades redis://localhost:6379/0 --queue trades

    The body is a JSON object of job parameters ({"day:date": "2026-11-28", "region": "EU"}),
    non-identifying; the message's message_id property (else a SHA-256 of its body) is the
    identifying --parameter, so a message delivered twice starts one instance. PARAMETERS
    given here go with every launch. A message is acknowledged once its execution is
    recorded; a killed listener's execution is then recovered (batchline recover) and
    restarted like any other. A message that cannot start the job goes back to the queue
    with a failure count, then, after --max-failures, to the dead-letter queue with the
    reason in its x-batchline-error header. On Redis, a message a killed listener held
    goes back onto the queue once its --lease has run out. Needs
    batchline[celery] (kombu).

    Runs until SIGTERM/SIGINT: it finishes the message in hand, takes no more, and stops the
    running executions at their next chunk boundary (exit 0).
    """
    from batchline.triggers.messages import MessageTrigger

    options = _transport_options(transport_options)
    st = state()
    resolved = st.job(job)
    params = parse_parameters(parameters, non_identifying)
    engine = st.engine()
    trigger = MessageTrigger(
        engine,
        resolved,
        url,
        queue=queue,
        parameter=parameter,
        parameters=params,
        max_failures=max_failures,
        dead_letter_queue=dead_letter_queue,
        concurrency=concurrency,
        prefetch=prefetch,
        transport_options=options,
    )
    log.info("listening on %s for %s", queue, resolved.name)
    trigger.start()
    serve_until_signal(engine, trigger.running, trigger.stop)
