"""The columnar writers the awkward way, through real jobs: ArrowCsvWriter's text read back by
the csv module and by Arrow, ArrowParquetWriter with chunks of other types and a file already
there, ArrowSqlWriter's values on every backend, and both file writers killed with SIGKILL
between the file write and the commit, then restarted with other chunk sizes."""

from __future__ import annotations

import csv
import datetime as dt
import math
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from batchline import BatchStatus, Chunk, ConfigurationError, Engine, JobBuilder, StepBuilder
from batchline.items.arrow import (
    ArrowCsvWriter,
    ArrowParquetReader,
    ArrowParquetWriter,
    ArrowSqlWriter,
)
from batchline.model import ExecutionContext, JobExecution
from batchline.testing import run_step
from batchline.testing.crash import CrashInjector
from tests.backends import import_extra

pa = import_extra("pyarrow", "arrow")
pq = import_extra("pyarrow.parquet", "arrow")
pacsv = import_extra("pyarrow.csv", "arrow")

ROOT = Path(__file__).resolve().parents[2]
NY = "America/New_York"


class Batches:
    """The given batches, one per read, whatever the size asked (no restart)."""

    def __init__(self, batches: Sequence[Any]) -> None:
        self.batches = list(batches)

    def read_batch(self, rows: int) -> tuple[Any, list[Any], bool]:
        batch = self.batches.pop(0) if self.batches else None
        return batch, [], not self.batches


def run(engine: Engine, batches: Sequence[Any], writer: Any, **options: Any) -> JobExecution:
    step = StepBuilder(f"s_{uuid.uuid4().hex[:8]}").columnar(1000).reader(Batches(batches))
    if "processor" in options:
        step = step.processor(options["processor"])
    if "skip" in options:
        step = step.skip(options["skip"], limit=5)
    return run_step(engine, step.writer(writer).build())


def failure(execution: JobExecution) -> str:
    assert execution.status is BatchStatus.FAILED
    return execution.exit_status.description


# --- ArrowCsvWriter -----------------------------------------------------------------------------


def awkward_table() -> Any:
    texts = ['a,b "q"', "line\nbreak\r\nand\rcr", "", None, "é 🎉 \t tab", "x" * 70_000]
    return pa.table(
        {
            "id": pa.array(range(6), pa.int32()),
            "text": texts,
            "large": pa.array(texts, pa.large_string()),
            "dict": pa.array(texts).dictionary_encode(),
            "num": [math.nan, math.inf, -math.inf, None, -0.5, 1e300],
            "amount": pa.array(
                [Decimal("-1.10"), Decimal("0.00"), None, Decimal("12345678.99")] * 1
                + [Decimal("1"), Decimal("-0.01")],
                pa.decimal128(10, 2),
            ),
            "day": pa.array([dt.date(1, 1, 1), dt.date(9999, 12, 31), None] * 2, pa.date32()),
            "at": pa.array([1, -1, None, 10**18 + 123456789, 0, 7], pa.timestamp("ns", NY)),
            "raw": pa.array([b"bytes", b"", None, b"a,b", b"\xc3\xa9", b"z"], pa.binary()),
        }
    )


