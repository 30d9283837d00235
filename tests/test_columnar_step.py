"""The columnar step: row counts, processor retry and row-by-row skips, write scans by halves,
and the database writers taking record batches with awkward values (on real servers)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from batchline import BatchStatus, Chunk, ConfigurationError, Engine, JobBuilder, StepBuilder
from batchline.items.arrow import ArrowCsvReader, ArrowCsvWriter, ArrowSqlWriter
from batchline.items.mysql_load import MySqlLoadDataWriter
from batchline.items.postgres_copy import PostgresCopyWriter
from batchline.testing import run_step
from tests.backends import fresh_database, import_extra

pa = import_extra("pyarrow", "arrow")
pc = import_extra("pyarrow.compute", "arrow")

SCHEMA = pa.schema([("id", pa.int64()), ("name", pa.string()), ("qty", pa.int64())])


def write_csv(path: Path, rows: int) -> None:
    path.write_text("id,name,qty\n" + "".join(f"{i},n{i},{i % 4}\n" for i in range(rows)))


class BadIds(Exception):
    pass


class Collect:
    """A writer keeping batches; raises BadIds for any batch holding an id in ``bad``."""

    def __init__(self, bad: set[int] = frozenset()) -> None:  # type: ignore[assignment]
        self.bad = bad
        self.rows: list[dict[str, Any]] = []

    def write(self, items: Sequence[Any], chunk: Chunk) -> None:
        rows = [r for b in items for r in b.to_pylist()]
        if any(r["id"] in self.bad for r in rows):
            raise BadIds(f"ids {sorted(r['id'] for r in rows if r['id'] in self.bad)}")
        self.rows.extend(rows)


def step_of(path: Path, writer: Any, rows: int = 40, processor: Any = None) -> StepBuilder:
    step = StepBuilder("load").columnar(rows).reader(ArrowCsvReader(str(path), schema=SCHEMA))
    if processor is not None:
        step = step.processor(processor)
    return step.writer(writer)


class TestCounts:
    def test_counters_count_rows_not_batches(self, sqlite_engine: Engine, tmp_path: Path) -> None:
        """read, written, filtered count rows; commits count chunks of up to N rows."""
        write_csv(tmp_path / "in.csv", 100)
        out = Collect()
        keep = step_of(tmp_path / "in.csv", out, 30, lambda b: b.filter(pc.greater(b["qty"], 0)))
        execution = run_step(sqlite_engine, keep.build())
        (se,) = execution.step_executions
        assert (se.read_count, se.write_count, se.filter_count) == (100, 75, 25)
        assert se.commit_count == 4
        assert [r["id"] for r in out.rows] == [i for i in range(100) if i % 4]

    def test_a_processor_that_returns_more_rows_filters_none(
        self, sqlite_engine: Engine, tmp_path: Path
    ) -> None:
        """An explode (more rows out than in) writes them all and counts nothing filtered;
        filtered counts, batch by batch, only the rows a batch came back without, and a row
        skipped in the row-by-row pass is a skip, not a filtered row."""
        write_csv(tmp_path / "in.csv", 30)

        def process(batch: pa.RecordBatch) -> Any:
            if pc.any(pc.equal(batch["id"], 25)).as_py():
                raise ValueError("id 25")
            if batch["id"][0].as_py() < 10:
                return pa.Table.from_batches([batch, batch])  # every row twice
            return batch.filter(pc.greater(batch["qty"], 0))  # 1 row in 4 removed

        out = Collect()
        step = step_of(tmp_path / "in.csv", out, 10, process).skip(ValueError, limit=1).build()
        execution = run_step(sqlite_engine, step)
        (se,) = execution.step_executions
        kept = [i for i in range(10, 30) if i % 4 and i != 25]
        assert (se.read_count, se.write_count) == (30, 20 + len(kept))
        assert (se.filter_count, se.process_skip_count) == (19 - len(kept), 1)
        assert sorted(r["id"] for r in out.rows) == sorted([*range(10), *range(10), *kept])

    def test_a_row_reader_is_refused_with_a_clear_message(
        self, sqlite_engine: Engine, tmp_path: Path
    ) -> None:
        """A columnar step given a list (no read_batch) fails naming what it needs."""
        step = StepBuilder("load").columnar(10).reader([1, 2]).writer(Collect()).build()
        execution = run_step(sqlite_engine, step)
        assert execution.status is BatchStatus.FAILED
        assert "read_batch" in execution.exit_status.description

    def test_a_completion_policy_is_refused(self) -> None:
        """Chunks of a columnar step are counted in rows: no completion policy."""
        from batchline.completion import CountOrTimeCompletion

        builder = StepBuilder("s").columnar(5).reader([]).writer(Collect())
        with pytest.raises(ConfigurationError, match="columnar"):
            builder.completion_policy(CountOrTimeCompletion(5, 1)).build()


class TestFaults:
    def test_a_failing_write_is_scanned_down_to_the_bad_rows(
        self, sqlite_engine: Engine, tmp_path: Path
    ) -> None:
        """A skippable write error: every other row of the batch is written, the bad rows are
        write skips with their values."""
        write_csv(tmp_path / "in.csv", 100)
        out = Collect({7, 55})
        step = step_of(tmp_path / "in.csv", out, 40).skip(BadIds, limit=5).build()
        execution = run_step(sqlite_engine, step)
        (se,) = execution.step_executions
        assert execution.status is BatchStatus.COMPLETED
        assert (se.write_count, se.write_skip_count) == (98, 2)
        assert sorted(r["id"] for r in out.rows) == [i for i in range(100) if i not in (7, 55)]
        skipped = sqlite_engine.skipped_items(execution.id)
        assert [s.phase for s in skipped] == ["write", "write"]
        assert '"id": 7' in (skipped[0].item or "")

    def test_a_failing_write_without_skip_fails_the_step(
        self, sqlite_engine: Engine, tmp_path: Path
    ) -> None:
        """Not skippable: the step fails naming the rows of the chunk."""
        write_csv(tmp_path / "in.csv", 100)
        execution = run_step(sqlite_engine, step_of(tmp_path / "in.csv", Collect({55}), 40).build())
        assert execution.status is BatchStatus.FAILED
        assert "items 41-80" in execution.exit_status.description

    def test_a_failing_processor_is_retried_then_run_row_by_row(
        self, sqlite_engine: Engine, tmp_path: Path
    ) -> None:
        """The batch is retried; still failing and skippable, each row alone: the bad one is a
        process skip, the others pass."""
        write_csv(tmp_path / "in.csv", 50)
        calls = {"n": 0}

        def process(batch: pa.RecordBatch) -> pa.RecordBatch:
            calls["n"] += 1
            if pc.any(pc.equal(batch["id"], 13)).as_py():
                raise ValueError("id 13")
            return batch

        out = Collect()
        step = (
            step_of(tmp_path / "in.csv", out, 20, process)
            .retry(ValueError, limit=2)
            .skip(ValueError, limit=3)
            .build()
        )
        execution = run_step(sqlite_engine, step)
        (se,) = execution.step_executions
        assert (se.read_count, se.write_count, se.process_skip_count) == (50, 49, 1)
        assert [r["id"] for r in out.rows] == [i for i in range(50) if i != 13]
        assert calls["n"] == 3 + 1 + 20 + 1  # batch 1, its retry, 20 rows, batches 2 and 3

    def test_bad_rows_over_the_skip_limit_fail_the_step(
        self, sqlite_engine: Engine, tmp_path: Path
    ) -> None:
        """Rows Arrow cannot parse count against the skip limit like any read skip."""
        path = tmp_path / "in.csv"
        path.write_text("id,name,qty\n1,a,1\nx,b,2\n3,c,z\n4,d,4\n")
        step = step_of(path, Collect(), 10).skip(Exception, limit=1).build()
        execution = run_step(sqlite_engine, step)
        assert execution.status is BatchStatus.FAILED
        assert "limit" in execution.exit_status.description.lower()

    def test_a_bad_row_fails_the_step_naming_its_line_not_an_item_number(
        self, sqlite_engine: Engine, tmp_path: Path
    ) -> None:
        """Without a skip the failure names the file and line of the bad row; an item number
        would point at the batch's first row, counted before the good rows around it."""
        path = tmp_path / "in.csv"
        path.write_text("id,name,qty\n1,a,1\n2,b,2\n3,c,z\n4,d,4\n")
        execution = run_step(sqlite_engine, step_of(path, Collect(), 10).build())
        assert execution.status is BatchStatus.FAILED
        first = execution.exit_status.description.splitlines()[0]
        assert f"chunk 1: reading {path} line 4: ItemReadError" in first, first


