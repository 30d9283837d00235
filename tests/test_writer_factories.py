"""Writer factories, extra streams, and the composite writer."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from batchline import (
    BatchStatus,
    Chunk,
    CompositeWriter,
    ConfigurationError,
    DelimitedWriter,
    Engine,
    ExecutionContext,
    JobBuilder,
    ListWriter,
    SqlInsertWriter,
    StepBuilder,
    StepExecution,
)
from batchline.items.base import WriterFactory, as_writer
from batchline.partitioners import IntegerRangePartitioner


class TestFactoryDetection:
    def test_a_function_of_step_is_a_factory(self) -> None:
        """`lambda step: ...` (or step_execution, se, or annotated) makes writers; `lambda
        items: ...` is a writer."""
        assert isinstance(as_writer(lambda step: ListWriter()), WriterFactory)
        assert isinstance(as_writer(lambda se: ListWriter()), WriterFactory)

        def annotated(x: StepExecution) -> ListWriter[Any]:
            return ListWriter()

        assert isinstance(as_writer(annotated), WriterFactory)
        assert not isinstance(as_writer(lambda items: None), WriterFactory)
        assert isinstance(as_writer(lambda anything: ListWriter(), factory=True), WriterFactory)
        assert not isinstance(as_writer(ListWriter()), WriterFactory)

    def test_factory_returning_nothing_fails_the_step(self, sqlite_engine: Engine) -> None:
        """A factory that returns no writer fails the step, saying what it returned."""
        step = StepBuilder("s").chunk(2).reader([1]).writer(lambda step: None)
        execution = sqlite_engine.start(JobBuilder("j").step(step).build())
        assert execution.status is BatchStatus.FAILED
        assert "returned None, not a writer" in execution.exit_status.description


class TestWriterFactory:
    def test_path_from_parameters(self, sqlite_engine: Engine, tmp_path: Path) -> None:
        """Each execution gets its own writer, its path from that execution's parameters."""
        step = (
            StepBuilder("export")
            .chunk(2)
            .reader(lambda step: [{"n": n} for n in range(int(step.parameters["count"]))])
            .writer(
                lambda step: DelimitedWriter(
                    str(tmp_path / f"out-{step.parameters['count']}.csv"), fields=["n"]
                )
            )
        )
        job = sqlite_engine.register(JobBuilder("export").step(step).build())
        for count in (2, 3):
            assert sqlite_engine.start(job, {"count": count}).status is BatchStatus.COMPLETED
        assert (tmp_path / "out-2.csv").read_text() == "0\n1\n"
        assert (tmp_path / "out-3.csv").read_text() == "0\n1\n2\n"

    def test_one_writer_per_thread_partition(self, sqlite_engine: Engine) -> None:
        """A partitioned worker's factory makes one writer per partition, on its thread."""
        made: list[tuple[ListWriter[Any], int]] = []
        lock = threading.Lock()

        def make(step: StepExecution) -> ListWriter[Any]:
            writer: ListWriter[Any] = ListWriter()
            with lock:
                made.append((writer, threading.get_ident()))
            return writer

        worker = (
            StepBuilder("worker")
            .chunk(5)
            .reader(
                lambda step: range(
                    int(step.context["partition.min"]), int(step.context["partition.max"]) + 1
                )
            )
            .writer(make)
        )
        step = StepBuilder("parts").partition(worker, IntegerRangePartitioner(1, 40), grid_size=4)
        execution = sqlite_engine.start(JobBuilder("j").step(step).build())
        assert execution.status is BatchStatus.COMPLETED
        assert len({id(w) for w, _ in made}) == 4
        assert sorted(i for w, _ in made for i in w.items) == list(range(1, 41))


