"""Celery workers under the faults a cluster meets: a worker frozen past its lease, the broker's
connections cut mid-run, a queue of 200 jobs over two workers, a queued job's statuses.

Real ``batchline worker`` processes on Redis (repository on PostgreSQL) and RabbitMQ
(repository on MariaDB), as in test_celery.py, whose fixture and worker helper these reuse.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from batchline import BatchStatus, Engine, ExecutionQuery, JobExecutionAlreadyRunning
from batchline.model import utcnow
from batchline.remote import CeleryLauncher
from batchline.testing import eventually
from tests.backends import fresh_database, require_broker
from tests.frozen_proxy import FrozenProxy
from tests.jobs import celery_jobs, partition_jobs
from tests.test_celery import ROOT, Workers, _job, setup

pytestmark = pytest.mark.slow

__all__ = ["setup"]  # the fixture, imported for pytest


def _thaw(workers: Workers) -> None:
    if workers.proc is not None and workers.proc.poll() is None:
        os.killpg(workers.proc.pid, signal.SIGCONT)


def test_a_frozen_worker_is_taken_over_and_fenced_when_it_thaws(
    setup: tuple[str, Workers],
) -> None:
    """SIGSTOP the only worker mid-copy and start another: the frozen one's partitions lose
    their lease, are offered again and complete on the new worker. Then SIGCONT the frozen one:
    it finds its lease gone and commits nothing; every row is copied exactly once."""
    url, frozen = setup
    frozen.start(delay=0.02)
    other = Workers(frozen.broker, frozen.queue, 2.0, frozen.log.with_name("other.log"))
    try:
        with Engine(url) as engine:
            job = _job("retrying_job", frozen.env)
            handle = engine.start_async(job, {"db": url})  # type: ignore[arg-type]
            eventually(
                lambda: len(partition_jobs.copied(url)) >= 40,
                timeout=60,
                message="the worker copied nothing",
            )
            assert frozen.proc is not None
            os.killpg(frozen.proc.pid, signal.SIGSTOP)
            try:
                other.start()
                done = handle.wait(timeout=180)
                assert done.status is BatchStatus.COMPLETED, done.exit_status.description
                assert partition_jobs.copied(url) == partition_jobs.expected()
                taken_over = [
                    s
                    for s in engine.step_executions(done.id)
                    if ":" in s.step_name and s.context.get("pid") != frozen.proc.pid
                ]
                assert taken_over, "no partition moved to the other worker"
            finally:
                _thaw(frozen)
            # The thawed worker finishes the chunk it was in, finds its lease gone at the
            # boundary and ends the task; wait until its pool has nothing left to run.
            eventually(
                lambda: frozen.log.read_text(errors="replace").count("succeeded in") >= 2,
                timeout=60,
                message=lambda: f"the thawed worker never ended: {frozen.log.read_text()[-3000:]}",
            )
        assert partition_jobs.copied(url) == partition_jobs.expected()
    finally:
        _thaw(frozen)
        other.kill()


@pytest.fixture(params=["redis", "rabbitmq"])
def proxied(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[str, str, FrozenProxy]]:
    """A repository and a broker reached through a proxy the test can cut."""
    broker = require_broker(request.param)
    backend = "postgresql" if request.param == "redis" else "mariadb"
    port = 6379 if request.param == "redis" else 5672
    proxy = FrozenProxy(("127.0.0.1", port))
    through = broker.replace(f":{port}", f":{proxy.port}")
    try:
        with fresh_database(backend, tmp_path) as url:
            partition_jobs.create_tables(url)
            yield url, through, proxy
    finally:
        proxy.cut()


def test_broker_connections_cut_mid_run_do_not_duplicate_work(
    proxied: tuple[str, str, FrozenProxy], tmp_path: Path
) -> None:
    """Every broker connection (the workers' and the manager's) is dropped twice mid-copy, the
    broker unreachable for 2 s each time, as in a broker restart: the workers reconnect, the
    step completes, every row is copied exactly once."""
    url, broker, proxy = proxied
    queue = f"batchline-test-{uuid.uuid4().hex[:8]}"
    workers = Workers(broker, queue, 2.0, tmp_path / "workers.log")
    names = (celery_jobs.BROKER_ENV, celery_jobs.QUEUE_ENV, celery_jobs.LEASE_ENV)
    os.environ.update(zip(names, (broker, queue, "2.0"), strict=True))
    os.environ[celery_jobs.CLAIM_ENV] = "5"
    try:
        workers.start(delay=0.02, concurrency=1)
        with Engine(url) as engine:
            job = _job("retrying_job", workers.env)
            handle = engine.start_async(job, {"db": url})  # type: ignore[arg-type]
            for at in (40, 160):
                eventually(
                    lambda at=at: len(partition_jobs.copied(url)) >= at,  # type: ignore[misc]
                    timeout=90,
                    message=lambda: f"the copy stalled: {workers.log.read_text()[-3000:]}",
                )
                proxy.down.set()
                proxy.drop()
                time.sleep(2.0)  # the broker "restarting": connections refused meanwhile
                proxy.down.clear()
            done = handle.wait(timeout=180)
            assert done.status is BatchStatus.COMPLETED, (
                f"{done.exit_status.description}\n{workers.log.read_text()[-3000:]}"
            )
        assert partition_jobs.copied(url) == partition_jobs.expected()
        assert "Connection to broker lost" in workers.log.read_text(errors="replace") or (
            "reconnect" in workers.log.read_text(errors="replace").lower()
        )
    finally:
        workers.kill()
        for name in (*names, celery_jobs.CLAIM_ENV):
            os.environ.pop(name, None)


def test_a_queued_job_is_starting_then_started_then_completed(setup: tuple[str, Workers]) -> None:
    """Queued while no worker runs: STARTING; a worker claims it: STARTED (held there by a
    gate); the gate opens: COMPLETED, on the worker."""
    url, workers = setup
    gate = Path(workers.log).with_name("gate")
    with Engine(url) as engine:
        launcher = CeleryLauncher(
            workers.broker, queue=workers.queue, lease=4, heartbeat_interval=1
        )
        handle = engine.start_async(celery_jobs.gated_job, {"gate": str(gate)}, on=launcher)
        status = lambda: engine.get_execution(handle.execution_id).status  # noqa: E731
        assert status() is BatchStatus.STARTING
        workers.start()
        eventually(lambda: status() is BatchStatus.STARTED, timeout=60, message="never claimed")
        gate.touch()
        done = handle.wait(timeout=60)
        assert done.status is BatchStatus.COMPLETED, done.exit_status.description
        assert done.context["pid"] not in (None, os.getpid())


class LosingLauncher(CeleryLauncher):
    """Its first send goes to a queue no worker reads: a message lost with a worker that took
    it and died before claiming the execution (early acknowledgement)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sends = 0

    def send(self, job: Any, execution: Any, repository: Any) -> None:
        self.sends += 1
        queue = self.queue
        if self.sends == 1:
            self.queue = f"{queue}-nobody"
        try:
            super().send(job, execution, repository)
        finally:
            self.queue = queue


