"""Statuses never lie: whatever fails, the job and every step end in a final status carrying the
real cause (a context that is not JSON or too large, a commit whose reply was lost).

On every backend: MariaDB's TEXT context column takes 64 KiB, the others a 16 MiB bound; both
are checked before the write, so the error names the context instead of a driver's DataError.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc

from batchline import (
    BatchStatus,
    Chunk,
    Engine,
    ExecutionContext,
    JobBuilder,
    StepBuilder,
    StepExecution,
)
from batchline.repository.columns import CONTEXT_LIMITS, DEFAULT_CONTEXT_LIMIT
from batchline.repository.sql import SqlJobRepository
from batchline.transaction import SqlTransactionManager, Transaction


def _limit(engine: Engine) -> int:
    url = engine.repository.url() or ""
    backend = sa.make_url(url).get_backend_name()
    return CONTEXT_LIMITS.get(backend, DEFAULT_CONTEXT_LIMIT)


def _every_step_final(engine: Engine, execution_id: int) -> list[BatchStatus]:
    statuses = [s.status for s in engine.step_executions(execution_id)]
    assert statuses and not any(s.is_running for s in statuses), statuses
    return statuses


class TestContexts:
    def test_a_step_context_value_that_is_not_json(self, engine: Engine) -> None:
        """A task leaves an object in its step context: the step and job end FAILED, the
        message names the key, nothing stays STARTED."""

        def task(se: StepExecution) -> None:
            se.context["handle"] = object()

        job = JobBuilder("notjson").step(StepBuilder("t").task(task)).build()
        execution = engine.start(job)
        assert execution.status is BatchStatus.FAILED
        assert _every_step_final(engine, execution.id) == [BatchStatus.FAILED]
        stored = engine.get_execution(execution.id)
        assert stored.status is BatchStatus.FAILED
        [step] = stored.step_executions
        assert "'handle'" in step.exit_status.description

    def test_a_job_context_over_the_limit(self, engine: Engine) -> None:
        """A step puts more than the backend's limit into the job context: the job ends FAILED
        (not STARTED until the lease), every step final, the message says how large and where."""
        size = _limit(engine) + 10

        def fill(se: StepExecution) -> None:
            assert se.job_execution is not None
            se.job_execution.context["blob"] = "x" * size

        job = (
            JobBuilder("bigjob")
            .step(StepBuilder("fill").task(fill))
            .step(StepBuilder("after").task(lambda se: None))
            .build()
        )
        execution = engine.start(job)
        assert execution.status is BatchStatus.FAILED
        stored = engine.get_execution(execution.id)
        assert stored.status is BatchStatus.FAILED
        assert "over this repository's limit" in stored.exit_status.description
        assert "'blob'" in stored.exit_status.description
        _every_step_final(engine, execution.id)

    def test_a_long_key_is_named_as_the_large_part(self, engine: Engine) -> None:
        """The size of an entry counts its key: a key built from a long text is named as the
        largest, shortened, not the small values beside it."""
        size = _limit(engine) + 10

        def fill(se: StepExecution) -> None:
            assert se.job_execution is not None
            se.job_execution.context["k" * size] = 1
            se.job_execution.context["small"] = 2

        job = JobBuilder("bigkey").step(StepBuilder("fill").task(fill)).build()
        stored = engine.get_execution(engine.start(job).id)
        assert stored.status is BatchStatus.FAILED
        message = stored.exit_status.description
        assert f"'{'k' * 60}'... ({size:,} characters)" in message
        assert message.index("characters)") < message.index("'small'")

    def test_a_step_context_over_the_limit_from_a_stream(self, engine: Engine) -> None:
        """A writer whose saved state outgrows the limit fails the chunk before the write; the
        step ends FAILED naming the size, the chunks before it committed."""
        size = _limit(engine) + 10

        class Bloating:
            def __init__(self) -> None:
                self.chunks = 0

            def open(self, context: ExecutionContext) -> None:
                pass

            def write(self, items: Sequence[int], chunk: Chunk) -> None:
                self.chunks += 1

            def update(self, context: ExecutionContext) -> None:
                context["state"] = "y" * (size if self.chunks == 3 else 10)

            def close(self) -> None:
                pass

        step = StepBuilder("s").chunk(2).reader(list(range(10))).writer(Bloating())
        execution = engine.start(JobBuilder("bigstep").step(step).build())
        assert execution.status is BatchStatus.FAILED
        [stored] = engine.step_executions(execution.id)
        assert stored.status is BatchStatus.FAILED
        assert stored.commit_count == 2
        assert "over this repository's limit" in stored.exit_status.description


class _LostReply(SqlTransactionManager):
    """Commits for real, then raises as a driver does when the server's answer never arrives."""

    def __init__(self, engine: Any, lose_at: int) -> None:
        super().__init__(engine)
        self.count = 0
        self.lose_at = lose_at

    @contextmanager
    def begin(self) -> Iterator[Transaction]:
        with super().begin() as tx:
            yield tx
        self.count += 1
        if self.count == self.lose_at:
            lost = ConnectionError("server closed the connection")
            raise exc.OperationalError("COMMIT", None, lost)


