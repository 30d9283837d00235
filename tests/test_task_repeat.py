"""Tasks that return "continue": called again, progress saved per call, stoppable between calls."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from batchline import (
    BatchStatus,
    Chunk,
    Engine,
    ExitStatus,
    JobBuilder,
    StepBuilder,
    StepExecution,
)
from batchline.items.base import _takes_step

tables = sa.MetaData()
batches = sa.Table("repeat_batches", tables, sa.Column("n", sa.Integer, primary_key=True))


class TestContinue:
    def test_called_until_it_stops_continuing(self, sqlite_engine: Engine) -> None:
        """Three "continue" then None: four calls, a commit saved after each continue."""
        calls: list[int] = []

        def task(se: StepExecution) -> str | None:
            calls.append(int(se.context.get("done", 0)))
            se.context["done"] = len(calls)
            return "continue" if len(calls) < 4 else None

        execution = sqlite_engine.start(JobBuilder("j").step(StepBuilder("t").task(task)).build())
        assert execution.status is BatchStatus.COMPLETED
        assert calls == [0, 1, 2, 3]
        assert sqlite_engine.get_execution(execution.id).step("t").commit_count == 3

    def test_each_call_its_own_transaction(self, engine: Engine) -> None:
        """A task of (step, chunk) writes through the chunk's connection; a failing call rolls
        back alone, and the restart resumes at it: every row once."""
        tables.create_all(engine.repository.engine)  # type: ignore[attr-defined]
        broken = [True]

        def task(se: StepExecution, chunk: Chunk) -> str | None:
            n = int(se.context.get("next", 1))
            chunk.connection.execute(batches.insert().values(n=n))
            if n == 3 and broken:
                broken.clear()
                raise RuntimeError("call 3 broke after its insert")
            se.context["next"] = n + 1
            return "continue" if n < 5 else None

        job = engine.register(JobBuilder("j").step(StepBuilder("t").task(task)).build())
        first = engine.start(job)
        assert first.status is BatchStatus.FAILED
        assert engine.restart(first.id).status is BatchStatus.COMPLETED
        with engine.repository.engine.connect() as conn:  # type: ignore[attr-defined]
            assert conn.execute(sa.select(batches.c.n).order_by(batches.c.n)).scalars().all() == [
                1,
                2,
                3,
                4,
                5,
            ]

    def test_a_stop_reaches_it_between_calls(self, sqlite_engine: Engine) -> None:
        """A stop requested during call 2 ends the step STOPPED after it; the restart goes on
        with call 3 and the context call 2 left."""
        seen: list[int] = []

        def task(se: StepExecution) -> str | None:
            n = int(se.context.get("next", 1))
            seen.append(n)
            if n == 2 and se.job_execution is not None and len(seen) == 2:
                sqlite_engine.stop(se.job_execution.id)
            se.context["next"] = n + 1
            return "continue" if n < 4 else None

        job = sqlite_engine.register(JobBuilder("j").step(StepBuilder("t").task(task)).build())
        first = sqlite_engine.start(job)
        assert first.status is BatchStatus.STOPPED
        assert seen == [1, 2]
        assert sqlite_engine.restart(first.id).status is BatchStatus.COMPLETED
        assert seen == [1, 2, 3, 4]

    def test_exit_status_of_the_last_call(self, sqlite_engine: Engine) -> None:
        """The call that ends the repetition may return the step's ExitStatus."""
        answers: list[Any] = ["continue", ExitStatus("DONE EARLY")]
        step = StepBuilder("t").task(lambda se: answers.pop(0))
        execution = sqlite_engine.start(JobBuilder("j").step(step).build())
        assert execution.step("t").exit_status.code == "DONE EARLY"


class TestWhoGetsAChunk:
    def test_only_a_task_naming_two_parameters(self, sqlite_engine: Engine) -> None:
        """`*args` (a wrapper, print) gets the step execution alone, outside any transaction."""
        got: list[int] = []
        step = StepBuilder("t").task(lambda *args: got.append(len(args)))
        assert sqlite_engine.start(JobBuilder("j").step(step).build()).status.value == "COMPLETED"
        assert got == [1]

    def test_a_parameter_with_a_default_is_never_filled(self, sqlite_engine: Engine) -> None:
        """`lambda se, n=n: ...` keeps its own n: the task gets no chunk for it."""
        got: list[object] = []
        steps = [StepBuilder(f"t{n}").task(lambda se, n=n: got.append(n)) for n in range(3)]
        job = JobBuilder("defaults")
        for step in steps:
            job = job.step(step)
        assert sqlite_engine.start(job.build()).status.value == "COMPLETED"
        assert got == [0, 1, 2]

    def test_a_writer_parameter_with_a_default_is_never_filled(self, sqlite_engine: Engine) -> None:
        """A writer function `lambda items, out=out: ...` keeps its own out (no chunk), and a
        factory `lambda step, n=n: ...` is still a factory."""
        out: list[int] = []
        write = lambda items, out=out: out.extend(items)  # noqa: E731
        step = StepBuilder("w").chunk(2).reader([1, 2, 3]).writer(write)
        assert sqlite_engine.start(JobBuilder("w").step(step).build()).status.value == "COMPLETED"
        assert out == [1, 2, 3]
        assert _takes_step(lambda step, n=1: None)