AWKWARD = pa.table(
    {
        "id": pa.array([1, 2, 3, 4], pa.int64()),
        "name": ["plain", "", None, 'quote " comma, tab\t newline\n back\\slash NULL é'],
        "amount": pa.array(
            [Decimal("1.50"), None, Decimal("-2.25"), Decimal("0")], pa.decimal128(10, 2)
        ),
        "day": pa.array([dt.date(2024, 1, 2), None, dt.date(1999, 12, 31), dt.date(2024, 2, 29)]),
        "flag": [True, False, None, True],
    }
)


@pytest.fixture(params=["postgresql", "mariadb"])
def server_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with fresh_database(request.param, tmp_path) as url:
        if request.param == "mariadb":
            url = (
                sa.make_url(url)
                .update_query_dict({"local_infile": "1"})
                .render_as_string(hide_password=False)
            )
        yield url


class TestDatabaseWriters:
    def test_bulk_writers_take_batches_with_nulls_and_awkward_text(self, server_url: str) -> None:
        """COPY (PostgreSQL) and LOAD DATA (MariaDB) of batches: NULL stays NULL, an empty
        string stays empty, quotes, commas, tabs, newlines and backslashes survive."""
        metadata = sa.MetaData()
        table = sa.Table(
            "awkward",
            metadata,
            sa.Column("id", sa.BigInteger),
            sa.Column("name", sa.String(80)),
            sa.Column("amount", sa.Numeric(10, 2)),
            sa.Column("day", sa.Date),
            sa.Column("flag", sa.Boolean),
        )
        with Engine(server_url) as engine:
            bind = engine.repository.engine  # type: ignore[attr-defined]
            metadata.create_all(bind)
            columns = AWKWARD.column_names
            writer: Any = (
                PostgresCopyWriter("awkward", columns)
                if server_url.startswith("postgresql")
                else MySqlLoadDataWriter("awkward", columns)
            )
            step = StepBuilder("w").columnar(3).reader(_TableReader(AWKWARD)).writer(writer)
            execution = run_step(engine, step.build())
            assert execution.status is BatchStatus.COMPLETED, execution.exit_status
            with bind.connect() as conn:
                got = [tuple(r) for r in conn.execute(sa.select(table).order_by(table.c.id))]
        expected = [tuple(r.values()) for r in AWKWARD.to_pylist()]
        assert [(*r[:4], None if r[4] is None else bool(r[4])) for r in got] == expected

    def test_sqlalchemy_writer_on_any_database(self, engine: Engine) -> None:
        """ArrowSqlWriter inserts batches through the chunk's transaction on every backend."""
        metadata = sa.MetaData()
        table = sa.Table(
            "plain", metadata, sa.Column("id", sa.BigInteger), sa.Column("name", sa.String(80))
        )
        bind = engine.repository.engine  # type: ignore[attr-defined]
        metadata.create_all(bind)
        data = AWKWARD.select(["id", "name"])
        step = StepBuilder("w").columnar(3).reader(_TableReader(data)).writer(ArrowSqlWriter(table))
        assert run_step(engine, step.build()).status is BatchStatus.COMPLETED
        with bind.connect() as conn:
            got = [tuple(r) for r in conn.execute(sa.select(table).order_by(table.c.id))]
        assert got == [tuple(r.values()) for r in data.to_pylist()]


