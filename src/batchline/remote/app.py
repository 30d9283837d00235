"""The Celery application batchline's workers run: settings chosen for long partition tasks.

- Acknowledge early (``task_acks_late=False``): the repository, not the broker, guarantees the
  work. A task lost with its worker leaves its partition unclaimed (STARTING) or claimed and
  silent; the manager sees either in the repository and acts.
- Prefetch one task per worker process (``worker_prefetch_multiplier=1``): a busy worker does
  not hoard queued partitions.
- No redelivery loops: early acknowledgement means Redis's visibility timeout never re-sends a
  running task, and RabbitMQ's consumer timeout never kills a long unacknowledged one.
- JSON only: messages carry names and ids, and are never unpickled.
- A message a worker took and was killed holding (prefetched, not started) is not lost: RabbitMQ
  delivers it again when the worker's connection drops; on Redis kombu puts it back once its
  visibility timeout has passed, which a worker sets to ``claim_timeout`` (kombu's default is an
  hour), checked every tenth of it. A message put back while it still waits in a busy worker
  finds its execution claimed when it is run twice: the claim decides.
"""

from __future__ import annotations

from typing import Any

from celery import Celery

from batchline.registry import JobRegistry

# A send retries briefly (a connection being re-established, about 1.5 s), then raises: the
# caller decides (the partition handler sends again later, a launcher fails the execution).
PUBLISH_RETRY = {"max_retries": 3, "interval_start": 0.2, "interval_step": 0.3, "interval_max": 0.5}

TASK = "batchline.run_partition"
JOB_TASK = "batchline.run_job"
DEFAULT_QUEUE = "batchline"


def make_app(
    broker: str,
    *,
    queue: str = DEFAULT_QUEUE,
    registry: JobRegistry | None = None,
    claim_timeout: float | None = None,
) -> Any:
    """A Celery app on ``broker`` (``redis://...`` or ``amqp://...``) with batchline's task.

    ``registry`` holds the jobs a worker may run (``batchline worker --jobs`` fills it); the
    manager's side needs none. ``claim_timeout`` (a worker's): on Redis, how long a message
    taken by a worker that died before starting it waits before it is delivered again.
    """
    app = Celery("batchline", broker=broker, set_as_current=False)
    app.conf.update(
        task_acks_late=False,
        worker_prefetch_multiplier=1,
        task_serializer="json",
        accept_content=["json"],
        result_backend=None,
        task_ignore_result=True,
        task_default_queue=queue,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
    )
    if claim_timeout is not None and broker.split(":", 1)[0] in ("redis", "rediss"):
        app.conf.broker_transport_options = {
            "visibility_timeout": claim_timeout,
            "unacked_restore_interval": max(min(claim_timeout / 10, 10.0), 0.5),
            "unacked_restore_throttle": 1,
        }
    app.batchline_registry = registry if registry is not None else JobRegistry()

    from batchline.remote.worker import run_job, run_partition

    app.task(name=TASK, bind=True)(run_partition)
    app.task(name=JOB_TASK, bind=True)(run_job)
    return app
