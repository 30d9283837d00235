"""Purging old executions: cascades to what hangs off them, keeps what a restart needs."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from batchline import BatchStatus, Engine, JobBuilder, StepBuilder
from batchline.job import Job
from batchline.model import utcnow
from batchline.repository.purge import purge
from batchline.repository.schema import (
    job_execution,
    job_instance,
    skipped_item,
    step_context,
    step_execution,
)

LATER = dt.timedelta(minutes=5)


def bind_of(engine: Engine) -> sa.Engine:
    return engine.repository.engine  # type: ignore[attr-defined,no-any-return]


def rows(engine: Engine, table: sa.Table) -> int:
    with bind_of(engine).connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def age(engine: Engine, execution_id: int, days: int) -> None:
    with bind_of(engine).begin() as conn:
        conn.execute(
            job_execution.update()
            .where(job_execution.c.id == execution_id)
            .values(create_time=utcnow() - dt.timedelta(days=days))
        )


def two_steps(name: str, fail_in: dict[str, bool], ran: list[str]) -> Job:
    def task(step: str) -> Any:
        def run(_: object) -> None:
            ran.append(step)
            if fail_in.get(step):
                raise RuntimeError(f"{step} fails")

        return run

    return (
        JobBuilder(name)
        .step(StepBuilder("a").task(task("a")))
        .step(StepBuilder("b").task(task("b")))
        .build()
    )


class TestPurge:
    def test_whole_instances_go_with_everything_under_them(self, engine: Engine) -> None:
        """Old finished instances lose executions, steps, skipped items and step contexts."""
        job = JobBuilder("old").step(StepBuilder("s").task(lambda se: None)).build()
        done = [engine.start(job, {"n": n}) for n in range(3)]
        step_id = engine.step_executions(done[0].id)[0].id
        with bind_of(engine).begin() as conn:
            conn.execute(
                skipped_item.insert().values(
                    step_execution_id=step_id,
                    job_execution_id=done[0].id,
                    phase="read",
                    error_type="ValueError",
                    error_message="bad",
                    create_time=utcnow(),
                )
            )
        dry = purge(engine.repository, utcnow() + LATER, dry_run=True)
        assert rows(engine, job_execution) == 3
        result = purge(engine.repository, utcnow() + LATER)
        assert result.deleted == dry.deleted
        assert result.job_executions == 3 and result.job_instances == 3
        assert result.deleted[skipped_item.name] == 1
        for table in (job_instance, job_execution, step_execution, step_context, skipped_item):
            assert rows(engine, table) == 0, table.name

    def test_newer_and_running_executions_stay(self, engine: Engine) -> None:
        """Only executions older than the cutoff go; a running one never does."""
        job = JobBuilder("mixed").step(StepBuilder("s").task(lambda se: None)).build()
        old, new = engine.start(job, {"n": 1}), engine.start(job, {"n": 2})
        _, running = engine.launch(job, {"n": 3})
        age(engine, old.id, 10)
        age(engine, running.id, 10)
        result = purge(bind_of(engine), utcnow() - dt.timedelta(days=1))
        assert result.job_executions == 1
        left = {e.id: e.status for e in engine.list_executions()}
        assert left == {new.id: BatchStatus.COMPLETED, running.id: BatchStatus.STARTING}

    def test_what_a_restart_needs_is_kept(self, engine: Engine) -> None:
        """An old execution whose completed step a restart would skip stays; the restart still
        skips that step. An old execution nothing points at goes."""
        ran: list[str] = []
        fail = {"b": True}
        job = engine.register(two_steps("resumable", fail, ran))
        first = engine.start(job)  # a COMPLETED, b FAILED
        second = engine.restart(first.id)  # a skipped, b FAILED again
        assert (first.status, second.status) == (BatchStatus.FAILED, BatchStatus.FAILED)
        age(engine, first.id, 10)
        result = purge(engine.repository, utcnow() - dt.timedelta(days=1))
        assert result.job_executions == 0 and result.kept == 1
        fail["b"] = False
        ran.clear()
        assert engine.restart(second.id).status is BatchStatus.COMPLETED
        assert ran == ["b"]

    def test_unreferenced_old_executions_of_a_live_instance_go(self, engine: Engine) -> None:
        """An old failed attempt that no step context points at goes; the instance stays."""
        ran: list[str] = []
        job = engine.register(two_steps("retried", {"a": True}, ran))
        first = engine.start(job)
        second = engine.restart(first.id)
        age(engine, first.id, 10)
        result = purge(engine.repository, utcnow() - dt.timedelta(days=1))
        assert result.job_executions == 1 and result.kept == 0
        assert [e.id for e in engine.list_executions()] == [second.id]
        assert engine.restart(second.id).status is BatchStatus.FAILED  # still restartable