def test_a_queued_job_whose_message_was_lost_is_sent_again(setup: tuple[str, Workers]) -> None:
    """The first message never reaches a worker: the handle's follower sends it again after
    claim_timeout, a worker runs it, exactly one execution ran, once."""
    url, workers = setup
    workers.start()
    with Engine(url) as engine:
        launcher = LosingLauncher(
            workers.broker, queue=workers.queue, lease=4, heartbeat_interval=1, claim_timeout=2
        )
        handle = engine.start_async(celery_jobs.whole_job, {"run": 7}, on=launcher)
        done = handle.wait(timeout=120)
        assert done.status is BatchStatus.COMPLETED, done.exit_status.description
        assert launcher.sends >= 2
        assert [e.id for e in engine.list_executions("celery_whole")] == [handle.execution_id]
        [count] = [s for s in done.step_executions if s.step_name == "count"]
        assert count.read_count == 50
    from kombu import Connection, Queue

    with Connection(workers.broker) as conn:  # the lost message's queue, left on the broker
        Queue(f"{workers.queue}-nobody").bind(conn.default_channel).delete()


def test_two_hundred_queued_jobs_over_two_workers_each_run_once(
    setup: tuple[str, Workers],
) -> None:
    """200 jobs queued, then two worker processes: every one COMPLETED, one execution per
    instance, and both workers took a share."""
    url, first = setup
    second = Workers(first.broker, first.queue, 2.0, first.log.with_name("second.log"))
    try:
        with Engine(url) as engine:
            launcher = CeleryLauncher(
                first.broker, queue=first.queue, lease=6, heartbeat_interval=2
            )
            ids = [
                engine.start_async(celery_jobs.whole_job, {"run": n}, on=launcher).execution_id
                for n in range(200)
            ]
            first.start(concurrency=1)
            second.start(concurrency=1)

            done = ExecutionQuery.of(job_name="celery_whole", statuses=[BatchStatus.COMPLETED])

            def completed() -> int:
                return engine.count_executions(done)

            eventually(
                lambda: completed() == 200,
                timeout=300,
                interval=1.0,
                message=lambda: f"{completed()} of 200 completed",
            )
            executions = engine.list_executions("celery_whole", limit=500)
            assert sorted(e.id for e in executions) == sorted(ids)
            assert all(e.status is BatchStatus.COMPLETED for e in executions)
            per_instance = [len(engine.instance_executions(e.instance.id)) for e in executions]
            assert set(per_instance) == {1}
            pids = {engine.get_execution(i).context["pid"] for i in ids}
            assert len(pids) == 2, pids
            counted = {
                s.read_count
                for e in executions
                for s in engine.step_executions(e.id)
                if s.step_name == "count"
            }
            assert counted == {50}
    finally:
        second.kill()


