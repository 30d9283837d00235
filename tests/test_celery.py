"""Partitions on Celery workers, over Redis and RabbitMQ, the repository on PostgreSQL or
MariaDB: every row copied exactly once, a task delivered twice runs once, a killed worker's
partition fails by its lease and a restart completes it.

Workers are real ``batchline worker`` processes; each test uses a queue of its own.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from batchline import BatchStatus, ConfigurationError, Engine, SqlJobRepository
from batchline.model import utcnow
from batchline.remote import CeleryLauncher
from batchline.testing import eventually
from tests.backends import fresh_database, require_broker
from tests.jobs import celery_jobs, partition_jobs

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent


class Workers:
    """A ``batchline worker`` process group on its own queue."""

    def __init__(self, broker: str, queue: str, lease: float, log: Path) -> None:
        self.env = {
            **os.environ,
            celery_jobs.BROKER_ENV: broker,
            celery_jobs.QUEUE_ENV: queue,
            celery_jobs.LEASE_ENV: str(lease),
        }
        self.broker, self.queue, self.log = broker, queue, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(
        self, *, delay: float = 0.0, concurrency: int = 2, extra: tuple[str, ...] = ()
    ) -> None:
        env = {**self.env, partition_jobs.DELAY_ENV: str(delay)}
        argv = [sys.executable, "-m", "batchline", "--jobs", "tests.jobs.celery_jobs", "worker"]
        argv += ["--broker", self.broker, "--queue", self.queue, "-c", str(concurrency), *extra]
        out = self.log.open("ab")
        self.proc = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        out.close()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture(
    params=[("redis", "postgresql"), ("rabbitmq", "mariadb")], ids=lambda p: "-".join(p)
)
def setup(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Workers]]:
    broker_name, backend = request.param
    broker = require_broker(broker_name)
    with fresh_database(backend, tmp_path) as url:
        partition_jobs.create_tables(url)
        queue = f"batchline-test-{uuid.uuid4().hex[:8]}"
        workers = Workers(broker, queue, 2.0, tmp_path / "workers.log")
        # A killed worker's prefetched task is lost with it: offered again after 5 s.
        names = (
            celery_jobs.BROKER_ENV,
            celery_jobs.QUEUE_ENV,
            celery_jobs.LEASE_ENV,
            celery_jobs.CLAIM_ENV,
        )
        os.environ.update(zip(names, (broker, queue, "2.0", "5"), strict=True))
        try:
            yield url, workers
        finally:
            workers.kill()
            for name in names:
                os.environ.pop(name, None)


def _job(name: str, queue_env: dict[str, str]) -> object:
    """A fresh job object, built with the test's broker and queue in the environment."""
    import importlib

    module = importlib.reload(celery_jobs)
    return getattr(module, name)


def test_partitions_run_on_workers_exactly_once(setup: tuple[str, Workers]) -> None:
    """Four partitions on two worker processes: the step completes, each row copied once, and
    the partitions ran in the workers' processes, not the manager's."""
    url, workers = setup
    workers.start()
    # Sampled at every chunk: the workers keep the manager's interval (not their default 5 s).
    with Engine(SqlJobRepository(url, sample_interval=0.0)) as engine:
        job = _job("celery_job", workers.env)
        execution = engine.start(job, {"db": url})  # type: ignore[arg-type]
        assert execution.status is BatchStatus.COMPLETED, execution.exit_status.description
        parts = [s for s in engine.step_executions(execution.id) if ":" in s.step_name]
        samples = engine.progress_samples(execution.id)
    assert partition_jobs.copied(url) == partition_jobs.expected()
    pids = {s.context.get("pid") for s in parts}
    assert os.getpid() not in pids and len(pids) >= 1
    for part in parts:
        taken = [s.read_count for s in samples if s.step_execution_id == part.id]
        assert len(taken) >= 2 and taken[-1] == part.read_count, (part.step_name, taken)


def test_a_task_delivered_twice_runs_once(setup: tuple[str, Workers]) -> None:
    """Every partition's task is sent twice: the claim lets one run, the copy is exact."""
    url, workers = setup
    workers.start()
    with Engine(url) as engine:
        job = _job("duplicating_job", workers.env)
        execution = engine.start(job, {"db": url})  # type: ignore[arg-type]
        assert execution.status is BatchStatus.COMPLETED, execution.exit_status.description
    assert partition_jobs.copied(url) == partition_jobs.expected()
    log = workers.log.read_text(errors="replace")
    eventually(
        lambda: (
            sum(
                workers.log.read_text(errors="replace").count(seen)
                for seen in ("claimed", "not run")
            )
            >= 4
        ),
        timeout=30,
        message=lambda: f"the second deliveries were not seen: {log[-2000:]}",
    )


