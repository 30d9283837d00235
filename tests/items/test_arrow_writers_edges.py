"""Edge values through the columnar bulk writers into real tables: what the database holds must
be what the batch held and what the row path stores; a value its column cannot hold fails the
chunk naming the writer, the column and the row, and nothing of the chunk stays."""

from __future__ import annotations

import datetime as dt
import math
import os
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from batchline import BatchStatus, ConfigurationError, Engine, StepBuilder
from batchline.items.arrow import ArrowCsvWriter
from batchline.items.load_feed import LoadFeed
from batchline.items.memory import ListReader
from batchline.items.mysql_load import MySqlLoadDataWriter
from batchline.items.postgres_copy import PostgresCopyWriter
from batchline.model import JobExecution
from batchline.testing import run_step
from tests.backends import fresh_database, import_extra

pa = import_extra("pyarrow", "arrow")
pacsv = import_extra("pyarrow.csv", "arrow")

NY = "America/New_York"
TEXTS = ["", None, "\\N", "NULL", 'tab\t nl\n cr\r back\\ "q" a,b é 🎉 𝄞']


class Batches:
    """A table as batches of the asked size (no restart: for writer tests)."""

    def __init__(self, table: Any) -> None:
        self.table, self.at = table, 0

    def read_batch(self, rows: int) -> tuple[Any, list[Any], bool]:
        piece = self.table.slice(self.at, rows).combine_chunks().to_batches()
        self.at += rows
        return (piece[0] if piece else None), [], self.at >= self.table.num_rows


def run(
    engine: Engine,
    ddl: str | None,
    data: Any,
    writer: Any,
    *,
    rows: int = 1000,
    processor: Any = None,
    skip: type[Exception] | None = None,
) -> tuple[JobExecution, list[tuple[Any, ...]]]:
    """A columnar step of ``data`` into a fresh ``t`` (a row step when ``data`` is a list)."""
    bind = engine.repository.engine  # type: ignore[attr-defined]
    if ddl is not None:
        with bind.begin() as conn:
            conn.exec_driver_sql("DROP TABLE IF EXISTS t")
            conn.exec_driver_sql(ddl)
    name = f"s_{uuid.uuid4().hex[:8]}"
    if isinstance(data, list):
        step = StepBuilder(name).chunk(rows).reader(ListReader(data))
    else:
        step = StepBuilder(name).columnar(rows).reader(Batches(data))
    if processor is not None:
        step = step.processor(processor)
    step = step.writer(writer)
    if skip is not None:
        step = step.skip(skip, limit=5)
    execution = run_step(engine, step.build())
    with bind.connect() as conn:
        stored = [tuple(r) for r in conn.exec_driver_sql("SELECT * FROM t ORDER BY 1").all()]
    return execution, stored


def first_line(execution: JobExecution) -> str:
    return (execution.exit_status.description.splitlines() or [""])[0]