def test_a_job_the_broker_never_received_is_failed_not_left_waiting(tmp_path: Path) -> None:
    """The broker refuses every connection while a job is queued: start_async raises, and the
    execution is FAILED "could not be queued" (not STARTING forever); a restart queues it."""
    with socket.socket() as probe:  # a port nothing listens on: connections are refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with fresh_database("postgresql", tmp_path) as url, Engine(url) as engine:
        launcher = CeleryLauncher(f"redis://127.0.0.1:{port}/0", queue="nowhere")
        with pytest.raises(Exception, match=r"(?i)connect|refused"):
            engine.start_async(celery_jobs.whole_job, {"run": 1}, on=launcher)
        [execution] = engine.list_executions("celery_whole")
        assert execution.status is BatchStatus.FAILED
        assert "could not be queued" in execution.exit_status.description


def test_partitions_on_workers_join_the_jobs_trace(
    setup: tuple[str, Workers], tmp_path: Path
) -> None:
    """The manager traces with OpenTelemetry: each partition run on a Celery worker has its
    span in the job's trace, under the partitioned step's span, exported by the worker."""
    pytest.importorskip("opentelemetry.sdk")
    import json

    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from batchline.observability.otel import OpenTelemetryObserver
    from tests.jobs.obs_jobs import SPAN_ENV

    url, workers = setup
    span_file = tmp_path / "worker-spans.jsonl"
    workers.env[SPAN_ENV] = str(span_file)
    workers.start()
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    observer = OpenTelemetryObserver(tracer_provider=provider)
    with Engine(url, observers=[observer]) as engine:
        execution = engine.start(_job("celery_job", workers.env), {"db": url})  # type: ignore[arg-type]
        assert execution.status is BatchStatus.COMPLETED, execution.exit_status.description
    manager = {s.name: s for s in exporter.get_finished_spans()}["step copy"]
    assert manager.context is not None

    def exported() -> list[dict[str, Any]]:
        text = span_file.read_text() if span_file.exists() else ""
        return [json.loads(line) for line in text.splitlines()]

    eventually(lambda: len(exported()) >= 4, timeout=30, message="the workers exported no spans")
    remote = exported()
    assert sorted(s["name"] for s in remote) == [f"partition copy:{i:04d}" for i in range(4)]
    for span in remote:
        assert span["trace_id"] == manager.context.trace_id
        assert span["parent_id"] == manager.context.span_id
        assert span["pid"] != os.getpid()


