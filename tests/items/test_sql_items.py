from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from batchline import BatchStatus, Engine, JobBuilder, SqlInsertWriter, StepBuilder
from batchline.errors import ConfigurationError
from batchline.items.base import Chunk
from batchline.items.files.delimited import DelimitedReader
from batchline.items.postgres_copy import PostgresCopyWriter
from batchline.items.sql_readers import CursorReader, KeysetReader
from batchline.items.sql_writers import SqlWriter
from batchline.model import StepExecution
from batchline.testing.contract import check_reader, check_writer
from batchline.transaction import SqlTransactionManager
from tests.backends import fresh_database

meta = sa.MetaData()
people = sa.Table(
    "people",
    meta,
    sa.Column("region", sa.String(10), primary_key=True),
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("name", sa.String(50), nullable=False),
    sa.Column("born", sa.Date, nullable=True),
    sa.Column("score", sa.Numeric(8, 2), nullable=True),
)
PEOPLE = [
    {
        "region": region,
        "id": i,
        "name": f"person {region}{i}",
        "born": dt.date(1990, 1, 1) + dt.timedelta(days=i * 37),
        "score": Decimal(f"{i * 3}.25"),
    }
    for region in ("eu", "us")
    for i in range(1, 12)
]


@dataclass
class Person:
    region: str
    id: int
    name: str
    born: dt.date | None
    score: Decimal


@pytest.fixture
def bind(db_url: str) -> Iterator[sa.Engine]:
    engine = sa.create_engine(db_url)
    meta.create_all(engine)
    yield engine
    engine.dispose()


def fill(bind: sa.Engine, rows: list[dict[str, Any]] = PEOPLE) -> None:
    with bind.begin() as conn:
        conn.execute(sa.delete(people))
        if rows:
            conn.execute(people.insert(), rows)


def table_rows(bind: sa.Engine) -> list[tuple[Any, ...]]:
    with bind.connect() as conn:
        return sorted(tuple(r) for r in conn.execute(sa.select(people)))


class TestKeysetReader:
    def test_contract_with_a_composite_key(self, bind: sa.Engine) -> None:
        """Keyset paging on (region, id) passes the contract kit on every backend."""
        fill(bind)
        expected = sorted(PEOPLE, key=lambda r: (r["region"], r["id"]))
        empty = sa.select(people).where(people.c.id < 0)
        check_reader(
            lambda: KeysetReader(bind, people, ["region", "id"], page_size=4),
            expected=expected,
            chunk_size=3,
            empty=lambda: KeysetReader(bind, empty, ["region", "id"], page_size=4),
        )

    def test_date_key_and_a_filtered_query(self, bind: sa.Engine) -> None:
        """A date key survives the JSON context; a WHERE in the query is kept on every page."""
        fill(bind)
        query = sa.select(people.c.born, people.c.name).where(people.c.region == "eu")
        expected = [{"born": r["born"], "name": r["name"]} for r in PEOPLE if r["region"] == "eu"]
        check_reader(lambda: KeysetReader(bind, query, "born", page_size=5), expected=expected)

    def test_mapper_class_and_unknown_key(self, bind: sa.Engine) -> None:
        """Rows map to a class by keyword; a key the query lacks is refused at once."""
        fill(bind, PEOPLE[:2])

        class Person:
            def __init__(self, **row: Any) -> None:
                self.name = row["name"]

        reader = KeysetReader(bind, people, ["region", "id"], mapper=Person)
        assert reader.read().name == "person eu1"  # type: ignore[union-attr]
        with pytest.raises(ConfigurationError, match="no column"):
            KeysetReader(bind, people, "nope")


class TestCursorReader:
    def test_contract(self, bind: sa.Engine) -> None:
        """The server-side cursor reader passes the contract kit (restart by count)."""
        fill(bind)
        query = sa.select(people.c.region, people.c.id).order_by(people.c.region, people.c.id)
        expected = [{"region": r["region"], "id": r["id"]} for r in PEOPLE]
        check_reader(
            lambda: CursorReader(bind, query, fetch_size=5),
            expected=sorted(expected, key=lambda r: (r["region"], r["id"])),
            chunk_size=4,
        )