class TestCsvWriter:
    def test_restart_cuts_the_file_back_to_the_last_commit(
        self, sqlite_engine: Engine, tmp_path: Path
    ) -> None:
        """A step failing mid-way and restarted writes the file a clean run writes."""
        write_csv(tmp_path / "in.csv", 100)
        target = tmp_path / "out.csv"
        fail = {"on": True}

        def process(batch: pa.RecordBatch) -> pa.RecordBatch:
            if fail["on"] and pc.any(pc.equal(batch["id"], 65)).as_py():
                raise RuntimeError("stop here")
            return batch

        writer = ArrowCsvWriter(str(target), ["id", "name", "qty"], footer=lambda n: f"# {n}")
        job_step = step_of(tmp_path / "in.csv", writer, 30, process).build()
        job = JobBuilder("csv_out").step(job_step).build()
        sqlite_engine.register(job)
        first = sqlite_engine.start(job)
        assert first.status is BatchStatus.FAILED
        fail["on"] = False
        assert sqlite_engine.restart(first.id).status is BatchStatus.COMPLETED
        lines = target.read_text().splitlines()
        assert lines[0] == "id,name,qty"
        assert lines[1:-1] == [f'{i},"n{i}",{i % 4}' for i in range(100)]
        assert lines[-1] == "# 100"