def test_a_queued_job_waiting_longer_than_the_lease_is_left_to_its_worker(
    setup: tuple[str, Workers],
) -> None:
    """Two jobs queued while no worker runs, until their heartbeat is older than the lease:
    recover leaves them waiting and a restart is refused; one recovered by an operator's
    force is FAILED and the worker says it found it ended, not "claimed elsewhere"; the
    other runs on the worker once one starts."""
    url, workers = setup
    with Engine(url, lease=1.0, heartbeat_interval=0.2) as engine:
        engine.register(celery_jobs.whole_job)
        launcher = CeleryLauncher(
            workers.broker, queue=workers.queue, lease=4, heartbeat_interval=1, claim_timeout=600
        )
        waiting, lost = (
            engine.start_async(celery_jobs.whole_job, {"run": n}, on=launcher).execution_id
            for n in (1, 2)
        )

        def past_the_lease() -> bool:
            beat = engine.repository.heartbeat_of(lost)
            return beat is not None and utcnow() - beat > dt.timedelta(seconds=1.5)

        eventually(past_the_lease, timeout=30, message="the heartbeat never aged")
        assert engine.recover() == []
        with pytest.raises(JobExecutionAlreadyRunning, match="waits for a worker's claim"):
            engine.restart(waiting)
        [recovered] = engine.recover(lost, force=True)
        assert recovered.status is BatchStatus.FAILED
        workers.start()
        done = eventually(
            lambda: (e := engine.get_execution(waiting)).status is BatchStatus.COMPLETED and e,
            timeout=120,
            message=lambda: workers.log.read_text(errors="replace")[-3000:],
        )
        assert done
        assert engine.get_execution(lost).status is BatchStatus.FAILED
    eventually(
        lambda: f"job execution {lost} has already ended FAILED" in workers.log.read_text(),
        timeout=30,
        message=lambda: workers.log.read_text(errors="replace")[-3000:],
    )
    assert f"job execution {lost} is not waiting" not in workers.log.read_text()


# A Redis database of these tests' own: a worker with a short visibility timeout puts back
# every message of its database's unacknowledged set, other tests' included.
LOST_PREFETCH_DB = 11

_TAKE_AND_DIE = """
import os, signal, sys
from kombu import Connection
with Connection(sys.argv[1]) as conn:
    queue = conn.SimpleQueue(sys.argv[2])
    queue.get(timeout=30)  # delivered, never acknowledged: a prefetched message
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_lost_prefetched_job_message_on_redis_comes_back(tmp_path: Path) -> None:
    """`start --queue-to` exits at once; the worker that took the message is SIGKILLed before
    it starts it: a worker with a claim timeout of 3 s gets the message back and runs the job,
    where kombu's default would have held it an hour."""
    broker = require_broker("redis").rsplit("/", 1)[0] + f"/{LOST_PREFETCH_DB}"
    queue = f"batchline-test-{uuid.uuid4().hex[:8]}"
    workers = Workers(broker, queue, 2.0, tmp_path / "workers.log")
    with fresh_database("postgresql", tmp_path) as url, Engine(url) as engine:
        argv = [sys.executable, "-m", "batchline", "-r", url, "--claim-timeout", "600", "start"]
        argv += ["tests.jobs.celery_jobs:whole_job", "run:int=3", "--queue-to", broker]
        argv += ["--queue", queue]
        queued = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert queued.returncode == 0, queued.stderr
        execution_id = int(queued.stdout.split()[0])
        taker = subprocess.run(
            [sys.executable, "-c", _TAKE_AND_DIE, broker, queue], cwd=ROOT, timeout=60
        )
        assert taker.returncode == -signal.SIGKILL
        try:
            workers.start(concurrency=1, extra=("--claim-timeout", "3"))
            eventually(
                lambda: engine.get_execution(execution_id).status is BatchStatus.COMPLETED,
                timeout=120,
                message=lambda: workers.log.read_text(errors="replace")[-3000:],
            )
        finally:
            workers.kill()
            import redis

            client = redis.Redis.from_url(broker)
            client.delete(queue)
            client.close()