def test_csv_values_read_back_alike_by_the_csv_module_and_arrow(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    """Delimiters, quotes, every line end, empty strings and nulls, NaN and infinities,
    nanosecond timestamps in a zone, very long strings: the csv module reads back the text
    Arrow gives each value, and Arrow reads back the values."""
    table = awkward_table()
    path = tmp_path / "out.csv"
    writer = ArrowCsvWriter(str(path), table.schema.names)
    done = run(sqlite_engine, table.to_batches(max_chunksize=4), writer)
    assert done.status is BatchStatus.COMPLETED, done.exit_status
    with path.open(newline="", encoding="utf-8") as f:
        header, *rows = list(csv.reader(f))
    assert header == table.schema.names
    assert [r[1] for r in rows] == [t or "" for t in table.column("text").to_pylist()]
    assert [r[3] for r in rows] == [r[1] for r in rows]
    assert [r[4] for r in rows] == ["nan", "inf", "-inf", "", "-0.5", "1e+300"]
    back = pacsv.read_csv(
        path,
        convert_options=pacsv.ConvertOptions(
            column_types={"amount": pa.decimal128(10, 2), "text": pa.string()},
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
        ),
    )
    assert back.column("text").to_pylist() == table.column("text").to_pylist()
    assert back.column("amount").to_pylist() == table.column("amount").to_pylist()
    assert back.column("at").cast(pa.timestamp("ns", NY)).equals(table.column("at"))
    assert back.column("raw").to_pylist() == ["bytes", "", None, "a,b", "é", "z"]


def test_csv_bytes_that_are_not_utf8_are_named(sqlite_engine: Engine, tmp_path: Path) -> None:
    """Arrow's own error was "Invalid UTF8 payload": no file, column or row."""
    path = tmp_path / "out.csv"
    first = pa.record_batch({"id": [1, 2], "raw": pa.array([b"ok", b"fine"], pa.binary())})
    second = pa.record_batch({"id": [3, 4], "raw": pa.array([b"ok", b"\xff\x00"], pa.binary())})
    execution = run(sqlite_engine, [first, second], ArrowCsvWriter(str(path), ["id", "raw"]))
    assert "ArrowCsvWriter(" in failure(execution)
    assert "column 'raw' (binary), row 2 of the chunk: b'\\xff\\x00' is not UTF-8" in failure(
        execution
    )
    assert path.read_text() == 'id,raw\n1,"ok"\n2,"fine"\n'  # the first chunk's rows stay


@pytest.mark.parametrize("delimiter", [" ", "-", ".", ":"])
def test_csv_a_delimiter_a_number_or_date_holds_is_quoted(
    sqlite_engine: Engine, tmp_path: Path, delimiter: str
) -> None:
    """Arrow quotes only strings: with these delimiters a timestamp, a negative number or a
    decimal was cut into more fields than the header has."""
    table = pa.table(
        {
            "at": pa.array([dt.datetime(2024, 1, 2, 3, 4, 5)], pa.timestamp("s")),
            "n": [-1.5],
            "d": pa.array([Decimal("-2.25")], pa.decimal128(5, 2)),
            "s": ["a b"],
        }
    )
    path = tmp_path / "out.csv"
    writer = ArrowCsvWriter(str(path), table.schema.names, delimiter=delimiter)
    assert run(sqlite_engine, table.to_batches(), writer).status is BatchStatus.COMPLETED
    with path.open(newline="") as f:
        rows = list(csv.reader(f, delimiter=delimiter))
    assert rows == [["at", "n", "d", "s"], ["2024-01-02 03:04:05", "-1.5", "-2.25", "a b"]]


def test_csv_rows_end_as_the_header_does(sqlite_engine: Engine, tmp_path: Path) -> None:
    """``line_separator`` ended the header only: the rows kept Arrow's "\\n"."""
    path = tmp_path / "out.csv"
    writer = ArrowCsvWriter(str(path), ["a"], line_separator="\r\n")
    done = run(sqlite_engine, [pa.record_batch({"a": [1, 2]})], writer)
    assert done.status is BatchStatus.COMPLETED, done.exit_status
    assert path.read_bytes() == b"a\r\n1\r\n2\r\n"


@pytest.mark.parametrize("delimiter", ['"', "\n", ";;", ""])
def test_csv_a_delimiter_arrow_cannot_write_is_refused_when_built(
    tmp_path: Path, delimiter: str
) -> None:
    with pytest.raises(ConfigurationError, match="the delimiter must be one character"):
        ArrowCsvWriter(str(tmp_path / "out.csv"), ["a"], delimiter=delimiter)


# --- ArrowParquetWriter -------------------------------------------------------------------------


def test_parquet_a_null_in_a_column_the_file_has_not_null_is_named(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    """Arrow's own error named neither the file nor the column's two types."""
    path = tmp_path / "out.parquet"
    strict = pa.schema([pa.field("a", pa.int64(), nullable=False)])
    first = pa.record_batch({"a": [1, 2]}, schema=strict)
    execution = run(
        sqlite_engine,
        [first, pa.record_batch({"a": [None, 3]})],
        ArrowParquetWriter(str(path)),
    )
    assert f"{path}: a chunk's column a (int64, the file has int64 not null)" in failure(execution)


def test_parquet_a_chunks_batches_of_other_types_are_cast_or_named(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    """A processor returning batches of other types (int32 then int64, a column null
    throughout) in one chunk: Arrow failed with "Schema at index 1 was different"."""

    def split(batch: Any) -> list[Any]:
        ids = batch.column(0).to_pylist()
        return [
            pa.record_batch({"a": pa.array(ids[:1], pa.int64()), "b": ["x"]}),
            pa.record_batch({"a": pa.array(ids[1:], pa.int32()), "b": pa.nulls(len(ids) - 1)}),
        ]

    path = tmp_path / "out.parquet"
    batches = [pa.record_batch({"a": [1, 2, 3]}), pa.record_batch({"a": [4, 5]})]
    done = run(sqlite_engine, batches, ArrowParquetWriter(str(path)), processor=split)
    assert done.status is BatchStatus.COMPLETED, done.exit_status
    assert pq.read_table(path).to_pylist() == [
        {"a": i, "b": "x" if i in (1, 4) else None} for i in range(1, 6)
    ]

    def reorder(batch: Any) -> list[Any]:
        return [pa.record_batch({"a": [1], "b": [2]}), pa.record_batch({"b": [3], "a": [4]})]

    failed = run(sqlite_engine, batches, ArrowParquetWriter(str(path)), processor=reorder)
    assert "a chunk's batch has columns ['b', 'a'], its first batch has ['a', 'b']" in (
        failure(failed)
    )


def test_parquet_a_file_already_there_is_replaced_at_the_first_start(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    """As FileWriter truncates its file: a run that writes no rows (no schema: no file) left
    the older file in place, to pass for its output."""
    path = tmp_path / "out.parquet"
    pq.write_table(pa.table({"stale": [1, 2, 3]}), path)
    done = run(sqlite_engine, [], ArrowParquetWriter(str(path)))
    assert done.status is BatchStatus.COMPLETED, done.exit_status
    assert not path.exists()
    pq.write_table(pa.table({"stale": [1, 2, 3]}), path)
    done = run(sqlite_engine, [pa.record_batch({"a": [1]})], ArrowParquetWriter(str(path)))
    assert done.status is BatchStatus.COMPLETED, done.exit_status
    assert pq.read_table(path).to_pylist() == [{"a": 1}]


# --- ArrowSqlWriter -----------------------------------------------------------------------------


def test_sql_nanoseconds_are_refused_naming_the_row_and_skipped_alone(engine: Engine) -> None:
    """A nanosecond timestamp reached the database truncated to microseconds (pandas'
    Timestamp through the driver); now it is refused as MySqlLoadDataWriter refuses it, the
    row named, and a skip drops that row only. Whole microseconds are stored as they were."""
    bind = engine.repository.engine  # type: ignore[attr-defined]
    metadata = sa.MetaData()
    precise = sa.DateTime().with_variant(sa.dialects.mysql.DATETIME(fsp=6), "mysql", "mariadb")
    table = sa.Table(
        f"t_{uuid.uuid4().hex[:8]}",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("at", precise),
    )
    metadata.create_all(bind)
    base = 1_700_000_000_123_456_000  # whole microseconds
    at = pa.array([base, base + 1000, base + 1, None], pa.timestamp("ns"))
    batch = pa.record_batch({"id": [1, 2, 3, 4], "at": at})
    failed = run(engine, [batch], ArrowSqlWriter(table))
    assert (
        f"ArrowSqlWriter({table.name}, mode='insert'): column 'at' (timestamp[ns]), row 3 of "
        "the chunk: 2023-11-14 22:13:20.123456001 has nanoseconds"
    ) in failure(failed)
    done = run(engine, [batch], ArrowSqlWriter(table), skip=ValueError)
    assert done.status is BatchStatus.COMPLETED, done.exit_status
    assert done.step_executions[0].write_skip_count == 1
    assert done.step_executions[0].write_count == 3
    with bind.connect() as conn:
        stored = conn.execute(sa.select(table).order_by(table.c.id)).all()
    micro = dt.datetime(2023, 11, 14, 22, 13, 20, 123456)
    assert [tuple(r) for r in stored] == [
        (1, micro),
        (2, micro + dt.timedelta(microseconds=1)),
        (4, None),
    ]


def test_sql_nan_on_sqlite_is_refused_not_stored_as_null(sqlite_engine: Engine) -> None:
    """sqlite3 binds a NaN and SQLite stores NULL: the row is refused instead, a skip drops it
    alone, and the infinities are stored as they are."""
    bind = sqlite_engine.repository.engine  # type: ignore[attr-defined]
    metadata = sa.MetaData()
    table = sa.Table(
        "floats",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("x", sa.Float),
    )
    metadata.create_all(bind)
    batch = pa.record_batch({"id": [1, 2, 3, 4], "x": [math.inf, -math.inf, math.nan, None]})
    failed = run(sqlite_engine, [batch], ArrowSqlWriter(table))
    assert "column 'x' (double), row 3 of the chunk: NaN, which SQLite would store as NULL" in (
        failure(failed)
    )
    done = run(sqlite_engine, [batch], ArrowSqlWriter(table), skip=ValueError)
    assert done.status is BatchStatus.COMPLETED, done.exit_status
    assert done.step_executions[0].write_skip_count == 1
    with bind.connect() as conn:
        stored = [tuple(r) for r in conn.execute(sa.select(table).order_by(table.c.id))]
    assert stored == [(1, math.inf), (2, -math.inf), (4, None)]


# --- killed between the file write and the commit ---------------------------------------------

KILL_ENV = "BATCHLINE_FILE_WRITERS_KILL"
COLUMNS = ["id", "text", "amount", "at"]


class _Killing:
    """The writer, and a SIGKILL after its ``update`` wrote the chunk (``write``: before the
    commit) or after its ``complete`` (``complete``: the file in place, the step's end not
    recorded)."""

    def __init__(self, inner: Any, plan: CrashInjector) -> None:
        self.inner, self.plan = inner, plan

    def open(self, context: ExecutionContext) -> None:
        self.inner.open(context)

    def write(self, items: Sequence[Any], chunk: Chunk) -> None:
        self.inner.write(items, chunk)

    def update(self, context: ExecutionContext) -> None:
        self.inner.update(context)
        self.plan.passing("write")

    def complete(self) -> None:
        self.inner.complete()
        self.plan.passing("complete")

    def close(self) -> None:
        self.inner.close()


def _source(path: Path) -> None:
    ids = list(range(6000))
    table = pa.table(
        {
            "id": ids,
            "text": [f'v{i}, "q"\n{i % 7}' if i % 3 else None for i in ids],
            "amount": [i / 7 if i % 11 else math.nan for i in ids],
            "at": pa.array([i * 1_000_000_007 for i in ids], pa.timestamp("ns", "UTC")),
        }
    )
    pq.write_table(table, path, row_group_size=777)


def _job(source: str, folder: str, rows: int, plan: CrashInjector) -> Any:
    def step(name: str, make: Any) -> Any:
        return (
            StepBuilder(name)
            .columnar(rows)
            .reader(lambda se: ArrowParquetReader(source))
            .writer(lambda se: _Killing(make(), plan))
        )

    csv_step = step("csv", lambda: ArrowCsvWriter(f"{folder}/out.csv", COLUMNS))
    parquet_step = step("parquet", lambda: ArrowParquetWriter(f"{folder}/out.parquet"))
    return JobBuilder("file_writers_killed").step(csv_step).step(parquet_step).build()


def _child(argv: list[str]) -> int:
    url, source, folder, rows, *restart = argv
    plan = CrashInjector.from_env(KILL_ENV, ("write", "complete"))
    with Engine(url) as engine:
        job = _job(source, folder, int(rows), plan)
        engine.register(job)
        done = engine.restart(int(restart[0])) if restart else engine.start(job)
        return 0 if done.status is BatchStatus.COMPLETED else 1


def _run_child(url: str, source: Path, folder: Path, rows: int, kill: str | None, last: Any) -> int:
    env = {k: v for k, v in os.environ.items() if k != KILL_ENV}
    if kill:
        env[KILL_ENV] = kill
    argv = [url, str(source), str(folder), str(rows), *([str(last)] if last else [])]
    module = "tests.items.test_arrow_file_writers_edges"
    proc = subprocess.run(
        [sys.executable, "-m", module, *argv], cwd=ROOT, env=env, capture_output=True, timeout=120
    )
    if proc.returncode not in (0, -signal.SIGKILL):
        raise AssertionError(f"child failed ({proc.returncode}): {proc.stderr.decode()[-2000:]}")
    return proc.returncode


def test_killed_between_the_file_write_and_the_commit(tmp_path: Path) -> None:
    """Killed after a chunk's rows reached each file but before the commit, and after the
    Parquet file was moved into place but before the step's end was recorded; restarted with
    other chunk sizes: the CSV equals a clean run's byte for byte, the Parquet file its rows."""
    source = tmp_path / "in.parquet"
    _source(source)
    clean, killed = tmp_path / "clean", tmp_path / "killed"
    clean.mkdir()
    killed.mkdir()
    with Engine(f"sqlite:///{tmp_path / 'clean.db'}") as engine:
        job = _job(str(source), str(clean), 1000, CrashInjector(None, ()))
        assert engine.start(job).status is BatchStatus.COMPLETED
    url = f"sqlite:///{tmp_path / 'killed.db'}"
    # the CSV step's 2nd chunk; the restart's 12th chunk, the Parquet step's 4th (the CSV
    # step's 8 left first); the Parquet step's end; then the restart that takes the file back
    plan = [("write:2", 700), ("write:12", 700), ("complete:1", 2500), (None, 4000)]
    last = None
    with Engine(url) as engine:
        for kill, rows in plan:
            code = _run_child(url, source, killed, rows, kill, last)
            newest = max(engine.list_executions("file_writers_killed"), key=lambda e: e.id)
            assert (code == -signal.SIGKILL) == (kill is not None), (kill, newest.exit_status)
            if newest.status.is_running:
                engine.recover(newest.id, force=True)
            last = newest.id
        assert newest.status is BatchStatus.COMPLETED, newest.exit_status
    assert (killed / "out.csv").read_bytes() == (clean / "out.csv").read_bytes()
    expected, got = pq.read_table(clean / "out.parquet"), pq.read_table(killed / "out.parquet")
    assert got.schema.equals(expected.schema)
    assert _same(got, expected)
    assert sorted(os.listdir(killed)) == ["out.csv", "out.parquet"]


def _same(got: Any, expected: Any) -> bool:
    """Equal, NaN equal to NaN."""

    def amounts(table: Any) -> list[Any]:
        return ["nan" if math.isnan(v) else v for v in table["amount"].to_pylist()]

    rest = [c for c in got.schema.names if c != "amount"]
    return amounts(got) == amounts(expected) and got.select(rest).equals(expected.select(rest))


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1:]))