class TestLostCommitReply:
    def test_the_step_ends_failed_and_the_restart_is_exact(self, engine: Engine) -> None:
        """Chunk 2 commits but its reply is lost: the step ends FAILED with that cause (not
        STARTED, not 'changed by someone else' alone), and a restart writes each item once."""
        written: list[int] = []

        def write(items: Sequence[int], chunk: Chunk) -> None:
            written.extend(items)

        bind = engine.repository.transaction_manager().engine
        lost = _LostReply(bind, lose_at=2)
        step = StepBuilder("s").chunk(3).reader(list(range(12))).writer(write)
        job = JobBuilder("lostreply").step(step.transaction_manager(lost)).build()
        engine.register(job)
        execution = engine.start(job)
        assert execution.status is BatchStatus.FAILED
        [stored] = engine.step_executions(execution.id)
        assert stored.status is BatchStatus.FAILED
        assert "server closed the connection" in stored.exit_status.description
        first_line = stored.exit_status.description.splitlines()[0]
        assert first_line.startswith("the repository connection failed"), first_line
        assert stored.commit_count == 2  # the database holds chunk 2: it did commit
        restarted = engine.restart(execution.id)
        assert restarted.status is BatchStatus.COMPLETED
        assert written[6:] == list(range(6, 12))
        assert sorted(set(written)) == list(range(12))


class _LostClaimReply(SqlJobRepository):
    """A real repository whose first step claim (STARTING -> STARTED) commits, then raises as
    a driver does when the server's answer never arrives."""

    lost = False

    def update_step_execution(self, step_execution_: StepExecution, conn: Any = None) -> None:
        super().update_step_execution(step_execution_, conn)
        if not self.lost and step_execution_.status is BatchStatus.STARTED:
            self.lost = True
            raise exc.OperationalError("COMMIT", None, ConnectionError("connection reset"))


class TestLostClaimReply:
    def test_no_step_stays_started_under_an_ended_job(self, db_url: str) -> None:
        """The step's claim commits but its reply is lost: the job ends FAILED naming the
        connection failure, and so does the step, instead of staying STARTED."""
        repository = _LostClaimReply(db_url)
        with Engine(repository, heartbeat_interval=0.5, lease=5) as engine:
            step = StepBuilder("s").chunk(3).reader(list(range(6))).writer(lambda items: None)
            execution = engine.start(JobBuilder("lostclaim").step(step).build())
            assert execution.status is BatchStatus.FAILED
            assert "connection reset" in execution.exit_status.description
            assert _every_step_final(engine, execution.id) == [BatchStatus.FAILED]
            [stored] = engine.step_executions(execution.id)
        assert "connection reset" in stored.exit_status.description
