"""The columnar step with polars processors and JSON Lines input, through real jobs: polars'
own types, a LazyFrame, skips row by row; nested, late and retyped JSON fields, their skips
naming the field, a restart with another chunk size; a headerless CSV file with bare CR ends."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

from batchline import BatchStatus, Chunk, Engine, ItemReadError, JobBuilder, StepBuilder
from batchline.items.arrow import (
    ArrowCsvReader,
    ArrowJsonReader,
    ArrowParquetReader,
    ArrowParquetWriter,
    ArrowSqlWriter,
    polars_processor,
)
from batchline.model import JobExecution, StepExecution
from batchline.testing import run_step
from tests.backends import import_extra

pa = import_extra("pyarrow", "arrow")
pq = import_extra("pyarrow.parquet", "arrow")
pl = import_extra("polars", "polars")


class Rows:
    """A writer keeping the rows of the batches it is given."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def write(self, items: Sequence[Any], chunk: Chunk) -> None:
        for batch in items:
            self.rows.extend(batch.to_pylist())


def step_of(execution: JobExecution) -> StepExecution:
    (se,) = execution.step_executions
    return se


def adds_up(se: StepExecution) -> bool:
    skipped = se.read_skip_count + se.process_skip_count + se.write_skip_count
    return bool(se.read_count + se.read_skip_count == se.write_count + se.filter_count + skipped)


UTC = dt.UTC
TYPED = pa.table(
    {
        "id": pa.array(range(7), pa.int64()),
        "name": pa.array(["a", "b", None, "d", "é", "f", "g"]),
        "amount": pa.array(
            [Decimal("1.50"), Decimal("-99999999.99"), None, Decimal("0.01")] + [Decimal(3)] * 3,
            pa.decimal128(10, 2),
        ),
        "at": pa.array([dt.datetime(2024, 3, 31, 1, i, tzinfo=UTC) for i in range(7)]).cast(
            pa.timestamp("us", "Europe/Paris")
        ),
        "ms": pa.array(
            [dt.datetime(2024, 1, 1, 1, 2, 3, i * 1000) for i in range(7)], pa.timestamp("ms")
        ),
        "ns": pa.array(
            [1_700_000_000_000_000_001 + i for i in range(7)], pa.timestamp("ns", "UTC")
        ),
        "day": pa.array([dt.date(2024, 2, 29)] * 7, pa.date32()),
        "took": pa.array([dt.timedelta(seconds=i, microseconds=5) for i in range(7)]),
        "tags": pa.array([["x", "y"], [], None, ["z"], ["é"], [], ["w"]], pa.list_(pa.string())),
        "point": pa.array([{"x": i, "label": f"p{i}"} for i in range(7)]),
        "blank": pa.nulls(7),
        "kind": pa.array(["u", "v", "u", "w", "u", "v", "u"]).dictionary_encode(),
    }
)


def typed_source(tmp_path: Path) -> str:
    path = tmp_path / "typed.parquet"
    pq.write_table(TYPED, path, row_group_size=3)
    return str(path)


