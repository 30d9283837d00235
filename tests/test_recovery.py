"""Crash recovery through heartbeats and a lease, on every backend.

A dead process is played by an execution launched and never run; its heartbeat is moved into
the past with SQL instead of waiting, so no test depends on the clock's pace.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from batchline import (
    BatchStatus,
    Engine,
    JobBuilder,
    JobExecutionAlreadyRunning,
    JobInstanceAlreadyComplete,
    StepBuilder,
)
from batchline.job import Job
from batchline.model import JobExecution, utcnow
from batchline.repository.base import JobRepository
from batchline.repository.schema import job_execution
from batchline.repository.sql import SqlJobRepository
from batchline.testing import eventually


def numbers_job(name: str = "recovering") -> Job:
    return (
        JobBuilder(name)
        .step(StepBuilder("numbers").chunk(5).reader(list(range(20))).writer(lambda items: None))
        .build()
    )


@pytest.fixture
def pair(db_url: str) -> Iterator[tuple[Engine, Engine]]:
    """Two engines on one repository: the one that 'crashed' and the operator's (lease 30s)."""
    with (
        Engine(db_url, heartbeat_interval=0.2, lease=30) as crashed,
        Engine(db_url, heartbeat_interval=0.2, lease=30) as operator,
    ):
        yield crashed, operator


def age_heartbeat(engine: Engine, execution_id: int, seconds: float) -> None:
    bind: sa.Engine = engine.repository.engine  # type: ignore[attr-defined]
    with bind.begin() as conn:
        conn.execute(
            job_execution.update()
            .where(job_execution.c.id == execution_id)
            .values(heartbeat=utcnow() - dt.timedelta(seconds=seconds))
        )


class TestLease:
    def test_restart_refuses_while_the_lease_is_live(self, pair: tuple[Engine, Engine]) -> None:
        """A restart of an execution with a fresh heartbeat says until when its lease runs."""
        crashed, operator = pair
        job = numbers_job()
        operator.register(job)
        _, dead = crashed.launch(job)
        with pytest.raises(JobExecutionAlreadyRunning, match=r"lease runs until \d{4}-\d\d-\d\d"):
            operator.restart(dead.id)
        assert operator.get_execution(dead.id).status is BatchStatus.STARTING

    def test_restart_recovers_an_expired_lease_and_completes(
        self, pair: tuple[Engine, Engine]
    ) -> None:
        """Once the lease ran out, restart marks the dead execution FAILED and runs anew."""
        crashed, operator = pair
        job = numbers_job()
        operator.register(job)
        _, dead = crashed.launch(job)
        age_heartbeat(operator, dead.id, 31)
        restarted = operator.restart(dead.id)
        assert restarted.status is BatchStatus.COMPLETED
        old = operator.get_execution(dead.id)
        assert old.status is BatchStatus.FAILED
        assert "stopped sending heartbeats" in old.exit_status.description
        assert "lease 30s" in old.exit_status.description

    def test_recover_all_takes_only_the_dead(self, pair: tuple[Engine, Engine]) -> None:
        """recover() without an id marks exactly the executions past their lease FAILED."""
        crashed, operator = pair
        _, dead = crashed.launch(numbers_job("a"))
        _, alive = crashed.launch(numbers_job("b"))
        age_heartbeat(operator, dead.id, 120)
        recovered = operator.recover()
        assert [e.id for e in recovered] == [dead.id]
        assert operator.get_execution(alive.id).status is BatchStatus.STARTING
        assert operator.recover() == []


class _Racing(SqlJobRepository):
    """A real repository that lets a rival act once inside the transaction that marks a dead
    execution FAILED, between its read of the row and its update (where two racing restarts
    meet on PostgreSQL and MariaDB; SQLite's single writer makes the rival wait instead)."""

    rival: Callable[[], object] | None = None
    marking = False

    def _finish_dead(self, *args: Any, **kwargs: Any) -> JobExecution:
        self.marking = True
        try:
            return super()._finish_dead(*args, **kwargs)
        finally:
            self.marking = False

    def _job_row(self, conn: sa.Connection, execution_id: int) -> sa.RowMapping:
        row = super()._job_row(conn, execution_id)
        if self.marking and self.rival is not None:
            rival, self.rival = self.rival, None
            rival()
        return row