def comparable(rows: Sequence[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """NaN equal to NaN."""
    return [tuple("nan" if isinstance(v, float) and math.isnan(v) else v for v in r) for r in rows]


def as_rows(table: Any) -> list[tuple[Any, ...]]:
    return [tuple(r.values()) for r in table.to_pylist()]


@pytest.fixture(scope="module")
def pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    with fresh_database("postgresql", tmp_path_factory.mktemp("pg")) as url, Engine(url) as eng:
        yield eng


@pytest.fixture(scope="module")
def maria(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    with fresh_database("mariadb", tmp_path_factory.mktemp("my")) as base:
        url = sa.make_url(base).update_query_dict({"local_infile": "1", "charset": "utf8mb4"})
        with Engine(url.render_as_string(hide_password=False)) as eng:
            yield eng


def pg_edges() -> Any:
    ts = [
        dt.datetime(1969, 12, 31, 23, 59, 59, 999999),
        dt.datetime(2262, 4, 11),
        None,
        dt.datetime(1900, 1, 1),
        dt.datetime(2024, 2, 29, 12, 0, 0, 1),
    ]
    days = [
        dt.date(1, 1, 1),
        dt.date(1969, 12, 31),
        None,
        dt.date(9999, 12, 31),
        dt.date(2000, 1, 1),
    ]
    amounts = [Decimal("-99999.99"), Decimal("0"), None, Decimal("12345.67"), Decimal("-0.01")]
    raw = [b"\x00\xff\\x", b"", None, b'"\n\r,', b"NULL"]
    return pa.table(
        {
            "id": pa.array([1, 2, 3, 4, 5], pa.int64()),
            "big": pa.array([-(2**63), 2**63 - 1, None, 0, -1], pa.int64()),
            "small": pa.array([-32768, 32767, None, 0, 1], pa.int64()),
            "dbl": [math.nan, math.inf, None, -math.inf, -0.0],
            "flt": [0.5, -1.5, None, math.inf, 1024.0],
            "d32": pa.array(amounts, pa.decimal32(7, 2)),
            "d64": pa.array(amounts, pa.decimal64(7, 2)),
            "d128": pa.array(amounts, pa.decimal128(7, 2)),
            "d256": pa.array(amounts, pa.decimal256(7, 2)),
            "flag": [True, False, None, True, False],
            "day": pa.array(days, pa.date32()),
            "day64": pa.array(days, pa.date64()),
            "ts_s": pa.array([t and t.replace(microsecond=0) for t in ts], pa.timestamp("s")),
            "ts_ns": pa.array(ts, pa.timestamp("ns")),
            "tz": pa.array(ts, pa.timestamp("us")).cast(pa.timestamp("us", NY)),
            "name": TEXTS,
            "lname": pa.array(TEXTS, pa.large_string()),
            "view": pa.array(TEXTS, pa.string_view()),
            "dict": pa.array(TEXTS).dictionary_encode(),
            "blob": pa.array(raw, pa.binary()),
            "lblob": pa.array(raw, pa.large_binary()),
            "nothing": pa.nulls(5),
        }
    )


PG_DDL = (
    "CREATE TABLE t (id bigint, big bigint, small smallint, dbl double precision, flt real, "
    "d32 numeric(9, 2), d64 numeric, d128 numeric(7, 2), d256 numeric(20, 4), flag boolean, "
    "day date, day64 date, ts_s timestamp, ts_ns timestamp, tz timestamptz, name text, "
    "lname varchar(100), view text, dict text, blob bytea, lblob bytea, nothing text)"
)


class TestPostgresCopy:
    def test_edge_values_store_what_the_batch_and_the_row_path_hold(self, pg: Engine) -> None:
        """Binary COPY, CSV COPY and the row path store the same rows, equal to the batch's:
        decimal32/64/256 (binary read them as 128-bit: wrong values or a crash), string views
        and bytes (Arrow's CSV writer refused them), NaN, infinities, extreme integers and
        dates, every timestamp unit, a zone, NULL next to the texts \\N and NULL."""
        data = pg_edges()
        # the same values in types the binary encoder takes (a dictionary or a null column
        # sends the chunk as CSV)
        plain = data.set_column(data.schema.get_field_index("dict"), "dict", pa.array(TEXTS))
        plain = plain.set_column(plain.num_columns - 1, "nothing", pa.nulls(5, pa.string()))
        stored = {}
        for binary, table in ((True, plain), (False, data)):
            writer = PostgresCopyWriter("t", data.column_names, binary=binary)
            execution, stored[binary] = run(pg, PG_DDL, table, writer, rows=3)
            assert execution.status is BatchStatus.COMPLETED, first_line(execution)
            if binary:
                assert all(writer._encoders.values())
        execution, by_rows = run(
            pg, PG_DDL, as_rows(data), PostgresCopyWriter("t", data.column_names), rows=3
        )
        assert execution.status is BatchStatus.COMPLETED, first_line(execution)
        expected = comparable(as_rows(data))
        assert comparable(stored[True]) == expected
        assert comparable(stored[False]) == expected
        assert comparable(by_rows) == expected

    def test_integers_into_floats_round_as_the_server_rounds_their_text(self, pg: Engine) -> None:
        """2**53 + 1 into double precision: the binary path refused it (a safe Arrow cast)
        where the CSV and row paths store the nearest double."""
        data = pa.table({"id": [1], "v": pa.array([2**53 + 1], pa.int64())})
        for binary in (True, False):
            writer = PostgresCopyWriter("t", ["id", "v"], binary=binary)
            execution, stored = run(pg, "CREATE TABLE t (id int, v double precision)", data, writer)
            assert execution.status is BatchStatus.COMPLETED, first_line(execution)
            assert stored == [(1, float(2**53))]

    def test_nanoseconds_round_as_the_csv_path_rounds(self, pg: Engine) -> None:
        """Sub-microsecond timestamps: the binary path refused them (Arrow's safe cast); now it
        rounds half to even, as the server rounds the CSV path's text."""
        ns = [1_000_000_123, -1_000_000_999, 1_500, 2_500, 999_999_999_999]
        data = pa.table({"id": [1, 2, 3, 4, 5], "at": pa.array(ns, pa.timestamp("ns"))})
        stored = {}
        for binary in (True, False):
            writer = PostgresCopyWriter("t", ["id", "at"], binary=binary)
            execution, stored[binary] = run(
                pg, "CREATE TABLE t (id int, at timestamp)", data, writer
            )
            assert execution.status is BatchStatus.COMPLETED, first_line(execution)
        assert stored[True] == stored[False]
        epoch = dt.datetime(1970, 1, 1)
        assert [r[1] - epoch for r in stored[True]][:4] == [
            dt.timedelta(seconds=1),
            dt.timedelta(seconds=-1, microseconds=-1),
            dt.timedelta(microseconds=2),
            dt.timedelta(microseconds=2),
        ]

    @pytest.mark.parametrize(
        ("column", "values", "binary", "reason"),
        [
            ("integer", pa.array([1, 2, 2**31, 4], pa.int64()), True, "not in range"),
            ("smallint", pa.array([1, None, -(2**15) - 1, 4], pa.int64()), True, "not in range"),
            ("bigint", pa.array([1, 2, 2**64 - 1, 4], pa.uint64()), True, "not in range"),
            ("real", pa.array([1.0, None, 1e300, 2.0]), True, "out of range for type real"),
            ("date", pa.array([0, 1, -(2**31) + 10_957, 2], pa.date32()), True, "out of range"),
            ("text", pa.array(["a", None, "b\x00", "c"]), True, "NUL"),
            ("text", pa.array(["a", None, "b\x00", "c"]), False, "NUL"),
        ],
    )
    def test_a_value_its_column_cannot_hold_fails_naming_column_and_row(
        self, pg: Engine, column: str, values: Any, binary: bool, reason: str
    ) -> None:
        """An int32 overflow (an Arrow error naming nothing), a float8 too large for real
        (stored as infinity), a date32 landing on -infinity, a NUL: one line naming writer,
        column and row, raised as sqlalchemy's DataError (as the server's refusals are); the
        chunk commits nothing."""
        data = pa.table({"id": [1, 2, 3, 4], "v": values})
        writer = PostgresCopyWriter("t", ["id", "v"], binary=binary)
        execution, stored = run(pg, f"CREATE TABLE t (id int, v {column})", data, writer)
        assert execution.status is BatchStatus.FAILED
        line = first_line(execution)
        assert "DataError" in line and "PostgresCopyWriter('t'): column 'v'" in line, line
        assert "row 3 of the chunk" in line and reason in line, line
        assert stored == []

    def test_a_refused_value_is_skipped_as_a_server_refusal_is(self, pg: Engine) -> None:
        """.skip(DataError) scans the chunk down to the row the encoder refuses, as it does
        for one the server refuses on the CSV path."""
        data = pa.table({"id": [1, 2, 3, 4], "v": pa.array([1, 2, 2**40, 4], pa.int64())})
        for binary in (True, False):
            writer = PostgresCopyWriter("t", ["id", "v"], binary=binary)
            ddl = "CREATE TABLE t (id int, v integer)"
            execution, stored = run(pg, ddl, data, writer, skip=sa.exc.DataError)
            assert execution.status is BatchStatus.COMPLETED, first_line(execution)
            assert stored == [(1, 1), (2, 2), (4, 4)]

    def test_decimals_round_as_the_row_path_rounds(self, pg: Engine) -> None:
        """Scale 2 into numeric(5, 1): the server rounds half away from zero on every path."""
        amounts = [Decimal("0.05"), Decimal("-0.05"), Decimal("123.45"), Decimal("-9999.94")]
        data = pa.table({"id": [1, 2, 3, 4], "v": pa.array(amounts, pa.decimal128(6, 2))})
        ddl = "CREATE TABLE t (id int, v numeric(5, 1))"
        expected = [Decimal("0.1"), Decimal("-0.1"), Decimal("123.5"), Decimal("-9999.9")]
        for binary in (True, False):
            writer = PostgresCopyWriter("t", ["id", "v"], binary=binary)
            execution, stored = run(pg, ddl, data, writer)
            assert execution.status is BatchStatus.COMPLETED, first_line(execution)
            assert [r[1] for r in stored] == expected
        execution, stored = run(pg, ddl, as_rows(data), PostgresCopyWriter("t", ["id", "v"]))
        assert [r[1] for r in stored] == expected

    def test_a_duplicate_key_is_sqlalchemy_integrity_error_and_skips(self, pg: Engine) -> None:
        """The columnar COPY raised psycopg's UniqueViolation, which .skip(IntegrityError)
        does not match, where the row path raises SQLAlchemy's."""
        data = pa.table({"id": [1, 2, 3, 2, 4], "s": list("abcde")})
        execution, stored = run(
            pg,
            "CREATE TABLE t (id int PRIMARY KEY, s text)",
            data,
            PostgresCopyWriter("t", ["id", "s"]),
            skip=sa.exc.IntegrityError,
        )
        assert execution.status is BatchStatus.COMPLETED, first_line(execution)
        assert execution.step_executions[0].write_skip_count == 1
        assert stored == [(1, "a"), (2, "b"), (3, "c"), (4, "e")]

    def test_batches_of_a_chunk_with_different_schemas(self, pg: Engine) -> None:
        """A processor's outputs with different decimal scales: the second batch was encoded
        with the first's scale (1.2345 stored as 123.45)."""

        def split(batch: Any) -> list[Any]:
            first = batch.slice(0, 1).cast(
                pa.schema([("id", pa.int64()), ("v", pa.decimal128(10, 2))])
            )
            return [first, batch.slice(1)]

        amounts = [Decimal("1.5"), Decimal("1.2345"), Decimal("-0.0001")]
        data = pa.table({"id": [1, 2, 3], "v": pa.array(amounts, pa.decimal128(10, 4))})
        execution, stored = run(
            pg,
            "CREATE TABLE t (id int, v numeric)",
            data,
            PostgresCopyWriter("t", ["id", "v"]),
            processor=split,
        )
        assert execution.status is BatchStatus.COMPLETED, first_line(execution)
        assert [r[1] for r in stored] == amounts

    def test_columns_the_batch_lacks_or_cannot_write_are_named(self, pg: Engine) -> None:
        """A missing column (Arrow's KeyError named neither writer nor table), no columns at
        all (a syntax error), a duration (Arrow writes microseconds an interval reads as
        seconds: 1 s stored as 11 days)."""
        ddl = "CREATE TABLE t (id int, s text, v interval)"
        data = pa.table({"id": [1], "s": ["a"]})
        execution, _ = run(pg, ddl, data, PostgresCopyWriter("t", ["id", "s", "v"]))
        assert "ConfigurationError: PostgresCopyWriter('t'): the batch has no column 'v'" in (
            first_line(execution)
        )
        none = PostgresCopyWriter("t")
        execution, _ = run(pg, ddl, data, none, processor=lambda b: b.select([]))
        assert "no columns to write" in first_line(execution)
        data = pa.table({"id": [1], "v": pa.array([dt.timedelta(seconds=1)], pa.duration("us"))})
        execution, stored = run(pg, ddl, data, PostgresCopyWriter("t", ["id", "v"]))
        assert "column 'v' is duration[us]" in first_line(execution)
        assert stored == []


MY_DDL = (
    "CREATE TABLE t (id bigint, big bigint, name varchar(100), view varchar(100), "
    "dict varchar(100), raw blob, at datetime(6), flag tinyint, amount decimal(20, 2), "
    "day date) CHARACTER SET utf8mb4"
)


def my_edges() -> Any:
    texts = [*TEXTS, "nul\x00byte"]
    at = [dt.datetime(1677, 9, 22), dt.datetime(2262, 4, 11, 23, 47, 16, 854775), None]
    return pa.table(
        {
            "id": pa.array(range(1, 7), pa.int64()),
            "big": pa.array([-(2**63), 2**63 - 1, None, 0, -1, 7], pa.int64()),
            "name": texts,
            "view": pa.array(texts, pa.string_view()),
            "dict": pa.array(texts).dictionary_encode(),
            "raw": pa.array([b"\x00\xff\\x", b"", None, b'"\n\r,', b"NULL", b"\\N"]),
            "at": pa.array([*at, *at], pa.timestamp("ns")),
            "flag": [True, False, None, True, False, None],
            "amount": pa.array(
                [Decimal("-1.50"), Decimal("0"), None, Decimal("99.99"), Decimal("1e10"), None],
                pa.decimal256(40, 2),
            ),
            "day": [
                dt.date(1000, 1, 1),
                dt.date(1969, 12, 31),
                None,
                None,
                dt.date(9999, 12, 31),
                None,
            ],
        }
    )


class TestLoadData:
    def test_edge_values_store_what_the_batch_holds(self, maria: Engine, tmp_path: Path) -> None:
        """NULL next to the texts \\N and NULL, NUL, 4-byte unicode, string views (Arrow's
        CSV writer refused them), bytes that are not UTF-8 (refused too; valid ones went as
        text), nanosecond timestamps (the server warns at a ninth digit, even a zero)."""
        data = my_edges()
        writer = MySqlLoadDataWriter("t", data.column_names, folder=str(tmp_path))
        execution, stored = within(30, tmp_path, lambda: run(maria, MY_DDL, data, writer, rows=4))
        assert execution.status is BatchStatus.COMPLETED, first_line(execution)
        expected = [(*r[:7], None if r[7] is None else int(r[7]), *r[8:]) for r in as_rows(data)]
        assert stored == expected
        plain = data.drop_columns(["raw", "at"])  # the row path takes neither
        rows = MySqlLoadDataWriter("t", plain.column_names)
        execution, by_rows = run(maria, MY_DDL, as_rows(plain), rows)
        assert execution.status is BatchStatus.COMPLETED, first_line(execution)
        assert [(*r[:5], *r[7:]) for r in by_rows] == [(*r[:5], *r[7:]) for r in stored]

    def test_a_value_failing_to_render_first_does_not_hang(
        self, maria: Engine, tmp_path: Path
    ) -> None:
        """A sub-microsecond timestamp in the first piece: the feed's thread failed before
        opening the pipe, and the server waited on it for ever. Now the chunk fails naming the
        column and row, and the pipe is gone."""
        data = pa.table({"id": [1, 2], "at": pa.array([0, 1], pa.timestamp("ns"))})
        writer = MySqlLoadDataWriter("t", ["id", "at"], folder=str(tmp_path))
        execution, stored = within(30, tmp_path, lambda: run(maria, MY_DDL, data, writer))
        assert execution.status is BatchStatus.FAILED
        line = first_line(execution)
        assert "LoadDataError: MySqlLoadDataWriter('t'): column 'at'" in line, line
        assert "row 2 of the chunk" in line and "lose data" in line, line
        assert stored == []
        assert list(tmp_path.iterdir()) == []

    def test_a_row_failing_to_render_first_does_not_hang(
        self, maria: Engine, tmp_path: Path
    ) -> None:
        """The row path's first piece failing: the same wait on the pipe."""
        writer = MySqlLoadDataWriter("t", ["id", "name"], folder=str(tmp_path))
        rows = [(1, object()), (2, "b")]
        execution, stored = within(30, tmp_path, lambda: run(maria, MY_DDL, rows, writer))
        assert execution.status is BatchStatus.FAILED
        assert "cannot load a object value" in first_line(execution)
        assert stored == []
        assert list(tmp_path.iterdir()) == []

    def test_a_value_failing_to_render_midway_rolls_the_chunk_back(
        self, maria: Engine, tmp_path: Path
    ) -> None:
        """Pieces before it were loaded; the chunk fails and nothing of it stays."""
        at = pa.array([i * 1000 for i in range(10_000)], pa.timestamp("ns"))
        at = pa.concat_arrays(
            [at.slice(0, 9_000), pa.array([1], pa.timestamp("ns")), at.slice(9_001)]
        )
        data = pa.table({"id": list(range(10_000)), "at": at})
        writer = MySqlLoadDataWriter("t", ["id", "at"], folder=str(tmp_path))
        execution, stored = run(maria, MY_DDL, data, writer, rows=10_000)
        assert execution.status is BatchStatus.FAILED
        assert "row 9001 of the chunk" in first_line(execution)
        assert stored == []
        assert list(tmp_path.iterdir()) == []

    def test_batches_of_a_chunk_with_different_schemas(self, maria: Engine) -> None:
        """A processor's outputs with different decimal scales: one table of them was
        refused (Arrow's "Schema at index 1 was different") where the row path loads them."""
        amounts = [Decimal("1.5"), Decimal("1.2345"), Decimal("-0.0001")]
        data = pa.table({"id": [1, 2, 3], "amount": pa.array(amounts, pa.decimal128(10, 4))})
        two = pa.schema([("id", pa.int64()), ("amount", pa.decimal128(10, 2))])
        execution, stored = run(
            maria,
            "CREATE TABLE t (id int, amount decimal(20, 4))",
            data,
            MySqlLoadDataWriter("t", ["id", "amount"]),
            processor=lambda b: [b.slice(0, 1).cast(two), b.slice(1)],
        )
        assert execution.status is BatchStatus.COMPLETED, first_line(execution)
        assert [r[1] for r in stored] == amounts

    def test_a_missing_column_or_table_is_named(self, maria: Engine, tmp_path: Path) -> None:
        data = pa.table({"id": [1], "name": ["a"]})
        execution, _ = run(maria, MY_DDL, data, MySqlLoadDataWriter("t", ["id", "nope"]))
        assert "the batch has no column 'nope'" in first_line(execution)
        writer = MySqlLoadDataWriter("missing", ["id", "name"], folder=str(tmp_path))
        execution, _ = within(30, tmp_path, lambda: run(maria, MY_DDL, data, writer))
        assert "missing" in first_line(execution)
        assert list(tmp_path.iterdir()) == []


def test_a_feed_closed_before_its_first_piece_is_rendered_does_not_hang(tmp_path: Path) -> None:
    """The statement failed (a missing table, say) while the feed's thread still rendered its
    first piece: close() read the pipe's end before the thread opened it, and the thread then
    waited for a reader for ever, the chunk's writer with it."""

    def slow() -> Iterator[bytes]:
        time.sleep(0.3)
        yield b"1\n"

    within(10, tmp_path, lambda: LoadFeed(slow(), str(tmp_path)).close())
    assert list(tmp_path.iterdir()) == []


def within(seconds: float, folder: Path, job: Any) -> Any:
    """``job()``; if it is still waiting after ``seconds`` on a pipe in ``folder``, the pipe
    is opened and closed at both ends (whichever side waits then goes on) and the test
    fails."""
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(job()), daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        for pipe in folder.rglob("rows"):
            os.close(os.open(pipe, os.O_RDWR | os.O_NONBLOCK))
        thread.join(seconds)
        pytest.fail(f"the load was still waiting on its pipe after {seconds} s")
    return result[0]


class TestCsvWriter:
    def test_views_missing_columns_and_no_columns(self, tmp_path: Path) -> None:
        """A string view column (Arrow's CSV writer refused it), a column the batch lacks
        (a KeyError naming no file), no columns (the rows were dropped silently)."""
        from batchline.testing import temporary_engine

        data = pa.table({"id": [1, 2], "s": pa.array(["a,b", None], pa.string_view())})
        target = tmp_path / "out.csv"
        with temporary_engine() as engine:
            step = StepBuilder("v").columnar(5).reader(Batches(data))
            execution = run_step(
                engine, step.writer(ArrowCsvWriter(str(target), ["s", "id"])).build()
            )
            assert execution.status is BatchStatus.COMPLETED, first_line(execution)
            assert target.read_text() == 's,id\n"a,b",1\n,2\n'
            step = StepBuilder("m").columnar(5).reader(Batches(data))
            writer = ArrowCsvWriter(str(tmp_path / "m.csv"), ["id", "nope"])
            execution = run_step(engine, step.writer(writer).build())
            assert "ArrowCsvWriter" in first_line(execution)
            assert "no column 'nope'" in first_line(execution)
        with pytest.raises(ConfigurationError, match="column names"):
            ArrowCsvWriter(str(tmp_path / "x.csv"), [])

    def test_header_names_holding_the_delimiter_or_quotes_read_back_as_written(
        self, tmp_path: Path
    ) -> None:
        """The header line is CSV too: a name with a comma, a quote or a newline is quoted
        (joined as they were, the file read back had other columns than were written)."""
        from batchline.testing import temporary_engine

        names = ["id", "price, eur", 'say "hi"', "two\nlines"]
        data = pa.table({name: [1, 2] for name in names})
        target = tmp_path / "out.csv"
        with temporary_engine() as engine:
            step = StepBuilder("h").columnar(5).reader(Batches(data))
            execution = run_step(engine, step.writer(ArrowCsvWriter(str(target), names)).build())
        assert execution.status is BatchStatus.COMPLETED, first_line(execution)
        back = pacsv.read_csv(target, parse_options=pacsv.ParseOptions(newlines_in_values=True))
        assert back.column_names == names
        assert back.num_rows == 2