class TestPolarsProcessor:
    def test_polars_types_and_row_skips_reach_parquet_unchanged(
        self, sqlite_engine: Engine, tmp_path: Path
    ) -> None:
        """Every column type polars holds (Decimal, Datetime in ms/us/ns with a zone, Date,
        Duration, List, Struct, Null, Categorical and an Enum made by fn) comes back to the
        values given; a processor failing on one row is scanned row by row, and read = written
        + filtered + skipped. polars' large_string and large_list fit the file's types."""
        labels = pl.Enum(["u", "v", "w"])

        def fn(frame: Any) -> Any:
            if (frame["id"] == 4).any():
                raise ValueError("row 4 is refused")
            return frame.filter(pl.col("id") != 1).with_columns(pl.col("kind").cast(labels))

        out = tmp_path / "out.parquet"
        step = (
            StepBuilder("typed")
            .columnar(5)
            .reader(ArrowParquetReader(typed_source(tmp_path)))
            .processor(polars_processor(fn))
            .writer(ArrowParquetWriter(str(out)))
            .skip(ValueError, limit=3)
        )
        execution = run_step(sqlite_engine, step.build())
        assert execution.status is BatchStatus.COMPLETED, execution.exit_status
        se = step_of(execution)
        assert (se.read_count, se.write_count, se.filter_count, se.process_skip_count) == (
            7,
            5,
            1,
            1,
        )
        assert adds_up(se)
        assert pq.read_table(out).to_pylist() == [
            row for row in TYPED.to_pylist() if row["id"] not in (1, 4)
        ]

    def test_polars_values_reach_sql_unchanged(self, engine: Engine, tmp_path: Path) -> None:
        """Decimal, Datetime(ms), Date, Categorical and Enum (as text), a Null column, through
        ArrowSqlWriter on each database: the values read back are those given."""
        metadata = sa.MetaData()
        table = sa.Table(
            "polars_out",
            metadata,
            sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
            sa.Column("name", sa.String(10)),
            sa.Column("amount", sa.Numeric(10, 2)),
            sa.Column("ms", sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql")),
            sa.Column("day", sa.Date),
            sa.Column("kind", sa.String(5)),
            sa.Column("label", sa.String(5)),
            sa.Column("blank", sa.String(5)),
        )
        metadata.create_all(engine.repository.engine)
        columns = [c.name for c in table.columns if c.name != "label"]

        def fn(frame: Any) -> Any:
            label = pl.col("name").fill_null("-").cast(pl.Enum(["-", "a", "b", "d", "é", "f", "g"]))
            return frame.select(*columns, label.alias("label"))

        step = (
            StepBuilder("sql")
            .columnar(3)
            .reader(ArrowParquetReader(typed_source(tmp_path)))
            .processor(polars_processor(fn))
            .writer(ArrowSqlWriter(table))
        )
        execution = run_step(engine, step.build())
        assert execution.status is BatchStatus.COMPLETED, execution.exit_status
        with engine.repository.engine.connect() as conn:
            got = [dict(r._mapping) for r in conn.execute(sa.select(table).order_by(table.c.id))]
        expected = TYPED.select(columns).to_pylist()
        for row in expected:
            row["label"] = row["name"] or "-"
        assert got == expected

    def test_a_lazy_frame_is_collected(self, sqlite_engine: Engine, tmp_path: Path) -> None:
        """polars users chain ``frame.lazy()``: the query is run, not refused; a group_by's
        rows and what it left out are counted."""

        def fn(frame: Any) -> Any:
            grouped = frame.lazy().filter(pl.col("id") != 2).group_by("kind", maintain_order=True)
            return grouped.agg(pl.col("id").sum())

        out = Rows()
        step = (
            StepBuilder("lazy")
            .columnar(3)
            .reader(ArrowParquetReader(typed_source(tmp_path)))
            .processor(polars_processor(fn))
            .writer(out)
        )
        execution = run_step(sqlite_engine, step.build())
        assert execution.status is BatchStatus.COMPLETED, execution.exit_status
        # ids 0-2 (u, v, u; 2 left out), 3-5 (w, u, v), 6 (u)
        assert out.rows == [
            {"kind": "u", "id": 0},
            {"kind": "v", "id": 1},
            {"kind": "w", "id": 3},
            {"kind": "u", "id": 4},
            {"kind": "v", "id": 5},
            {"kind": "u", "id": 6},
        ]
        se = step_of(execution)
        assert (se.read_count, se.write_count, se.filter_count) == (7, 6, 1)


def json_job(
    name: str, path: Path, rows: int, writer: Any, *, block: int, stop_at: int | None = None
) -> Any:
    def process(batch: Any) -> Any:
        if stop_at is not None and stop_at in batch["id"].to_pylist():
            raise RuntimeError(f"stopped at id {stop_at}")
        return batch

    step = (
        StepBuilder("load")
        .columnar(rows)
        .reader(lambda se: ArrowJsonReader(str(path), block_size=block))
        .processor(process)
        .writer(writer)
        .skip(ItemReadError, limit=10)
    )
    return JobBuilder(name).step(step.build()).build()


def skips(engine: Engine, execution: JobExecution) -> list[tuple[str, str]]:
    return [(s.position, s.error_message) for s in engine.skipped_items(execution.id)]


class TestJsonReader:
    def test_a_field_the_first_block_lacked_is_a_bad_record_naming_it(
        self, sqlite_engine: Engine, tmp_path: Path
    ) -> None:
        """Without a schema the fields are the first block's: a key first seen later was
        dropped from its records without a word. Its record is a read skip naming the field
        (nested ones too); with a schema naming it, it is read."""
        path = tmp_path / "late.jsonl"
        records = [{"id": i, "o": {"a": i}} for i in range(4)]
        records += [{"id": 4, "o": {"a": 4}, "z": 1}, {"id": 5, "o": {"a": 5, "q": 2}}]
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
        out = Rows()
        reader = ArrowJsonReader(str(path), block_size=60)
        step = StepBuilder("late").columnar(4).reader(reader).writer(out)
        execution = run_step(sqlite_engine, step.skip(ItemReadError, limit=5).build())
        assert execution.status is BatchStatus.COMPLETED, execution.exit_status
        assert [r["id"] for r in out.rows] == [0, 1, 2, 3]
        (late, nested) = skips(sqlite_engine, execution)
        assert late[0] == f"{path} line 5"
        assert late[1].startswith(f"{path}, line 5, field 'z': ")
        assert "give a schema" in late[1]
        assert nested[1].startswith(f"{path}, line 6, field 'o.q': ")

        out = Rows()
        schema = {"id": pa.int64(), "z": pa.int64()}
        step = StepBuilder("typed").columnar(4).reader(ArrowJsonReader(str(path), schema=schema))
        execution = run_step(sqlite_engine, step.writer(out).build())
        assert execution.status is BatchStatus.COMPLETED, execution.exit_status
        assert [r["z"] for r in out.rows] == [None] * 4 + [1, None]

    def test_a_value_of_another_type_is_skipped_naming_its_field(
        self, sqlite_engine: Engine, tmp_path: Path
    ) -> None:
        """Arrow says which value it refused ("Column(/o/a) changed from number to string");
        the skip names that field, as the CSV reader names its column."""
        path = tmp_path / "retyped.jsonl"
        records: list[dict[str, Any]] = [{"id": i, "v": i, "o": {"a": i}} for i in range(4)]
        records += [{"id": 4, "v": "four", "o": {"a": 4}}, {"id": 5, "v": 5, "o": {"a": "5"}}]
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
        step = StepBuilder("retyped").columnar(3).reader(ArrowJsonReader(str(path)))
        step = step.writer(Rows()).skip(ItemReadError, limit=5)
        execution = run_step(sqlite_engine, step.build())
        assert execution.status is BatchStatus.COMPLETED, execution.exit_status
        messages = [message for _, message in skips(sqlite_engine, execution)]
        assert messages[0].startswith(f"{path}, line 5, field 'v': "), messages
        assert messages[1].startswith(f"{path}, line 6, field 'o.a': "), messages

    def test_empty_arrays_in_the_first_block_take_later_values(
        self, sqlite_engine: Engine, tmp_path: Path
    ) -> None:
        """``"tags": []`` throughout the first block is a list of Arrow's null type, which
        refused every later tag (each such record a read skip); it is kept as a list of text,
        as an empty column is kept as text."""
        path = tmp_path / "tags.jsonl"
        records = [{"id": i, "tags": [], "o": {"n": None}} for i in range(3)]
        records += [{"id": 3, "tags": ["a", "b"], "o": {"n": "x"}}, {"id": 4, "tags": None}]
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
        out = Rows()
        step = StepBuilder("tags").columnar(2).reader(ArrowJsonReader(str(path), block_size=80))
        execution = run_step(sqlite_engine, step.writer(out).skip(ItemReadError, limit=5).build())
        assert execution.status is BatchStatus.COMPLETED, execution.exit_status
        assert step_of(execution).read_skip_count == 0, skips(sqlite_engine, execution)
        assert [r["tags"] for r in out.rows] == [[], [], [], ["a", "b"], None]
        assert [r["o"] for r in out.rows] == [{"n": None}] * 3 + [{"n": "x"}, None]

    @pytest.mark.parametrize(("first", "then"), [(2, 5), (5, 1)])
    def test_nested_records_restart_with_another_chunk_size_as_a_clean_run(
        self, sqlite_engine: Engine, tmp_path: Path, first: int, then: int
    ) -> None:
        """Objects and arrays, keys in any order, lines longer than the block, a bad record:
        a run failing midway and restarted with another chunk size writes the Parquet file a
        clean run writes, each record once."""
        path = tmp_path / "nested.jsonl"
        lines = []
        for i in range(12):
            record = {
                "id": i,
                "o": {"a": i, "b": [i, i + 1]},
                "s": "x" * (300 if i % 4 == 1 else 3),
            }
            lines.append(json.dumps(dict(reversed(record.items())) if i % 2 else record))
        lines[7] = '{"id": 7, "o": {"a": "seven", "b": []}, "s": "x"}'
        path.write_text("\n".join(lines) + "\n")

        clean = tmp_path / "clean.parquet"
        done = sqlite_engine.start(
            json_job("clean", path, first, ArrowParquetWriter(str(clean)), block=200)
        )
        assert done.status is BatchStatus.COMPLETED, done.exit_status

        out = tmp_path / "out.parquet"
        job = json_job("cut", path, first, ArrowParquetWriter(str(out)), block=200, stop_at=9)
        failed = sqlite_engine.start(job)
        assert failed.status is BatchStatus.FAILED
        sqlite_engine.register(
            json_job("cut", path, then, ArrowParquetWriter(str(out)), block=200),
            replace=True,
        )
        again = sqlite_engine.restart(failed.id)
        assert again.status is BatchStatus.COMPLETED, again.exit_status
        expected = pq.read_table(clean).to_pylist()
        assert [r["id"] for r in expected] == [i for i in range(12) if i != 7]
        assert pq.read_table(out).to_pylist() == expected
        (skip,) = skips(sqlite_engine, failed) + skips(sqlite_engine, again)  # one, once
        assert skip[1].startswith(f"{path}, line 8, field 'o.a': "), skip

    def test_objects_and_arrays_reach_sql_as_json(self, engine: Engine, tmp_path: Path) -> None:
        """A struct column written by ArrowSqlWriter into a JSON column is the object read."""
        path = tmp_path / "objects.jsonl"
        records = [{"id": i, "o": {"a": i, "b": ["x", None]}, "l": [i, None]} for i in range(5)]
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
        metadata = sa.MetaData()
        table = sa.Table(
            "objects",
            metadata,
            sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
            sa.Column("o", sa.JSON),
            sa.Column("l", sa.JSON),
        )
        metadata.create_all(engine.repository.engine)
        step = StepBuilder("objects").columnar(2).reader(ArrowJsonReader(str(path), block_size=90))
        execution = run_step(engine, step.writer(ArrowSqlWriter(table)).build())
        assert execution.status is BatchStatus.COMPLETED, execution.exit_status
        with engine.repository.engine.connect() as conn:
            got = [dict(r._mapping) for r in conn.execute(sa.select(table).order_by(table.c.id))]
        assert got == records

    def test_objects_into_a_text_column_are_refused_naming_it(
        self, sqlite_engine: Engine, tmp_path: Path
    ) -> None:
        """Into a column that is not JSON the driver failed naming a parameter's index
        ("Error binding parameter 2"): the writer names the column and what to do."""
        path = tmp_path / "objects.jsonl"
        path.write_text("".join(json.dumps({"id": i, "o": {"a": i}}) + "\n" for i in range(3)))
        metadata = sa.MetaData()
        table = sa.Table("texts", metadata, sa.Column("id", sa.Integer), sa.Column("o", sa.Text))
        metadata.create_all(sqlite_engine.repository.engine)
        step = StepBuilder("texts").columnar(2).reader(ArrowJsonReader(str(path)))
        execution = run_step(sqlite_engine, step.writer(ArrowSqlWriter(table)).build())
        assert execution.status is BatchStatus.FAILED
        first = execution.exit_status.description.splitlines()[0]
        assert "column 'o' (struct<a: int64>) holds objects" in first, first
        assert "make it a JSON column" in first, first


def test_a_headerless_csv_file_with_bare_cr_line_ends_is_refused_at_line_1(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    """Records are found by their newline: with none, the whole file was one record, its bad
    value skipping every row at line 1 (or every skip numbered 1). DelimitedReader refuses
    such a file at line 1, as ArrowCsvReader with a header does; so does header=False. A CR
    quoted in a value is no line end."""
    path = tmp_path / "mac.csv"
    path.write_bytes(b"1,a,1\r2,b,x\r3,c,3\r")
    schema = {"id": pa.int64(), "name": pa.string(), "qty": pa.int64()}
    step = (
        StepBuilder("mac")
        .columnar(2)
        .reader(ArrowCsvReader(str(path), header=False, schema=schema))
    )
    execution = run_step(sqlite_engine, step.writer(Rows()).skip(ItemReadError, limit=5).build())
    assert execution.status is BatchStatus.FAILED
    assert execution.exit_status.description.splitlines()[0] == (
        f"step 'mac' FAILED: ItemReadError: {path}, line 1: lines end with a bare CR: "
        "convert the file to LF or CRLF line ends"
    )

    quoted = tmp_path / "quoted.csv"
    quoted.write_bytes(b'1,"a\rb",1\n2,c,2\n')
    out = Rows()
    step = (
        StepBuilder("quoted")
        .columnar(2)
        .reader(ArrowCsvReader(str(quoted), header=False, schema=schema))
    )
    execution = run_step(sqlite_engine, step.writer(out).build())
    assert execution.status is BatchStatus.COMPLETED, execution.exit_status
    assert [r["name"] for r in out.rows] == ["a\rb", "c"]