class Counting:
    """An extra stream: counts commits in the step's context, and every call it gets."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.commits = 0

    def open(self, context: ExecutionContext) -> None:
        self.commits = int(context.get("counting.commits", 0))
        self.calls.append(f"open:{self.commits}")

    def update(self, context: ExecutionContext) -> None:
        self.commits += 1
        context["counting.commits"] = self.commits
        self.calls.append("update")

    def complete(self) -> None:
        self.calls.append("complete")

    def close(self) -> None:
        self.calls.append("close")


class TestStream:
    def test_opened_updated_and_closed_with_the_step(self, engine: Engine) -> None:
        """`.stream(obj)`: open, update before each commit, complete, close; a restart opens
        it with what its last commit saved."""
        stream = Counting()
        fail_at: list[int] = [5]

        def write(items: list[int]) -> None:
            if fail_at and fail_at[0] in items:
                fail_at.clear()
                raise RuntimeError("disk full")

        step = StepBuilder("s").chunk(2).reader(list(range(1, 8))).writer(write).stream(stream)
        job = engine.register(JobBuilder("j").step(step).build())
        first = engine.start(job)
        assert first.status is BatchStatus.FAILED
        assert stream.calls == ["open:0", "update", "update", "close"]
        stream.calls.clear()
        assert engine.restart(first.id).status is BatchStatus.COMPLETED
        assert stream.calls == ["open:2", "update", "update", "complete", "close"]

    def test_not_a_stream_is_refused(self) -> None:
        """An object without open/update/close is refused by name."""
        with pytest.raises(ConfigurationError, match="has not open, update and close"):
            StepBuilder("s").stream(object())  # type: ignore[arg-type]


tables = sa.MetaData()
rows = sa.Table("composite_rows", tables, sa.Column("n", sa.Integer, primary_key=True))


class Refusing:
    """A writer that fails once on the chunk holding ``bad``."""

    def __init__(self, bad: int) -> None:
        self.bad: int | None = bad

    def write(self, items: list[dict[str, int]], chunk: Chunk) -> None:
        if self.bad is not None and any(i["n"] == self.bad for i in items):
            self.bad = None
            raise RuntimeError("refused")


class TestCompositeWriter:
    def test_writes_every_part_in_one_transaction(self, engine: Engine, tmp_path: Path) -> None:
        """A table and a file, one chunk transaction: a failing part rolls back the table's
        rows; the restart writes each row once, and the file's footer comes at completion."""
        tables.create_all(engine.repository.engine)  # type: ignore[attr-defined]
        out = tmp_path / "out.csv"
        refusing = Refusing(bad=5)

        def writer(step: StepExecution) -> CompositeWriter:
            return CompositeWriter(
                SqlInsertWriter(rows),
                DelimitedWriter(str(out), fields=["n"], footer=lambda count: f"total {count}"),
                refusing,
            )

        step = StepBuilder("s").chunk(2).reader([{"n": n} for n in range(1, 8)]).writer(writer)
        job = engine.register(JobBuilder("j").step(step).build())
        first = engine.start(job)
        assert first.status is BatchStatus.FAILED
        with engine.repository.engine.connect() as conn:  # type: ignore[attr-defined]
            assert conn.execute(sa.select(sa.func.count()).select_from(rows)).scalar() == 4
        assert out.read_text() == "1\n2\n3\n4\n"  # no footer: the step did not complete
        assert engine.restart(first.id).status is BatchStatus.COMPLETED
        with engine.repository.engine.connect() as conn:  # type: ignore[attr-defined]
            stored = conn.execute(sa.select(rows.c.n).order_by(rows.c.n)).scalars().all()
        assert stored == [1, 2, 3, 4, 5, 6, 7]
        assert out.read_text() == "1\n2\n3\n4\n5\n6\n7\ntotal 7\n"

    def test_close_reaches_every_part(self) -> None:
        """open/update/close go to each part that is a stream; close to all even if one fails."""
        calls: list[str] = []

        class Part(ListWriter[Any]):
            def __init__(self, name: str, fail_close: bool = False) -> None:
                super().__init__(name)
                self.fail_close = fail_close

            def close(self) -> None:
                calls.append(f"close:{self.name}")
                if self.fail_close:
                    raise OSError(f"{self.name} close failed")

        composite = CompositeWriter(Part("a", fail_close=True), lambda items: None, Part("b"))
        composite.open(ExecutionContext())
        with pytest.raises(OSError, match="a close failed"):
            composite.close()
        assert calls == ["close:b", "close:a"]
