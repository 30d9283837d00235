"""The chunk step's read-ahead: chunk N+1 read in a thread while chunk N is written.

A restart resumes exactly after the last committed chunk (the reader's state committed with a
chunk is the state at its end, not after the read-ahead), and skips, positions, counters,
failures and listener calls are those of the same step without the read-ahead.
"""

from __future__ import annotations

import csv
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from batchline import BatchStatus, Chunk, Engine, JobBuilder, StepBuilder
from batchline.errors import ItemReadError
from batchline.items.files.delimited import DelimitedReader
from batchline.items.memory import ListReader
from batchline.items.sql_writers import SqlWriter
from batchline.steps.read_ahead import StreamState

ROWS = 1000
CHUNK = 100


def make_file(path: Path, bad: Sequence[int] = ()) -> None:
    """ROWS records ``id,name``; the records numbered in ``bad`` (1-based) have 3 fields."""
    with path.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(["id", "name"])
        for i in range(1, ROWS + 1):
            name = f"n{i}" if i % 9 else f'"quoted, {i}"\nsecond line'
            out.writerow([i, name, "extra"] if i in bad else [i, name])


def target(metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        "target", metadata, sa.Column("id", sa.Integer), sa.Column("name", sa.String(100))
    )


class FailingWriter:
    """SqlWriter that fails chunk ``fail_at`` while ``armed``; records the writing threads."""

    overlaps_reads = True

    def __init__(self, table: sa.Table, fail_at: int | None = None) -> None:
        self.inner = SqlWriter(table)
        self.fail_at = fail_at
        self.armed = True

    def write(self, items: Sequence[Any], chunk: Chunk) -> None:
        self.inner.write(items, chunk)
        if self.armed and chunk.number == self.fail_at:
            self.armed = False
            raise RuntimeError(f"write of chunk {chunk.number} fails")


def as_row(values: dict[str, str]) -> dict[str, Any]:
    return {"id": int(values["id"]), "name": values["name"]}


class ThreadSpy:
    """Notes which threads a reader's ``read`` ran on."""

    def __init__(self) -> None:
        self.threads: set[str] = set()
        self.order: list[str] = []  # the thread of each read() call, in order

    def saw(self) -> None:
        name = threading.current_thread().name
        self.threads.add(name)
        self.order.append(name)


class SpiedReader(DelimitedReader[dict[str, str]]):
    def __init__(self, path: str, spy: ThreadSpy) -> None:
        super().__init__(path)
        self.spy = spy

    def read(self) -> dict[str, str] | None:
        self.spy.saw()
        return super().read()


def loaded(url: str) -> list[int]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        ids = [row[0] for row in conn.execute(sa.text("SELECT id FROM target ORDER BY id"))]
    engine.dispose()
    return ids


@pytest.fixture
def url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'repository.db'}"
    engine = sa.create_engine(url)
    target(sa.MetaData()).create(engine)
    engine.dispose()
    return url


def step(
    path: Path,
    writer: Any,
    *,
    read_ahead: bool | None,
    skip: bool = False,
    listener: Any = None,
    spy: ThreadSpy | None = None,
) -> StepBuilder:
    def reader(se: Any) -> DelimitedReader[dict[str, str]]:
        return DelimitedReader(str(path)) if spy is None else SpiedReader(str(path), spy)

    builder = StepBuilder("load").chunk(CHUNK).reader(reader).writer(writer).processor(as_row)
    if read_ahead is not None:
        builder = builder.read_ahead(read_ahead)
    if skip:
        builder = builder.skip(ItemReadError, limit=None)
    if listener is not None:
        builder = builder.listener(listener)
    return builder


class TestRestart:
    @pytest.mark.parametrize("fail_at", [1, 2, 5, 10])
    def test_restart_after_a_failed_chunk_writes_every_row_once(
        self, url: str, tmp_path: Path, fail_at: int
    ) -> None:
        """Chunk ``fail_at`` fails after chunk ``fail_at + 1`` was read ahead; the restart
        resumes after chunk ``fail_at - 1`` and every row lands exactly once."""
        path = tmp_path / "in.csv"
        make_file(path)
        writer = FailingWriter(target(sa.MetaData()), fail_at=fail_at)
        job = JobBuilder("load").step(step(path, writer, read_ahead=True)).build()
        with Engine(url) as engine:
            engine.register(job)
            first = engine.start(job, {"run": 1})
            assert first.status is BatchStatus.FAILED
            assert loaded(url) == list(range(1, (fail_at - 1) * CHUNK + 1))
            second = engine.restart(first.id)
            assert second.status is BatchStatus.COMPLETED, second.exit_status
            (se,) = second.step_executions
            assert se.read_count == ROWS - (fail_at - 1) * CHUNK
        assert loaded(url) == list(range(1, ROWS + 1))


