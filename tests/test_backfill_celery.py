"""A backfill queued to Celery workers (``on=CeleryLauncher``) whose worker is SIGKILLed midway:
the executions it held are recovered after their lease and run on another worker; the backfill
completes with each instance completed once. Redis with PostgreSQL, RabbitMQ with MariaDB."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from batchline import BatchStatus, Engine
from batchline.remote import CeleryLauncher
from batchline.testing import eventually
from tests.backends import fresh_database, require_broker
from tests.jobs import backfill_jobs
from tests.jobs.backfill_jobs import JOB_NAME, PAUSE_ENV, ROWS, out

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
DAYS = 12


class Worker:
    """A ``batchline worker`` process group loading the backfill jobs."""

    def __init__(self, broker: str, queue: str, log: Path) -> None:
        argv = [sys.executable, "-m", "batchline", "--jobs", "tests.jobs.backfill_jobs"]
        argv += ["worker", "--broker", broker, "--queue", queue, "-c", "2"]
        with log.open("ab") as output:
            self.proc = subprocess.Popen(
                argv,
                cwd=ROOT,
                env={**os.environ, PAUSE_ENV: "0.08"},
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


@pytest.fixture(
    params=[("redis", "postgresql"), ("rabbitmq", "mariadb")], ids=lambda p: "-".join(p)
)
def setup(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    broker_name, backend = request.param
    broker = require_broker(broker_name)
    with fresh_database(backend, tmp_path) as url:
        yield url, broker


def test_a_backfill_on_workers_completes_when_a_worker_is_killed(
    setup: tuple[str, str], tmp_path: Path
) -> None:
    """Kill the only worker while it runs part of the backfill, start another: every day's
    instance completes exactly once, its rows written exactly once."""
    url, broker = setup
    queue = f"batchline-test-{uuid.uuid4().hex[:8]}"
    first = Worker(broker, queue, tmp_path / "first.log")
    second: Worker | None = None
    try:
        with Engine(url, heartbeat_interval=0.5, lease=2) as engine:
            bind: sa.Engine = engine.repository.engine  # type: ignore[attr-defined]
            backfill_jobs.tables.create_all(bind)
            engine.register(backfill_jobs.build())
            launcher = CeleryLauncher(
                broker, queue=queue, lease=2, heartbeat_interval=0.5, claim_timeout=5
            )
            handle = engine.backfill(
                JOB_NAME, f"day:date=2026-11-01..2026-11-{DAYS}", concurrency=4, on=launcher
            )

            def midway() -> bool:
                counts = handle.state().counts
                return counts.get("COMPLETED", 0) >= 2 and counts.get("STARTED", 0) >= 1

            eventually(midway, timeout=120, message="the first worker ran nothing")
            first.kill()
            second = Worker(broker, queue, tmp_path / "second.log")
            final = handle.wait(240)
            assert final.status == "COMPLETED", final.counts
            executions = engine.list_executions(JOB_NAME, limit=1000)
            completed = Counter(
                e.instance.id for e in executions if e.status is BatchStatus.COMPLETED
            )
            assert len(completed) == DAYS and set(completed.values()) == {1}
            assert len(executions) > DAYS, "the kill interrupted nothing"
            with bind.connect() as conn:
                rows = Counter(tuple(r) for r in conn.execute(sa.select(out.c.day, out.c.n)))
            expected = {(f"2026-11-{d:02d}", n) for d in range(1, DAYS + 1) for n in range(ROWS)}
            assert rows == Counter(expected)
    finally:
        first.kill()
        if second is not None:
            second.kill()
