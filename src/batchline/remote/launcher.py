"""Whole jobs on Celery workers: ``engine.start_async(job, params, on=CeleryLauncher(broker))``.

The execution is created where it is launched (so launch errors and refusals raise there) and
stays STARTING, the seed's "waiting for execution", until a worker claims it: the claim is the
run's first write, STARTING -> STARTED at the version read (``Engine.run_queued``), so a task
delivered twice runs once. The task carries the execution's id and the repository's URL only.
"""

from __future__ import annotations

from types import EllipsisType
from typing import Any

from batchline.errors import ConfigurationError
from batchline.job import Job
from batchline.model import JobExecution
from batchline.remote import settings
from batchline.remote.app import DEFAULT_QUEUE, JOB_TASK, PUBLISH_RETRY, make_app
from batchline.repository.base import JobRepository


class CeleryLauncher:
    """Queues job executions for ``batchline worker`` processes on ``broker``.

    The worker runs the job under an engine with this ``lease`` and ``heartbeat_interval``.
    ``claim_timeout``: the execution waits this long for a worker's claim (``recover`` and
    ``restart`` leave it alone until then; past it ``recover`` fails it, saying no worker
    claimed it), and while the launching engine follows it (its handle) it is sent again after
    as long: with early acknowledgement a worker killed between taking the message and
    claiming the execution loses the message. None waits for good and never sends again (a
    queue may be idle for long on purpose). Unset, ``lease`` and ``claim_timeout`` come from
    ``$BATCHLINE_WORKER_LEASE`` and ``$BATCHLINE_CLAIM_TIMEOUT`` (60 s and 300 s without).
    """

    def __init__(
        self,
        broker: str,
        *,
        queue: str = DEFAULT_QUEUE,
        lease: float | None = None,
        heartbeat_interval: float = 10.0,
        claim_timeout: float | EllipsisType | None = ...,
    ) -> None:
        lease = settings.seconds(lease, settings.LEASE_ENV, settings.DEFAULT_LEASE)
        if heartbeat_interval <= 0 or lease <= heartbeat_interval:
            raise ConfigurationError("celery launcher: the lease must exceed the heartbeat")
        self.broker = broker
        self.queue = queue
        self.lease = lease
        self.heartbeat_interval = heartbeat_interval
        if claim_timeout is ...:
            claim_timeout = settings.seconds(
                None, settings.CLAIM_TIMEOUT_ENV, settings.DEFAULT_CLAIM_TIMEOUT
            )
        elif claim_timeout is not None and claim_timeout <= 0:
            raise ConfigurationError("celery launcher: claim_timeout must be > 0 seconds or None")
        self.claim_timeout: float | None = claim_timeout
        self._app: Any = None

    def __repr__(self) -> str:
        return f"CeleryLauncher(queue={self.queue!r})"

    def check_repository(self, url: str | None, job_name: str) -> None:
        """Workers elsewhere must reach the repository: refused before anything is recorded."""
        if url is None or url.startswith("sqlite"):
            raise ConfigurationError(
                f"job {job_name!r}: jobs on remote workers need a repository they can reach "
                "(PostgreSQL or MariaDB), not SQLite"
            )

    def send(self, job: Job, execution: JobExecution, repository: JobRepository) -> None:
        url = repository.url()
        self.check_repository(url, job.name)
        assert url is not None
        if self._app is None:
            self._app = make_app(self.broker, queue=self.queue)
        self._app.send_task(
            JOB_TASK,
            args=[
                execution.id,
                url,
                self.lease,
                self.heartbeat_interval,
                repository.sample_interval(),
            ],
            queue=self.queue,
            retry_policy=PUBLISH_RETRY,
        )