def run_and_describe(url: str, path: Path, read_ahead: bool, run: int) -> dict[str, Any]:
    """Run the skipping step; what the repository and the listener saw."""
    events: list[str] = []

    class Listener:
        def before_chunk(self, chunk: Chunk) -> None:
            events.append(f"before {chunk.number}")

        def after_chunk(self, chunk: Chunk) -> None:
            events.append(f"after {chunk.number}")

        def on_chunk_error(self, chunk: Chunk, error: BaseException) -> None:
            events.append(f"error {chunk.number}")

        def on_skip_in_read(self, error: BaseException) -> None:
            assert isinstance(error, ItemReadError)
            events.append(f"skip line {error.line}")

    writer = FailingWriter(target(sa.MetaData()))
    job = (
        JobBuilder(f"skips_{read_ahead}")
        .step(step(path, writer, read_ahead=read_ahead, skip=True, listener=Listener()))
        .build()
    )
    with Engine(url) as engine:
        execution = engine.start(job, {"run": run})
        (se,) = execution.step_executions
        skipped = [(s.phase, s.position, s.item) for s in engine.skipped_items(execution.id)]
    return {
        "status": execution.status,
        "counts": (se.read_count, se.write_count, se.read_skip_count, se.commit_count),
        "skipped": skipped,
        "events": events,
        "context": {k: v for k, v in se.context.items() if k.startswith(("reader.", "batchline"))},
    }


class TestSameAsWithout:
    def test_read_skips_positions_counters_and_listeners(self, url: str, tmp_path: Path) -> None:
        """Bad records first, last and in the middle of chunks: the run with read-ahead
        records the same skips, counters, context and listener calls as the run without."""
        path = tmp_path / "in.csv"
        make_file(path, bad=[1, 2, 100, 101, 102, 250, 399, 400, 401, 999, 1000])
        without = run_and_describe(url, path, read_ahead=False, run=1)
        rows_without = loaded(url)
        sa_engine = sa.create_engine(url)
        with sa_engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM target"))
        sa_engine.dispose()
        with_ = run_and_describe(url, path, read_ahead=True, run=2)
        assert without["status"] is BatchStatus.COMPLETED
        assert with_ == without
        assert loaded(url) == rows_without
        assert len(without["skipped"]) == 11

    def test_an_unskippable_read_error_fails_the_same_way(self, url: str, tmp_path: Path) -> None:
        """A bad record (no skip policy) fails the step with the same message, after the
        same committed chunks, with read-ahead or without."""
        path = tmp_path / "in.csv"
        make_file(path, bad=[345])
        outcomes = []
        for run, read_ahead in enumerate((False, True), 1):
            writer = FailingWriter(target(sa.MetaData()))
            job = JobBuilder("fails").step(step(path, writer, read_ahead=read_ahead))
            with Engine(url) as engine:
                execution = engine.start(job.build(), {"run": run})
            (se,) = execution.step_executions
            outcomes.append(
                (
                    execution.status,
                    se.read_count,
                    se.write_count,
                    execution.exit_status.description.splitlines()[0],
                )
            )
        assert outcomes[0] == outcomes[1]
        assert outcomes[0][0] is BatchStatus.FAILED
        assert outcomes[0][1] == 300
        assert "line" in outcomes[0][3]