def _servers_only(db_url: str) -> None:
    if db_url.startswith("sqlite"):
        pytest.skip("SQLite has one writer: a racing restart waits, then finds it FAILED")


class TestRacingRestarts:
    def test_the_loser_of_two_racing_restarts_is_refused(
        self, db_url: str, pair: tuple[Engine, Engine]
    ) -> None:
        """Another restart recovers and completes the dead execution first: the loser's
        restart is a refused launch (exit 4), not a failure of its own."""
        _servers_only(db_url)
        crashed, winner = pair
        job = numbers_job()
        winner.register(job)
        _, dead = crashed.launch(job)
        age_heartbeat(winner, dead.id, 31)
        racing = _Racing(db_url, upgrade=False)
        with Engine(racing, heartbeat_interval=0.2, lease=30) as loser:
            loser.register(job)
            racing.rival = lambda: winner.restart(dead.id)
            with pytest.raises(JobInstanceAlreadyComplete):
                loser.restart(dead.id)
        assert [e.status for e in winner.list_executions(job.name)] == [
            BatchStatus.COMPLETED,
            BatchStatus.FAILED,
        ]

    def test_a_restart_racing_a_recover_runs(
        self, db_url: str, pair: tuple[Engine, Engine]
    ) -> None:
        """A recover marks the dead execution FAILED while a restart was about to: the restart
        goes on and completes."""
        _servers_only(db_url)
        crashed, operator = pair
        job = numbers_job()
        _, dead = crashed.launch(job)
        age_heartbeat(operator, dead.id, 31)
        racing = _Racing(db_url, upgrade=False)
        with Engine(racing, heartbeat_interval=0.2, lease=30) as restarter:
            restarter.register(job)
            racing.rival = lambda: operator.recover(dead.id)
            assert restarter.restart(dead.id).status is BatchStatus.COMPLETED


class TestHeartbeat:
    def test_a_running_job_keeps_its_lease(self, db_url: str) -> None:
        """While a job runs, its engine's heartbeats keep other engines from recovering it."""
        release = threading.Event()
        job = JobBuilder("beating").step(StepBuilder("s").task(lambda se: release.wait(30))).build()
        with (
            Engine(db_url, heartbeat_interval=0.05, lease=1.5) as runner,
            Engine(db_url, heartbeat_interval=0.05, lease=1.5) as watcher,
        ):
            handle = runner.start_async(job)
            for _ in range(20):  # longer than the lease; each look must find it alive
                threading.Event().wait(0.1)
                assert watcher.recover() == []
            release.set()
            assert handle.wait(30).status is BatchStatus.COMPLETED


class Nowhere:
    """A launcher whose messages wait in a broker no worker reads (a queue of busy workers):
    the execution stays queued, STARTING, as long as the test likes."""

    def __init__(self, claim_timeout: float | None = 300.0) -> None:
        self.claim_timeout = claim_timeout
        self.sent = 0

    def send(self, job: Job, execution: JobExecution, repository: JobRepository) -> None:
        self.sent += 1


def set_claim_deadline(engine: Engine, execution_id: int, seconds: float) -> None:
    bind: sa.Engine = engine.repository.engine  # type: ignore[attr-defined]
    with bind.begin() as conn:
        conn.execute(
            job_execution.update()
            .where(job_execution.c.id == execution_id)
            .values(claim_deadline=utcnow() + dt.timedelta(seconds=seconds))
        )