def test_a_killed_worker_fails_its_partition_and_a_restart_completes(
    setup: tuple[str, Workers],
) -> None:
    """SIGKILL the workers mid-copy: their partitions fail by the lease (WorkerLost), the job
    fails; new workers and a restart complete the copy exactly once."""
    url, workers = setup
    workers.start(delay=0.01)
    with Engine(url) as engine:
        job = _job("celery_job", workers.env)
        handle = engine.start_async(job, {"db": url})  # type: ignore[arg-type]

        def copying() -> bool:
            return len(partition_jobs.copied(url)) >= 40

        eventually(copying, timeout=60, message="the workers copied nothing")
        workers.kill()
        failed = handle.wait(timeout=120)
        assert failed.status is BatchStatus.FAILED
        assert "lost its worker" in failed.exit_status.description
        workers.start()
        engine.register(job, replace=True)  # type: ignore[arg-type]
        restarted = engine.restart(failed.id)
        assert restarted.status is BatchStatus.COMPLETED, restarted.exit_status.description
    assert partition_jobs.copied(url) == partition_jobs.expected()


def test_a_lost_partition_is_offered_to_another_worker(
    setup: tuple[str, Workers], caplog: pytest.LogCaptureFixture
) -> None:
    """on_worker_lost="retry": SIGKILL the workers mid-copy, start new ones: the lost
    partitions go back to STARTING at a new version and the same execution completes, every
    row copied once (the new worker resumes each from its last commit)."""
    url, workers = setup
    workers.start(delay=0.01)
    with Engine(url) as engine:
        job = _job("retrying_job", workers.env)
        handle = engine.start_async(job, {"db": url})  # type: ignore[arg-type]
        eventually(
            lambda: len(partition_jobs.copied(url)) >= 40,
            timeout=60,
            message="the workers copied nothing",
        )
        workers.kill()
        workers.start()
        done = handle.wait(timeout=120)
        assert done.status is BatchStatus.COMPLETED, done.exit_status.description
    assert "lost its worker" in caplog.text and "offering it again" in caplog.text
    assert partition_jobs.copied(url) == partition_jobs.expected()


def test_a_killed_manager_stops_its_workers_and_a_restart_completes(
    setup: tuple[str, Workers],
) -> None:
    """SIGKILL the manager mid-copy: the workers see its heartbeat stop and end their partitions
    STOPPED at a chunk boundary; a restart (recovering the dead execution) resumes each from
    its last commit, with the stored plan, and copies every row exactly once."""
    url, workers = setup
    workers.start(delay=0.05)
    argv = [sys.executable, "-m", "tests.jobs.celery_jobs", url]
    # A lease of 5 s: a loaded machine must not make a live manager look dead.
    env = {**workers.env, celery_jobs.LEASE_ENV: "5"}
    manager = subprocess.Popen(argv, cwd=ROOT, env=env, stderr=subprocess.PIPE)
    try:
        eventually(
            lambda: len(partition_jobs.copied(url)) >= 40,
            timeout=60,
            message="the workers copied nothing",
        )
    finally:
        manager.kill()
        manager.wait()
    with Engine(url, lease=5.0, heartbeat_interval=0.5) as engine:
        [execution] = engine.list_executions("celery_copy")

        def manager_gone() -> bool:
            # A worker may still claim a queued partition while the dead manager's last beat is
            # younger than its lease; a second past it, no new claim can start.
            beat = engine.repository.heartbeat_of(execution.id)
            return beat is not None and utcnow() - beat > dt.timedelta(seconds=6)

        eventually(manager_gone, timeout=60, message="the manager's heartbeat never went stale")

        def workers_stopped() -> set[BatchStatus]:  # unclaimed ones stay STARTING
            steps = [s for s in engine.step_executions(execution.id) if ":" in s.step_name]
            statuses = {s.status for s in steps}
            return statuses if steps and BatchStatus.STARTED not in statuses else set()

        statuses = eventually(workers_stopped, timeout=60, message="the workers kept running")
        assert statuses & {BatchStatus.STOPPED, BatchStatus.STARTING}, statuses
        assert len(partition_jobs.copied(url)) < partition_jobs.ROWS
        job = _job("celery_job", workers.env)
        engine.register(job)  # type: ignore[arg-type]
        eventually(
            lambda: _restartable(engine, execution.id), timeout=30, message="lease never expired"
        )
        restarted = engine.restart(execution.id)
        assert restarted.status is BatchStatus.COMPLETED, restarted.exit_status.description
    assert partition_jobs.copied(url) == partition_jobs.expected()


def _restartable(engine: Engine, execution_id: int) -> bool:
    try:
        engine.recover(execution_id)
    except Exception:
        return False
    return True