class TestWhenOn:
    def test_file_reader_and_database_writer_read_ahead_by_default(
        self, url: str, tmp_path: Path
    ) -> None:
        """DelimitedReader + SqlWriter: reads run off the step's thread (after the first
        chunk); with read_ahead(False) they never do."""
        path = tmp_path / "in.csv"
        make_file(path)
        seen = {}
        for setting in (None, False):
            spy = ThreadSpy()
            writer = SqlWriter(target(sa.MetaData()))
            builder = step(path, writer, read_ahead=setting, spy=spy)
            with Engine(url) as engine:
                execution = engine.start(JobBuilder(f"auto_{setting}").step(builder).build())
            assert execution.status is BatchStatus.COMPLETED, execution.exit_status
            seen[setting] = spy.threads
        assert any(name.startswith("batchline-read-ahead") for name in seen[None])
        assert not any(name.startswith("batchline-read-ahead") for name in seen[False])

    def test_a_list_reader_or_a_time_policy_is_not_read_ahead(self, url: str) -> None:
        """A reader that does not declare itself safe, or a completion policy by time, keeps
        every read on the step's thread."""
        spy = ThreadSpy()

        class Reader(ListReader[dict[str, str]]):
            def read(self) -> dict[str, str] | None:
                spy.saw()
                return super().read()

        rows = [{"id": i, "name": f"n{i}"} for i in range(500)]
        writer = SqlWriter(target(sa.MetaData()))
        plain = StepBuilder("a").chunk(50).reader(Reader(rows)).writer(writer)
        path_rows = StepBuilder("b").chunk(50, seconds=60).reader(Reader(rows)).writer(writer)
        with Engine(url) as engine:
            for name, builder in (("plain", plain), ("timed", path_rows)):
                execution = engine.start(JobBuilder(name).step(builder).build())
                assert execution.status is BatchStatus.COMPLETED, execution.exit_status
        assert spy.threads == {threading.main_thread().name}


class TestStreamState:
    def test_changes_and_removals_are_replayed(self) -> None:
        """What ``update`` set or removed is applied to a later context, nothing else."""
        from batchline.model import ExecutionContext

        class Stream:
            def update(self, context: ExecutionContext) -> None:
                context["r.offset"] = 10
                del context["r.old"]

        state = StreamState(Stream(), ExecutionContext({"r.old": 1, "keep": 2}))
        later = ExecutionContext({"r.old": 1, "keep": 3, "r.offset": 5})
        state.apply(later)
        assert dict(later) == {"keep": 3, "r.offset": 10}


class TestCopyWriterSays:
    def test_typed_rows_stop_the_read_ahead_text_rows_keep_it(self, tmp_path: Path) -> None:
        """PostgresCopyWriter adapting typed values row by row keeps the GIL busy: after
        its first chunk the reads stay on the step's thread; rows of text read ahead."""
        from batchline.items.postgres_copy import PostgresCopyWriter
        from tests.backends import fresh_database

        path = tmp_path / "in.csv"
        path.write_text("id,name\n" + "".join(f"{i},n{i}\n" for i in range(1, ROWS + 1)))
        seen = {}
        with fresh_database("postgresql", tmp_path) as pg:
            sa_engine = sa.create_engine(pg)
            with sa_engine.begin() as conn:
                conn.execute(sa.text("CREATE TABLE target (id integer, name text)"))
            sa_engine.dispose()
            for typed in (True, False):
                spy = ThreadSpy()

                def row(values: dict[str, str], typed: bool = typed) -> tuple[Any, str]:
                    return (int(values["id"]) if typed else values["id"], values["name"])

                builder = step(
                    path, PostgresCopyWriter("target", ["id", "name"]), read_ahead=None, spy=spy
                ).processor(row)
                with Engine(pg) as engine:
                    execution = engine.start(JobBuilder(f"copy_{typed}").step(builder).build())
                assert execution.status is BatchStatus.COMPLETED, execution.exit_status
                seen[typed] = spy.order[:ROWS]  # the reader's thread for each row, in order
        main = threading.main_thread().name
        # Chunk 1 is read on the step's thread and chunk 2 ahead while chunk 1 is written;
        # from chunk 3 on, typed rows are read on the step's thread, text rows ahead of it.
        # (Which read ran where, not when: the thread's timing does not matter.)
        assert set(seen[True][:CHUNK]) == {main}
        assert main not in seen[True][CHUNK : 2 * CHUNK]
        assert set(seen[True][2 * CHUNK :]) == {main}
        assert set(seen[False][:CHUNK]) == {main}
        assert main not in seen[False][CHUNK:]
