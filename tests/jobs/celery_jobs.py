"""The partitioned copy of partition_jobs, with its partitions on Celery workers.

Loaded by the test (the manager's side) and by ``batchline --jobs tests.jobs.celery_jobs worker``
(the workers'). The broker, the queue and the lease come from the environment, so concurrent
test runs use queues of their own: BATCHLINE_TEST_BROKER, BATCHLINE_TEST_QUEUE,
BATCHLINE_TEST_LEASE. ``duplicating_job`` sends every task twice, as a broker may deliver it;
``retrying_job`` offers a lost worker's partition to another worker.
"""

from __future__ import annotations

import os

from batchline import JobBuilder, StepBuilder, StepExecution
from batchline.remote import CeleryPartitionHandler
from tests.jobs.partition_jobs import GRID, copy_rows, table_partitioner

BROKER_ENV = "BATCHLINE_TEST_BROKER"
QUEUE_ENV = "BATCHLINE_TEST_QUEUE"
LEASE_ENV = "BATCHLINE_TEST_LEASE"
CLAIM_ENV = "BATCHLINE_TEST_CLAIM_TIMEOUT"


def _handler(
    cls: type[CeleryPartitionHandler] = CeleryPartitionHandler, on_worker_lost: str = "fail"
) -> CeleryPartitionHandler:
    return cls(
        os.environ.get(BROKER_ENV, "redis://127.0.0.1:6379/0"),
        queue=os.environ.get(QUEUE_ENV, "batchline-test"),
        lease=float(os.environ.get(LEASE_ENV, "60")),
        claim_timeout=float(os.environ.get(CLAIM_ENV, "120")),
        poll_interval=0.1,
        on_worker_lost=on_worker_lost,  # type: ignore[arg-type]
    )


class Duplicating(CeleryPartitionHandler):
    """Sends each partition's task twice: the claim must make the second a no-op."""

    def _send(self, request: object, step_execution_id: int, url: str) -> None:  # type: ignore[override]
        super()._send(request, step_execution_id, url)  # type: ignore[arg-type]
        super()._send(request, step_execution_id, url)  # type: ignore[arg-type]


def _record_pid(se: StepExecution) -> None:
    assert se.job_execution is not None
    se.job_execution.context["pid"] = os.getpid()


# A whole job for CeleryLauncher: where it ran, and 50 items counted.
whole_job = (
    JobBuilder("celery_whole")
    .step(StepBuilder("where").task(_record_pid))
    .step(StepBuilder("count").chunk(10).reader(lambda se: range(50)).writer(lambda items: None))
    .build()
)


def _wait_for_gate(se: StepExecution) -> None:
    """Holds the job STARTED until the test creates the file named by the ``gate`` parameter."""
    from pathlib import Path

    from batchline.testing import eventually

    gate = Path(str(se.parameters["gate"]))
    eventually(gate.exists, timeout=60, interval=0.05, message="the gate stayed shut")


# A whole job that stays STARTED until its gate opens: STARTING -> STARTED -> COMPLETED.
gated_job = (
    JobBuilder("celery_gated")
    .step(StepBuilder("where").task(_record_pid))
    .step(StepBuilder("wait").task(_wait_for_gate))
    .build()
)


def _job(name: str, handler: CeleryPartitionHandler) -> object:
    step = StepBuilder("copy").partition(
        copy_rows(), table_partitioner, grid_size=GRID, handler=handler
    )
    return JobBuilder(name).step(step).build()


# A worker started with BATCHLINE_TEST_SPAN_FILE exports its spans there (its pool processes
# are forked after this import, so they inherit the provider).
if os.environ.get("BATCHLINE_TEST_SPAN_FILE"):
    from tests.jobs.obs_jobs import _trace_to_file

    _trace_to_file(os.environ["BATCHLINE_TEST_SPAN_FILE"])

celery_job = _job("celery_copy", _handler())
duplicating_job = _job("celery_copy_twice", _handler(Duplicating))
retrying_job = _job("celery_copy_retry", _handler(on_worker_lost="retry"))


def main(argv: list[str]) -> int:
    """``python -m tests.jobs.celery_jobs URL``: run ``celery_copy`` as its manager, with a
    lease of BATCHLINE_TEST_LEASE seconds, so a test can SIGKILL the manager."""
    import sys

    from batchline import Engine

    url = argv[0]
    lease = float(os.environ.get(LEASE_ENV, "60"))
    with Engine(url, lease=lease, heartbeat_interval=lease / 5) as engine:
        execution = engine.start(celery_job, {"db": url})  # type: ignore[arg-type]
    print(execution.id, execution.status.value, file=sys.stderr)
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