class _TableReader:
    """A table as batches of the asked size (no restart: for writer tests)."""

    def __init__(self, table: pa.Table) -> None:
        self.table, self.at = table, 0

    def read_batch(self, rows: int) -> tuple[Any, list[Any], bool]:
        piece = self.table.slice(self.at, rows).combine_chunks().to_batches()
        self.at += rows
        return (piece[0] if piece else None), [], self.at >= self.table.num_rows


class TestFrames:
    def test_pandas_and_polars_processors_round_trip(
        self, sqlite_engine: Engine, tmp_path: Path
    ) -> None:
        """A processor asking for a pandas or polars frame gets one; its frame becomes the batch
        written, filtered rows counted."""
        from batchline.items.arrow import pandas_processor, polars_processor

        write_csv(tmp_path / "in.csv", 20)

        def with_pandas(df: Any) -> Any:
            out = df[df["qty"] > 0].copy()
            out["twice"] = out["qty"] * 2
            return out

        def with_polars(df: Any) -> Any:
            import polars as pl

            return df.filter(pl.col("qty") > 0).with_columns((pl.col("qty") * 2).alias("twice"))

        for name, processor in (
            ("pd", pandas_processor(with_pandas)),
            ("pl", polars_processor(with_polars)),
        ):
            out = Collect()
            step = (
                StepBuilder(name)
                .columnar(7)
                .reader(ArrowCsvReader(str(tmp_path / "in.csv"), schema=SCHEMA))
            )
            execution = run_step(sqlite_engine, step.processor(processor).writer(out).build())
            (se,) = execution.step_executions
            assert (se.read_count, se.write_count, se.filter_count) == (20, 15, 5), name
            assert out.rows[0] == {"id": 1, "name": "n1", "qty": 1, "twice": 2}, name


class TestBinaryCopy:
    def test_binary_copy_stores_what_csv_copy_stores(self, tmp_path: Path) -> None:
        """Every type the binary encoder knows, edge values, NULLs and a sliced batch: the rows
        stored equal those the CSV path stores."""
        big = 10**17 + 12345
        data = pa.table(
            {
                "id": pa.array([1, 2, 3, 4, 5], pa.int64()),
                "small": pa.array([-32768, 32767, None, 0, 7], pa.int16()),
                "mid": pa.array([-(2**31), 2**31 - 1, 0, None, 9], pa.int32()),
                "ratio": pa.array([0.1, -1e300, None, 3.5, 0.0], pa.float64()),
                "amount": pa.array(
                    [
                        Decimal(big) / 10000,
                        -Decimal(big) / 10000,
                        Decimal("0.0001"),
                        None,
                        Decimal("-0.5"),
                    ],
                    pa.decimal128(18, 4),
                ),
                "day": pa.array(
                    [
                        dt.date(1, 1, 1),
                        dt.date(9999, 12, 31),
                        dt.date(2000, 1, 1),
                        None,
                        dt.date(1970, 1, 1),
                    ]
                ),
                "at": pa.array(
                    [
                        dt.datetime(1999, 12, 31, 23, 59, 59, 999999),
                        None,
                        dt.datetime(2000, 1, 1),
                        dt.datetime(2030, 6, 1, 12),
                        dt.datetime(1900, 1, 1),
                    ],
                    pa.timestamp("us"),
                ),
                "name": ["", None, "é ü 漢字 🚀", "a" * 300, "tab\tnl\n"],
            }
        )
        ddl = (
            "CREATE TABLE {t} (id bigint, small smallint, mid integer, ratio double precision, "
            "amount numeric(18, 4), day date, at timestamp, name text)"
        )
        with fresh_database("postgresql", tmp_path) as url, Engine(url) as engine:
            bind = engine.repository.engine  # type: ignore[attr-defined]
            stored = {}
            for binary in (True, False):
                table = f"t_{int(binary)}"
                with bind.begin() as conn:
                    conn.execute(sa.text(ddl.format(t=table)))
                writer = PostgresCopyWriter(table, data.column_names, binary=binary)
                step = StepBuilder(table).columnar(2).reader(_TableReader(data)).writer(writer)
                execution = run_step(engine, step.build())
                assert execution.status is BatchStatus.COMPLETED, execution.exit_status
                if binary:
                    assert writer._encoders and all(writer._encoders.values())
                with bind.connect() as conn:
                    stored[binary] = conn.execute(
                        sa.text(f"SELECT * FROM {table} ORDER BY id")
                    ).all()
        assert stored[True] == stored[False]
        assert stored[True][0][4] == Decimal(big) / 10000