class TestSqlWriter:
    def test_insert_contract(self, bind: sa.Engine) -> None:
        """Batched inserts through the chunk's transaction pass the writer contract kit."""
        fill(bind, [])
        check_writer(
            lambda: SqlWriter(people, batch_size=3),
            PEOPLE[:7],
            lambda: table_rows(bind),
            chunk_size=3,
            transaction_manager=SqlTransactionManager(bind),
            reset=lambda: fill(bind, []),
        )

    def test_upsert_contract_replaces_existing_rows(self, bind: sa.Engine) -> None:
        """Upserts (with a key repeated inside one chunk) update in place on every backend."""
        initial = [dict(r, name="old") for r in PEOPLE[:4]]
        changed = [dict(r, name=f"new {r['id']}") for r in PEOPLE[:6]]
        changed.append(dict(PEOPLE[0], name="newest"))
        report = check_writer(
            lambda: SqlWriter(people, mode="upsert", key=["region", "id"]),
            changed,
            lambda: table_rows(bind),
            chunk_size=3,
            transaction_manager=SqlTransactionManager(bind),
            reset=lambda: fill(bind, initial),
        )
        names = {(r[0], r[1]): r[2] for r in report.output}
        assert names[("eu", 1)] == "newest" and names[("eu", 6)] == "new 6"
        assert len(report.output) == 6

    def test_upsert_only_named_columns(self, bind: sa.Engine) -> None:
        """update_columns limits what an upsert changes; other columns keep their values."""
        fill(bind, PEOPLE[:1])
        writer = SqlWriter(people, mode="upsert", key=["region", "id"], update_columns=["name"])
        report = check_writer(
            lambda: writer,
            [dict(PEOPLE[0], name="renamed", score=Decimal("0"))],
            lambda: table_rows(bind),
            transaction_manager=SqlTransactionManager(bind),
            reset=lambda: fill(bind, PEOPLE[:1]),
        )
        row = report.output[0]
        assert row[2] == "renamed" and row[4] == PEOPLE[0]["score"]

    def test_sql_insert_writer_kept(self, bind: sa.Engine) -> None:
        """SqlInsertWriter still inserts mapping items inside the chunk's transaction."""
        fill(bind, [])
        check_writer(
            lambda: SqlInsertWriter(people),
            PEOPLE[:3],
            lambda: table_rows(bind),
            transaction_manager=SqlTransactionManager(bind),
            reset=lambda: fill(bind, []),
        )

    def test_driver_executemany_when_nothing_per_row_is_needed(self, bind: sa.Engine) -> None:
        """On MySQL/MariaDB and SQLite, inserts go straight to the driver's executemany unless a
        column has a bind processor or a left-out column a Python default; the rows written
        are the statement path's either way."""
        with_default = sa.Table(
            "people_default",
            sa.MetaData(),
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
            sa.Column("name", sa.String(50)),
            sa.Column("note", sa.String(20), default="filled"),
        )
        with_default.create(bind)
        items = [Person(**row) for row in PEOPLE[:5]]
        direct = SqlWriter(people)
        plain = SqlWriter(with_default, columns=["id", "name"])
        with bind.begin() as conn:
            chunk = Chunk(1, conn, StepExecution(1, 1, "s"))
            direct.write(items, chunk)
            plain.write([{"id": 1, "name": "a"}, {"id": 2, "name": "b"}], chunk)
            planned = direct._direct_plan(conn, items[0])
            fallback = plain._direct_plan(conn, {"id": 1, "name": "a"})
            notes = [r.note for r in conn.execute(sa.select(with_default.c.note))]
        expected = sorted(tuple(r.values()) for r in PEOPLE[:5])
        assert table_rows(bind) == expected
        assert notes == ["filled", "filled"] and fallback is None
        # SQLite's Date and Numeric have bind processors; MySQL's and MariaDB's do not.
        assert (planned is None) == (bind.dialect.name not in ("mysql", "mariadb"))
        with_default.drop(bind)

    def test_csv_to_table_job(self, engine: Engine, tmp_path: Path) -> None:
        """A chunk job reads a CSV with a dataclass mapper and inserts it on every backend."""
        bind: sa.Engine = engine.repository.engine  # type: ignore[attr-defined]
        meta.create_all(bind)
        path = tmp_path / "people.csv"
        lines = ["region,id,name,born,score"]
        lines += [f"{r['region']},{r['id']},{r['name']},{r['born']},{r['score']}" for r in PEOPLE]
        path.write_text("\n".join(lines) + "\n")
        step = (
            StepBuilder("load")
            .chunk(5)
            .reader(lambda se: DelimitedReader(str(path), mapper=Person))
            .writer(SqlWriter(people))
        )
        execution = engine.start(JobBuilder("csv_to_table").step(step).build())
        assert execution.status is BatchStatus.COMPLETED, execution.exit_status
        expected = sorted(tuple(r.values()) for r in PEOPLE)
        assert table_rows(bind) == expected


def duplicate_job(
    name: str, writer: Any, items: list[Any], skip: type[Exception] = sa.exc.IntegrityError
) -> Any:
    """A job writing ``items`` (the 4th a duplicate key) that skips ``skip``."""
    step = (
        StepBuilder("load")
        .chunk(10)
        .reader(lambda se: iter(items))
        .writer(writer)
        .skip(skip, limit=5)
    )
    return JobBuilder(name).step(step).build()