class TwiceLauncher(CeleryLauncher):
    """Sends every execution twice, as a broker may deliver it."""

    def send(self, job: Any, execution: Any, repository: Any) -> None:
        super().send(job, execution, repository)
        super().send(job, execution, repository)


def test_a_queued_job_waits_then_runs_once_on_a_worker(setup: tuple[str, Workers]) -> None:
    """start_async(on=launcher), sent twice: STARTING while no worker runs; once one starts,
    the job runs there (not here) exactly once and the handle sees it COMPLETED."""
    url, workers = setup
    # No samples: the worker's repository keeps the launching engine's interval.
    with Engine(SqlJobRepository(url, sample_interval=None)) as engine:
        launcher = TwiceLauncher(workers.broker, queue=workers.queue, lease=4, heartbeat_interval=1)
        handle = engine.start_async(celery_jobs.whole_job, {"run": 1}, on=launcher)
        assert engine.get_execution(handle.execution_id).status is BatchStatus.STARTING
        workers.start()
        done = handle.wait(timeout=120)
        assert done.status is BatchStatus.COMPLETED, done.exit_status.description
        assert done.context["pid"] not in (None, os.getpid())
        steps = {s.step_name: s for s in done.step_executions}
        assert steps["count"].read_count == 50
        assert [e.id for e in engine.list_executions("celery_whole")] == [handle.execution_id]
        assert engine.progress_samples(handle.execution_id) == []
    eventually(
        lambda: (
            "claimed" in workers.log.read_text(errors="replace")
            or "not run" in workers.log.read_text(errors="replace")
        ),
        timeout=30,
        message="the second delivery was not seen",
    )


def test_the_cli_queues_a_job(setup: tuple[str, Workers]) -> None:
    """batchline start --queue-to: prints the id and exits 0; a worker completes it."""
    url, workers = setup
    workers.start()
    argv = [
        sys.executable,
        "-m",
        "batchline",
        "-r",
        url,
        "start",
        "tests.jobs.celery_jobs:whole_job",
    ]
    argv += ["run:int=2", "--queue-to", workers.broker, "--queue", workers.queue]
    queued = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert queued.returncode == 0, queued.stderr
    execution_id = int(queued.stdout.split()[0])
    with Engine(url) as engine:
        eventually(
            lambda: engine.get_execution(execution_id).status is BatchStatus.COMPLETED,
            timeout=120,
            message="the queued job never completed",
        )


def test_sqlite_is_refused_for_remote_workers(sqlite_url: str) -> None:
    """A SQLite repository cannot be shared with workers elsewhere: a partitioned job and a
    queued one are refused with a clear error before anything is recorded."""
    partition_jobs.create_tables(sqlite_url)
    with Engine(sqlite_url) as engine:
        job = _job("celery_job", {})
        with pytest.raises(ConfigurationError, match="not SQLite"):
            engine.start(job, {"db": sqlite_url})  # type: ignore[arg-type]
        with pytest.raises(ConfigurationError, match="not SQLite"):
            engine.start_async(celery_jobs.whole_job, on=CeleryLauncher("redis://127.0.0.1:1"))
        assert engine.list_executions() == []
        assert engine.repository.job_names() == []


@pytest.mark.parametrize(
    ("carried", "taken"),
    [(None, None), (0, 0.0), (2.5, 2.5), (-1, 5.0), ("1", 5.0), (True, 5.0), (float("nan"), 5.0)],
)
def test_a_sample_interval_from_a_message_is_checked(carried: Any, taken: float | None) -> None:
    """The broker is not trusted: a sample interval that is not seconds >= 0 (or None) gives
    the default instead of reaching the repository."""
    from batchline.remote.worker import _interval

    assert _interval(carried) == taken


def test_partitions_behind_busy_workers_are_sent_once(
    setup: tuple[str, Workers], caplog: pytest.LogCaptureFixture
) -> None:
    """Four partitions on one worker slot with a claim timeout of 1 s: those waiting behind
    the busy worker are asked about (the queue, the workers), not sent again; the step
    completes with every row copied once."""
    url, workers = setup
    os.environ[celery_jobs.CLAIM_ENV] = "1"
    workers.start(delay=0.01, concurrency=1)
    with Engine(url) as engine:
        job = _job("celery_job", workers.env)
        execution = engine.start(job, {"db": url})  # type: ignore[arg-type]
        assert execution.status is BatchStatus.COMPLETED, execution.exit_status.description
    assert partition_jobs.copied(url) == partition_jobs.expected()
    assert "offering it again" not in caplog.text
    assert "not claimed" not in workers.log.read_text(errors="replace")
