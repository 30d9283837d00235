"""The columnar step with processors written the awkward way: pandas round trips that change
types or drop columns, results of the wrong kind, and write skips with a restart on real
databases (pandas processor, savepoint scan, no row lost or written twice)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from batchline import BatchStatus, Chunk, Engine, JobBuilder, StepBuilder
from batchline.items.arrow import (
    ArrowCsvReader,
    ArrowParquetReader,
    ArrowParquetWriter,
    ArrowSqlWriter,
    pandas_processor,
)
from batchline.testing import run_step
from tests.backends import import_extra

pa = import_extra("pyarrow", "arrow")
pq = import_extra("pyarrow.parquet", "arrow")
pd = import_extra("pandas", "pandas")


class Collect:
    """A writer keeping the batches it is given."""

    def __init__(self) -> None:
        self.batches: list[Any] = []

    def write(self, items: Sequence[Any], chunk: Chunk) -> None:
        self.batches.extend(items)

    def table(self) -> Any:
        return pa.Table.from_batches(self.batches)


def parquet(path: Path, table: Any, group: int) -> str:
    pq.write_table(table, path, row_group_size=group)
    return str(path)


def run(
    engine: Engine, source: str, processor: Any, writer: Any, rows: int = 3, name: str = "s"
) -> Any:
    step = StepBuilder(name).columnar(rows).reader(ArrowParquetReader(source))
    return run_step(engine, step.processor(processor).writer(writer).build())


AMOUNTS = pa.table(
    {
        "id": pa.array(range(6), pa.int64()),
        "qty": pa.array([None, 1, 2, 3, None, 5], pa.int64()),
        "amount": pa.array(
            [Decimal("1.50"), Decimal("2.50"), None, Decimal("12345.50"), Decimal("0.01"), None],
            pa.decimal128(10, 2),
        ),
    }
)


class TestPandasRoundTrip:
    def test_integers_with_nulls_come_back_as_integers(
        self, sqlite_engine: Engine, tmp_path: Path
    ) -> None:
        """numpy has no null integer: to_pandas makes floats of such a column, and 1 was
        written back as 1.0. Left as they came (filtered or not), they are integers again;
        values the processor computed stay what pandas made of them."""
        source = parquet(tmp_path / "in.parquet", AMOUNTS, 3)
        cases = {
            "same": (lambda f: f, pa.int64(), [None, 1, 2, 3, None, 5]),
            "filtered": (lambda f: f[f["id"] != 4], pa.int64(), [None, 1, 2, 3, 5]),
            "halved": (
                lambda f: f.assign(qty=f["qty"] / 2),
                pa.float64(),
                [None, 0.5, 1, 1.5, None, 2.5],
            ),
        }
        for name, (fn, wanted, values) in cases.items():
            out = Collect()
            execution = run(sqlite_engine, source, pandas_processor(fn), out, name=name)
            assert execution.status is BatchStatus.COMPLETED, execution.exit_status.description
            assert out.table().schema.field("qty").type == wanted, name
            assert out.table()["qty"].to_pylist() == values, name

    def test_integers_beyond_a_floats_precision_come_back_exact(
        self, sqlite_engine: Engine, tmp_path: Path
    ) -> None:
        """pandas holds them as floats, which round beyond 2**53: the values written are the
        batch's own at the rows the processor kept (filtered, sorted), not the floats cast
        back; a groupby's result, whose labels are not rows, keeps pandas' floats."""
        big = 2**53 + 1
        ids = pa.table(
            {
                "k": pa.array([1, 2, 1, 2], pa.int64()),
                "id": pa.array([big, None, big + 2, big + 4], pa.int64()),
            }
        )
        source = parquet(tmp_path / "big.parquet", ids, 4)
        cases = {
            "filtered": (lambda f: f[f["k"] == 1], [big, big + 2]),
            "sorted": (lambda f: f.sort_values("k", kind="stable"), [big, big + 2, None, big + 4]),
        }
        for name, (fn, values) in cases.items():
            out = Collect()
            execution = run(sqlite_engine, source, pandas_processor(fn), out, rows=4, name=name)
            assert execution.status is BatchStatus.COMPLETED, execution.exit_status.description
            assert out.table().schema.field("id").type == pa.int64(), name
            assert out.table()["id"].to_pylist() == values, name
        out = Collect()
        summed = pandas_processor(lambda f: f.groupby("k")[["id"]].max())
        execution = run(sqlite_engine, source, summed, out, rows=4, name="grouped")
        assert execution.status is BatchStatus.COMPLETED, execution.exit_status.description
        assert out.table()["k"].to_pylist() == [1, 2]
        assert out.table().schema.field("id").type == pa.float64()

    def test_decimals_keep_their_type_from_chunk_to_chunk(
        self, sqlite_engine: Engine, tmp_path: Path
    ) -> None:
        """pandas holds decimals as objects and Arrow infers the precision from each batch's
        values: (3, 2), then (7, 2), which the Parquet file of the first chunk cannot take."""
        source = parquet(tmp_path / "in.parquet", AMOUNTS, 3)
        target = tmp_path / "out.parquet"
        processor = pandas_processor(lambda f: f)
        execution = run(sqlite_engine, source, processor, ArrowParquetWriter(str(target)))
        assert execution.status is BatchStatus.COMPLETED, execution.exit_status.description
        written = pq.read_table(target)
        assert written.schema.field("amount").type == pa.decimal128(10, 2)
        assert written["amount"].to_pylist() == AMOUNTS["amount"].to_pylist()

    def test_index_keys_are_columns_and_a_filters_index_is_dropped(
        self, sqlite_engine: Engine, tmp_path: Path
    ) -> None:
        """A groupby's keys and a set_index column live in the index: they are written as
        columns, not lost. The row numbers a filter leaves are no column at all."""
        source = parquet(tmp_path / "in.parquet", AMOUNTS, 6)
        cases = {
            "groupby": (lambda f: f.groupby(f["id"] % 2)[["qty"]].sum(), ["id", "qty"]),
            "set_index": (lambda f: f.set_index("id")[["qty"]], ["id", "qty"]),
            "filter": (lambda f: f[f["id"] > 2][["id"]], ["id"]),
        }
        for name, (fn, columns) in cases.items():
            out = Collect()
            execution = run(sqlite_engine, source, pandas_processor(fn), out, 6, name)
            assert execution.status is BatchStatus.COMPLETED, name
            assert out.table().column_names == columns, name
        assert out.table()["id"].to_pylist() == [3, 4, 5]

    def test_a_column_of_mixed_types_fails_naming_the_chunk_rows_and_column(
        self, sqlite_engine: Engine, tmp_path: Path
    ) -> None:
        """Arrow refuses an object column holding ints and strings; the failure says which
        chunk, which rows, which column, on its first line."""
        source = parquet(tmp_path / "in.parquet", AMOUNTS, 3)

        def mixed(frame: Any) -> Any:
            frame["code"] = ["a" if i % 2 else i for i in range(len(frame))]
            return frame

        execution = run(sqlite_engine, source, pandas_processor(mixed), Collect())
        assert execution.status is BatchStatus.FAILED
        first = execution.exit_status.description.splitlines()[0]
        assert "chunk 1: processing rows 1-3" in first, first
        assert "column code" in first, first


class TestResults:
    def test_a_result_of_the_wrong_kind_names_the_chunk_and_rows(
        self, sqlite_engine: Engine, tmp_path: Path
    ) -> None:
        """A processor returning a dict (or a Series, a LazyFrame) fails the step naming what
        it returned and the chunk and rows it was given."""
        source = parquet(tmp_path / "in.parquet", AMOUNTS, 3)

        def as_dict(batch: Any) -> Any:
            return batch if batch["id"][0].as_py() == 0 else batch.to_pydict()

        execution = run(sqlite_engine, source, as_dict, Collect())
        assert execution.status is BatchStatus.FAILED
        first = execution.exit_status.description.splitlines()[0]
        assert "chunk 2: processing rows 4-6" in first, first
        assert "returned a dict" in first, first
        (se,) = execution.step_executions
        assert (se.read_count, se.write_count) == (3, 3)


class _Pieces:
    """A reader of the user's handing out the batches it was given, empty ones included."""

    def __init__(self, pieces: list[list[int]]) -> None:
        self.pieces = pieces

    def read_batch(self, rows: int) -> tuple[Any, list[Any], bool]:
        values = self.pieces.pop(0)
        batch = pa.RecordBatch.from_arrays([pa.array(values, pa.int64())], ["n"])
        return batch, [], not self.pieces