class TestSameExceptionsEverywhere:
    @pytest.mark.parametrize("items", ["dicts", "dataclasses"])
    def test_duplicate_key_is_sqlalchemy_integrity_error(self, engine: Engine, items: str) -> None:
        """On every backend and write path (the statement, the driver's executemany,
        MariaDB's rendered INSERT), a duplicate key raises sqlalchemy.exc.IntegrityError,
        so .skip(IntegrityError) skips it and the rest is written."""
        bind: sa.Engine = engine.repository.engine  # type: ignore[attr-defined]
        meta.create_all(bind)
        rows = [*PEOPLE[:3], PEOPLE[0], *PEOPLE[3:6]]
        given = rows if items == "dicts" else [Person(**r) for r in rows]
        execution = engine.start(duplicate_job("dups", SqlInsertWriter(people), given))
        assert execution.status is BatchStatus.COMPLETED, execution.exit_status
        assert execution.step("load").write_skip_count == 1
        assert table_rows(bind) == sorted(tuple(r.values()) for r in PEOPLE[:6])

    def test_the_driver_class_can_be_named_too(self, engine: Engine) -> None:
        """.skip(<the driver's IntegrityError>) matches the SQLAlchemy error wrapping it, on
        every backend and write path."""
        bind: sa.Engine = engine.repository.engine  # type: ignore[attr-defined]
        meta.create_all(bind)
        driver_error = bind.dialect.loaded_dbapi.IntegrityError
        rows = [*PEOPLE[:3], PEOPLE[0], *PEOPLE[3:6]]
        job = duplicate_job("dups", SqlInsertWriter(people), rows, skip=driver_error)
        execution = engine.start(job)
        assert execution.status is BatchStatus.COMPLETED, execution.exit_status
        assert execution.step("load").write_skip_count == 1

    def test_raw_driver_error_is_translated(self, bind: sa.Engine) -> None:
        """A driver error in a direct path surfaces as SQLAlchemy's class, the driver's
        own exception kept as .orig."""
        fill(bind, PEOPLE[:1])
        with pytest.raises(sa.exc.IntegrityError) as raised, bind.begin() as conn:
            SqlWriter(people).write(PEOPLE[:1], Chunk(1, conn, StepExecution(1, 1, "s")))
        assert raised.value.orig is not None
        assert type(raised.value.orig).__module__.split(".")[0] in ("sqlite3", "pymysql", "psycopg")


class TestPostgresCopyWriter:
    @pytest.fixture
    def pg(self, tmp_path: Path) -> Iterator[sa.Engine]:
        with fresh_database("postgresql", tmp_path) as url:
            engine = sa.create_engine(url)
            meta.create_all(engine)
            yield engine
            engine.dispose()

    @pytest.mark.parametrize("threaded", [True, False])
    def test_contract_with_dicts(self, pg: sa.Engine, threaded: bool) -> None:
        """COPY of dict items in the chunk's transaction passes the writer contract kit."""
        check_writer(
            lambda: PostgresCopyWriter(people, threaded=threaded),
            PEOPLE[:9],
            lambda: table_rows(pg),
            chunk_size=4,
            transaction_manager=SqlTransactionManager(pg),
            reset=lambda: fill(pg, []),
        )

    def test_tuples_and_named_columns(self, pg: sa.Engine) -> None:
        """Tuple items go to the named columns; the others stay NULL."""
        check_writer(
            lambda: PostgresCopyWriter("people", ["region", "id", "name"]),
            [("eu", 1, "tab\there"), ("eu", 2, "new\nline \\ backslash")],
            lambda: table_rows(pg),
            transaction_manager=SqlTransactionManager(pg),
            reset=lambda: fill(pg, []),
            expected=[
                ("eu", 1, "tab\there", None, None),
                ("eu", 2, "new\nline \\ backslash", None, None),
            ],
        )

    def test_duplicate_key_is_sqlalchemy_integrity_error(self, tmp_path: Path) -> None:
        """A COPY hitting a duplicate key raises sqlalchemy.exc.IntegrityError (not psycopg's),
        so .skip(IntegrityError) skips the row and the rest is copied."""
        with fresh_database("postgresql", tmp_path) as url, Engine(url) as engine:
            bind: sa.Engine = engine.repository.engine  # type: ignore[attr-defined]
            meta.create_all(bind)
            rows = [*PEOPLE[:3], PEOPLE[0], *PEOPLE[3:6]]
            execution = engine.start(duplicate_job("dups", PostgresCopyWriter(people), rows))
            assert execution.status is BatchStatus.COMPLETED, execution.exit_status
            assert execution.step("load").write_skip_count == 1
            assert table_rows(bind) == sorted(tuple(r.values()) for r in PEOPLE[:6])

    def test_refuses_other_databases(self, tmp_path: Path) -> None:
        """On SQLite the COPY writer fails with a message naming what it needs."""
        bind = sa.create_engine(f"sqlite:///{tmp_path / 'x.db'}")
        meta.create_all(bind)
        with pytest.raises(ConfigurationError, match="needs PostgreSQL through psycopg"):
            check_writer(
                lambda: PostgresCopyWriter(people),
                PEOPLE[:1],
                lambda: table_rows(bind),
                transaction_manager=SqlTransactionManager(bind),
            )
