"""What the repository costs: statements per chunk commit and per launch, counted by SQLAlchemy."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event

from batchline import BatchStatus, Chunk, Engine, JobBuilder, ListWriter, StepBuilder


@contextmanager
def counting(engine: Engine) -> Iterator[list[str]]:
    """Collect every SQL statement the repository's engine sends while the block runs."""
    statements: list[str] = []
    bind = engine.repository.engine  # type: ignore[attr-defined]

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        # Neither the heartbeat thread's update nor the log buffer's writes are part of what
        # is measured: both run on timers, so how many land in the block is down to the clock
        # (a timed log flush splitting a step's lines in two added a count and an insert).
        if "SET heartbeat" not in statement and "execution_log" not in statement:
            statements.append(statement)

    event.listen(bind, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(bind, "before_cursor_execute", record)


class ChunkSnooper:
    """A chunk listener that notes the statement count at each chunk's start and end."""

    def __init__(self, statements: list[str]) -> None:
        self.statements = statements
        self.per_chunk: list[int] = []
        self._start = 0

    def before_chunk(self, chunk: Chunk) -> None:
        self._start = len(self.statements)

    def after_chunk(self, chunk: Chunk) -> None:
        self.per_chunk.append(len(self.statements) - self._start)


class TestChunkCommitCost:
    def test_at_most_two_statements_per_chunk(self, engine: Engine) -> None:
        """Each chunk commit sends at most 2 repository statements (progress + stop check)."""
        with counting(engine) as statements:
            snooper = ChunkSnooper(statements)
            step = (
                StepBuilder("load")
                .chunk(10)
                .reader(list(range(1, 201)))
                .writer(ListWriter())
                .listener(snooper)
                .build()
            )
            execution = engine.start(JobBuilder("cost").step(step).build(), {"run": 1})
        assert execution.status is BatchStatus.COMPLETED
        # 20 full chunks, then the empty one that finds the end of the input and commits nothing.
        assert len(snooper.per_chunk) == 21
        assert snooper.per_chunk[-1] == 0
        assert max(snooper.per_chunk) <= 2, snooper.per_chunk


def _failing_job(fail: dict[str, bool]) -> Any:
    def task(_: object) -> None:
        if fail["now"]:
            raise RuntimeError("planned failure")

    return (
        JobBuilder("history")
        .step(StepBuilder("first").chunk(5).reader(list(range(1, 11))).writer(ListWriter()))
        .step(StepBuilder("second").task(task))
        .build()
    )


class TestLaunchCost:
    @pytest.mark.parametrize("history", [1, 12])
    def test_launch_cost_does_not_grow_with_history(self, engine: Engine, history: int) -> None:
        """Launching an instance with 1 or 12 earlier executions sends the same statements."""
        fail = {"now": True}
        job = _failing_job(fail)
        engine.register(job)
        last = engine.start(job, {"day": 1})
        for _ in range(history - 1):
            last = engine.restart(last.id)
        assert last.status is BatchStatus.FAILED
        with counting(engine) as statements:
            engine.launch(job, {"day": 1})
        # 1 instance lookup + 1 last-execution status + 1 indexed look for an abandoned
        # execution (an older one ends the instance too) + 1 insert + 1 compare-and-set
        # + 1 insert of its parameter values + 1 move of the job's summary row
        assert len(statements) == 7, statements

    def test_step_start_cost_does_not_grow_with_history(self, engine: Engine) -> None:
        """Starting a step after 1 or 8 earlier executions costs the same statements."""
        fail = {"now": True}
        job = engine.register(_failing_job(fail))
        counts = []
        last = engine.start(job, {"day": 2})
        for round_ in range(8):
            with counting(engine) as statements:
                last = engine.restart(last.id) if round_ else last
            counts.append(len(statements))
        assert counts[1] == counts[-1], counts