class TestReaders:
    def test_an_empty_batch_that_is_not_the_end_loses_no_row(self, sqlite_engine: Engine) -> None:
        """An empty chunk ends a step: a reader's empty batch said not to be its end was taken
        for one, and the rows after it were never read (COMPLETED, rows lost)."""
        for read_ahead in (False, True):
            out = Collect()
            reader = _Pieces([[1], [], [], [2, 3], [], [4]])
            step = StepBuilder(f"s{read_ahead}").columnar(2).reader(reader).writer(out)
            execution = run_step(sqlite_engine, step.read_ahead(read_ahead).build())
            assert execution.status is BatchStatus.COMPLETED, execution.exit_status.description
            assert out.table()["n"].to_pylist() == [1, 2, 3, 4], read_ahead
            assert execution.step_executions[0].read_count == 4


class TestSkipsAndRestartOnDatabases:
    def test_write_skips_and_a_restart_neither_lose_nor_double_rows(
        self, engine: Engine, tmp_path: Path
    ) -> None:
        """A pandas processor into a table whose CHECK refuses two ids: the chunk is scanned in
        savepoints, those rows are write skips naming them; the step fails at id 65 and the
        restart writes exactly the rest. Counts add up: read = written + filtered + skipped."""
        source = tmp_path / "in.csv"
        source.write_text(
            "id,qty\n" + "".join(f"{i},{'' if i % 5 == 0 else i % 4}\n" for i in range(100))
        )
        metadata = sa.MetaData()
        table = sa.Table(
            "edges_out",
            metadata,
            sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
            sa.Column("qty", sa.BigInteger),
            sa.CheckConstraint("id <> 7 AND id <> 33", name="edges_bad_ids"),
        )
        bind = engine.repository.engine  # type: ignore[attr-defined]
        metadata.create_all(bind)
        fail = {"on": True}

        def keep(frame: Any) -> Any:
            if fail["on"] and (frame["id"] == 65).any():
                raise RuntimeError("stop at 65")
            return frame[frame["qty"] != 0]  # NaN != 0: a null qty is kept

        schema = pa.schema([("id", pa.int64()), ("qty", pa.int64())])
        step = (
            StepBuilder("load")
            .columnar(20)
            .reader(ArrowCsvReader(str(source), schema=schema))
            .processor(pandas_processor(keep))
            .writer(ArrowSqlWriter(table))
            # a failed CHECK is an IntegrityError on every backend (PyMySQL: OperationalError)
            .skip(sa.exc.IntegrityError, limit=5)
        )
        job = JobBuilder("edges").step(step).build()
        engine.register(job)
        first = engine.start(job)
        assert first.status is BatchStatus.FAILED
        fail["on"] = False
        second = engine.restart(first.id)
        assert second.status is BatchStatus.COMPLETED, second.exit_status.description

        wanted = [i for i in range(100) if (i % 4 or i % 5 == 0) and i not in (7, 33)]
        with bind.connect() as conn:
            rows = conn.execute(sa.select(table.c.id, table.c.qty).order_by(table.c.id)).all()
        assert [tuple(r) for r in rows] == [(i, None if i % 5 == 0 else i % 4) for i in wanted]
        steps = [e.step_executions[0] for e in (first, second)]
        read, written = sum(s.read_count for s in steps), sum(s.write_count for s in steps)
        filtered = sum(s.filter_count for s in steps)
        skipped = sum(s.write_skip_count for s in steps)
        assert (read, written, filtered, skipped) == (100, len(wanted), 100 - len(wanted) - 2, 2)
        skips = engine.skipped_items(first.id)
        assert sorted(s.item or "" for s in skips) == [
            '{"id": 33, "qty": 1}',
            '{"id": 7, "qty": 3}',
        ]
        assert all("chunk" in (s.position or "") for s in skips)