class TestQueued:
    def test_a_queued_execution_waiting_past_the_lease_is_not_dead(
        self, pair: tuple[Engine, Engine]
    ) -> None:
        """A queued execution whose heartbeat is older than the lease but whose claim deadline
        is ahead is neither recovered nor restarted; past its deadline recover fails it,
        saying no worker claimed it."""
        launching, operator = pair
        job = numbers_job()
        operator.register(job)
        queued = launching.start_async(job, on=Nowhere()).execution_id
        age_heartbeat(operator, queued, 120)
        assert operator.recover() == []
        with pytest.raises(JobExecutionAlreadyRunning, match="waits for a worker's claim until"):
            operator.restart(queued)
        with pytest.raises(JobExecutionAlreadyRunning, match="waits for a worker's claim"):
            operator.recover(queued)
        assert operator.get_execution(queued).status is BatchStatus.STARTING
        set_claim_deadline(operator, queued, -1)
        [failed] = operator.recover()
        assert failed.id == queued and failed.status is BatchStatus.FAILED
        assert "no worker claimed it by" in failed.exit_status.description

    def test_a_queued_execution_without_a_claim_timeout_waits(
        self, pair: tuple[Engine, Engine]
    ) -> None:
        """A launcher that never sends again (claim_timeout None) leaves its execution waiting
        for good; an operator's force recovers it."""
        launching, operator = pair
        job = numbers_job()
        queued = launching.start_async(job, on=Nowhere(None)).execution_id
        age_heartbeat(operator, queued, 10_000)
        assert operator.recover() == []
        [failed] = operator.recover(queued, force=True)
        assert "its queued message is lost" in failed.exit_status.description

    def test_handles_share_one_poller_and_a_lost_message_is_sent_again(
        self, pair: tuple[Engine, Engine]
    ) -> None:
        """Twenty followed queued executions are read by one thread of the engine; one still
        unclaimed after its claim timeout is sent again; each handle ends with its execution."""
        launching, operator = pair
        job = numbers_job()
        operator.register(job)
        quick, slow = Nowhere(0.3), Nowhere(None)
        handles = [launching.start_async(job, {"n": n}, on=slow) for n in range(19)]
        handles.append(launching.start_async(job, {"n": 19}, on=quick))
        followers = [t for t in threading.enumerate() if t.name.startswith("batchline-follow")]
        assert len(followers) == 1
        eventually(lambda: quick.sent >= 2, timeout=30, message="never sent again")
        for handle in handles:
            assert operator.run_queued(handle.execution_id) is not None
        for handle in handles:
            assert handle.wait(30).status is BatchStatus.COMPLETED


class RacingRepository(SqlJobRepository):
    """Lists the stale executions, then lets the first one complete before it is marked: the
    race of a job ending while ``recover`` walks its list."""

    def stale_executions(self, older_than: dt.datetime) -> list[JobExecution]:
        found = super().stale_executions(older_than)
        with self.engine.begin() as conn:
            conn.execute(
                job_execution.update()
                .where(job_execution.c.id == found[0].id)
                .values(
                    status="COMPLETED",
                    exit_code="COMPLETED",
                    end_time=utcnow(),
                    version=job_execution.c.version + 1,
                    running_instance_id=None,
                )
            )
        return found


def test_recover_skips_what_ended_meanwhile_and_goes_on(db_url: str) -> None:
    """An execution that completes after recover listed it is left COMPLETED and reported;
    the other dead executions of the list are still recovered."""
    with Engine(db_url, lease=30) as crashed:
        ids = [crashed.launch(numbers_job(f"j{n}"))[1].id for n in range(3)]
        for execution_id in ids:
            age_heartbeat(crashed, execution_id, 120)
    reported: list[tuple[int, str]] = []
    with Engine(RacingRepository(db_url), lease=30) as operator:
        recovered = operator.recover(skipped=lambda i, why: reported.append((i, why)))
        first = max(ids)  # listed newest first
        assert sorted(e.id for e in recovered) == sorted(set(ids) - {first})
        assert [i for i, _ in reported] == [first]
        assert "COMPLETED" in reported[0][1]
        assert operator.get_execution(first).status is BatchStatus.COMPLETED
