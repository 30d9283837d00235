"""MariaDB writers' fast paths: SqlWriter's rendered multi-row INSERT and MySqlLoadDataWriter.

Values that escaping gets wrong when it is wrong (quotes, backslashes, tabs, newlines, CR, NUL,
``%`` sequences, 4-byte unicode, NULL next to the text ``\\N``) must read back exactly, and a
chunk that fails must leave nothing behind on restart.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from batchline import BatchStatus, Chunk, Engine, JobBuilder, StepBuilder
from batchline.errors import ConfigurationError
from batchline.items.memory import ListReader
from batchline.items.mysql_load import LoadDataError, MySqlLoadDataWriter
from batchline.items.sql_writers import SqlWriter
from tests.backends import fresh_database

TRICKY = [
    "plain",
    "it's",
    'say "hi"',
    "back\\slash",
    "\\N",
    "\\",
    "tab\there",
    "line\nbreak",
    "cr\rlf\r\n",
    "nul\x00byte",
    "%s %(p0)s %% {}",
    "émoji 🎉 ñ",
    "",
    " trailing ",
    "'; DROP TABLE t; --",
]


COLUMNS = ["id", "s", "amount", "day", "at", "x", "flag"]


def table(metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        "t",
        metadata,
        sa.Column("id", sa.Integer),
        sa.Column("s", sa.String(100)),
        sa.Column("amount", sa.Numeric(12, 4)),
        sa.Column("day", sa.Date),
        sa.Column("at", sa.DateTime),
        sa.Column("x", sa.Float),
        sa.Column("flag", sa.SmallInteger),  # sa.Boolean has a bind processor: no fast path
        mysql_charset="utf8mb4",
    )


def items() -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    for i, text in enumerate(TRICKY * 3):
        out.append(
            (
                i,
                text if i % 5 else None if i % 2 else text,
                Decimal(f"{i}.{i % 10}25") if i % 4 else None,
                dt.date(2024, 1, 1 + i % 28) if i % 6 else None,
                dt.datetime(2024, 2, 3, 4, 5, i % 60) if i % 7 else None,
                i / 4 if i % 3 else None,
                bool(i % 2) if i % 8 else None,
            )
        )
    out.append((True, "a bool as the id", 7, dt.date(2024, 5, 6), None, 1, False))
    return out


def expected(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return [
        (
            int(r[0]),
            r[1],
            None if r[2] is None else Decimal(r[2]).quantize(Decimal("0.0001")),
            r[3],
            r[4],
            None if r[5] is None else float(r[5]),
            None if r[6] is None else bool(r[6]),
        )
        for r in rows
    ]


def stored(url: str) -> list[tuple[Any, ...]]:
    engine = sa.create_engine(url)
    t = table(sa.MetaData())
    with engine.connect() as conn:
        found = [tuple(r) for r in conn.execute(sa.select(t).order_by(t.c.id, t.c.s))]
    engine.dispose()
    return [(*r[:6], None if r[6] is None else bool(r[6])) for r in found]


@pytest.fixture
def url(tmp_path: Path) -> Iterator[str]:
    with fresh_database("mariadb", tmp_path) as base:
        url = sa.make_url(base).update_query_dict({"local_infile": "1", "charset": "utf8mb4"})
        text = url.render_as_string(hide_password=False)
        engine = sa.create_engine(text)
        table(sa.MetaData()).create(engine)
        engine.dispose()
        yield text


def run(url: str, writer: Any, rows: list[Any], name: str = "w", chunk: int = 10) -> Any:
    step = StepBuilder("load").chunk(chunk).reader(ListReader(rows)).writer(writer)
    job = JobBuilder(name).step(step).build()
    with Engine(url) as engine:
        engine.register(job)
        return engine.start(job)


def order(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return sorted(rows, key=lambda r: (r[0], r[1] is not None, r[1] or ""))


class TestSqlWriterRendered:
    def test_tricky_values_read_back_exactly(self, url: str) -> None:
        """The rendered INSERT (PyMySQL) stores every value as the statement path would."""
        writer = SqlWriter(table(sa.MetaData()), columns=COLUMNS)
        rows = items()
        execution = run(url, writer, rows)
        assert execution.status is BatchStatus.COMPLETED, execution.exit_status
        assert any(p is not None and p.render is not None for p in writer._plans.values())
        assert order(stored(url)) == order(expected(rows))

    def test_no_backslash_escapes_keeps_executemany(self, url: str) -> None:
        """With NO_BACKSLASH_ESCAPES the server reads backslashes literally: the writer
        leaves the rendering to PyMySQL, and the values still read back exactly."""

        class Setting:
            def __init__(self) -> None:
                self.inner = SqlWriter(table(sa.MetaData()), columns=COLUMNS)

            def write(self, items: Sequence[Any], chunk: Chunk) -> None:
                chunk.connection.exec_driver_sql(
                    "SET SESSION sql_mode = CONCAT(@@sql_mode, ',NO_BACKSLASH_ESCAPES')"
                )
                try:
                    self.inner.write(items, chunk)
                finally:
                    chunk.connection.exec_driver_sql(
                        "SET SESSION sql_mode = REPLACE(@@sql_mode, 'NO_BACKSLASH_ESCAPES', '')"
                    )

        writer = Setting()
        rows = items()
        execution = run(url, writer, rows)
        assert execution.status is BatchStatus.COMPLETED, execution.exit_status
        assert all(p is None or p.render is None for p in writer.inner._plans.values())
        assert order(stored(url)) == order(expected(rows))


class FailOnce:
    def __init__(self, inner: Any, at: int) -> None:
        self.inner = inner
        self.at = at
        self.armed = True

    def write(self, items: Sequence[Any], chunk: Chunk) -> None:
        self.inner.write(items, chunk)
        if self.armed and chunk.number == self.at:
            self.armed = False
            raise RuntimeError("after the load, before the commit")


class TestLoadDataWriter:
    def test_tricky_values_read_back_exactly(self, url: str) -> None:
        """NULL, the text \\N, tabs, newlines, CR, NUL, backslashes, quotes and 4-byte
        unicode survive the tab-separated file."""
        rows = items()
        execution = run(url, MySqlLoadDataWriter(table(sa.MetaData())), rows)
        assert execution.status is BatchStatus.COMPLETED, execution.exit_status
        assert order(stored(url)) == order(expected(rows))

    def test_dataclass_items_exactly_once_across_a_restart(self, url: str) -> None:
        """Chunk 3 fails after its rows were loaded: they roll back with it, and the
        restart loads each row once."""
        rows = [
            {
                "id": i,
                "s": f"row {i}\t\\",
                "amount": Decimal(i),
                "day": None,
                "at": None,
                "x": None,
                "flag": None,
            }
            for i in range(95)
        ]
        writer = FailOnce(MySqlLoadDataWriter(table(sa.MetaData())), at=3)
        step = StepBuilder("load").chunk(10).reader(ListReader(rows)).writer(writer)
        job = JobBuilder("restartable").step(step).build()
        with Engine(url) as engine:
            engine.register(job)
            first = engine.start(job)
            assert first.status is BatchStatus.FAILED
            assert [r[0] for r in stored(url)] == list(range(20))
            second = engine.restart(first.id)
            assert second.status is BatchStatus.COMPLETED, second.exit_status
        assert [r[0] for r in stored(url)] == list(range(95))
        assert {r[1] for r in stored(url)} == {f"row {i}\t\\" for i in range(95)}

    def test_a_value_the_server_refuses_fails_the_chunk(self, url: str) -> None:
        """A string too long for its column is only a warning with LOCAL: the writer turns
        it into an error, and the chunk commits nothing."""
        rows = [(i, "x" * (200 if i == 14 else 5), None, None, None, None, None) for i in range(30)]
        execution = run(url, MySqlLoadDataWriter(table(sa.MetaData())), rows)
        assert execution.status is BatchStatus.FAILED
        assert "warned" in execution.exit_status.description
        assert LoadDataError.__name__ in execution.exit_status.description
        assert [r[0] for r in stored(url)] == list(range(10))

    def test_duplicate_key_is_sqlalchemy_integrity_error(self, url: str) -> None:
        """LOCAL makes a duplicate key a warning: the writer raises it as
        sqlalchemy.exc.IntegrityError, as the INSERT writers do, so .skip(IntegrityError)
        skips the row and the rest is loaded."""
        keyed = sa.Table(
            "keyed",
            sa.MetaData(),
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
            sa.Column("s", sa.String(20)),
        )
        bind = sa.create_engine(url)
        keyed.create(bind)
        rows = [(i, f"r{i}") for i in (1, 2, 3, 2, 4, 5)]
        step = (
            StepBuilder("load")
            .chunk(10)
            .reader(ListReader(rows))
            .writer(MySqlLoadDataWriter("keyed", ["id", "s"]))
            .skip(sa.exc.IntegrityError, limit=3)
        )
        with Engine(url) as engine:
            execution = engine.start(JobBuilder("dups").step(step).build())
        with bind.connect() as conn:
            found = [tuple(r) for r in conn.execute(sa.select(keyed).order_by(keyed.c.id))]
        bind.dispose()
        assert execution.status is BatchStatus.COMPLETED, execution.exit_status
        assert execution.step("load").write_skip_count == 1
        assert found == [(i, f"r{i}") for i in (1, 2, 3, 4, 5)]

    @pytest.mark.parametrize("writer", ["load_data", "sql"])
    def test_a_failed_check_is_sqlalchemy_integrity_error(self, url: str, writer: str) -> None:
        """A CHECK that fails is an IntegrityError on PostgreSQL and SQLite; PyMySQL raises
        MariaDB's as OperationalError (4025), and LOAD DATA LOCAL makes it a warning: both
        writers raise IntegrityError, so the one .skip() skips the row on every backend."""
        checked = sa.Table(
            "checked",
            sa.MetaData(),
            sa.Column("id", sa.Integer),
            sa.Column("q", sa.Integer),
            sa.CheckConstraint("q > 0", name="q_positive"),
        )
        bind = sa.create_engine(url)
        checked.create(bind)
        rows = [(1, 5), (2, -1), (3, 4), (4, -2), (5, 1)]
        made = (
            MySqlLoadDataWriter("checked", ["id", "q"])
            if writer == "load_data"
            else SqlWriter(checked, columns=["id", "q"])
        )
        step = (
            StepBuilder("load")
            .chunk(10)
            .reader(ListReader(rows))
            .writer(made)
            .skip(sa.exc.IntegrityError, limit=3)
        )
        with Engine(url) as engine:
            execution = engine.start(JobBuilder(f"checks_{writer}").step(step).build())
        with bind.connect() as conn:
            found = [tuple(r) for r in conn.execute(sa.select(checked).order_by(checked.c.id))]
        bind.dispose()
        assert execution.status is BatchStatus.COMPLETED, execution.exit_status
        assert execution.step("load").write_skip_count == 2
        assert found == [(1, 5), (3, 4), (5, 1)]

    def test_a_connection_without_local_infile_is_refused(self, url: str) -> None:
        """Without ?local_infile=1 the writer says what to add."""
        plain = sa.make_url(url).difference_update_query(["local_infile"])
        execution = run(
            plain.render_as_string(hide_password=False),
            MySqlLoadDataWriter(table(sa.MetaData())),
            items()[:3],
        )
        assert execution.status is BatchStatus.FAILED
        assert "local_infile=1" in execution.exit_status.description

    def test_column_names_are_needed(self) -> None:
        with pytest.raises(ConfigurationError):
            MySqlLoadDataWriter("t")


class TestLoadFeed:
    """The chunk's text goes to the server through a named pipe as it is rendered
    (load_feed.py): the awkward ends of that."""

    def test_a_chunk_many_times_the_pipe_is_loaded_whole(self, url: str) -> None:
        """30,000 rows a chunk, over 1 MiB of text and several pieces: every row arrives."""
        rows = [(i, f"row {i} " + "x" * 40, None, None, None, i / 2, None) for i in range(60_000)]
        execution = run(url, MySqlLoadDataWriter(table(sa.MetaData())), rows, chunk=30_000)
        assert execution.status is BatchStatus.COMPLETED, execution.exit_status
        found = stored(url)
        assert [r[0] for r in found] == list(range(60_000))
        assert found[-1][1] == "row 59999 " + "x" * 40

    def test_a_statement_failing_before_the_file_is_read_does_not_hang(
        self, url: str, tmp_path: Path
    ) -> None:
        """A missing table fails the statement before the server asks for the file: nobody
        opens the pipe, the writer's thread is released and the pipe removed."""
        folder = tmp_path / "feeds"
        folder.mkdir()
        writer = MySqlLoadDataWriter("no_such_table", ["id", "s"], folder=str(folder))
        execution = run(url, writer, [(i, "r") for i in range(25)])
        assert execution.status is BatchStatus.FAILED
        assert "no_such_table" in execution.exit_status.description
        assert list(folder.iterdir()) == []

    def test_a_value_that_cannot_be_rendered_in_a_later_piece_fails_the_chunk(
        self, url: str, tmp_path: Path
    ) -> None:
        """A value of a type LOAD DATA cannot take, in the chunk's third piece: the pieces
        before it were loaded, the chunk fails with the renderer's error and rolls back."""
        folder = tmp_path / "feeds"
        folder.mkdir()
        rows: list[tuple[Any, ...]] = [
            (i, "r", None, None, None, None, None) for i in range(20_000)
        ]
        rows[9_000] = (9_000, "r", None, None, None, object(), None)
        writer = MySqlLoadDataWriter(table(sa.MetaData()), folder=str(folder))
        execution = run(url, writer, rows, chunk=20_000)
        assert execution.status is BatchStatus.FAILED
        assert "cannot load a object value" in execution.exit_status.description
        assert stored(url) == []
        assert list(folder.iterdir()) == []
