"""ArrowParquetWriter: a row group appended per chunk, a restart truncating the file to the last
committed group; on an object store, parts joined by their bytes. And the footer rewriting
under it (parquet_footer.py), checked against Arrow's and polars' own readers."""

from __future__ import annotations

import datetime as dt
import io
import os
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from batchline import BatchStatus, ConfigurationError, Engine, JobBuilder, StepBuilder
from batchline.items.arrow import ArrowParquetReader, ArrowParquetWriter
from batchline.items.arrow.parquet_append import AppendedParquet
from batchline.items.arrow.parquet_footer import FooterError, as_file, shift_offsets, split_file
from batchline.testing.contract import check_writer
from tests.backends import import_extra

pa = import_extra("pyarrow", "arrow")
pq = import_extra("pyarrow.parquet", "arrow")

SCHEMA = pa.schema([("id", pa.int64()), ("name", pa.string()), ("day", pa.date32())])


def batch(start: int, rows: int) -> Any:
    return pa.RecordBatch.from_pylist(
        [
            {"id": i, "name": f"n{i}" if i % 4 else None, "day": dt.date(2024, 1, 1 + i % 28)}
            for i in range(start, start + rows)
        ],
        schema=SCHEMA,
    )


def awkward(start: int, rows: int) -> Any:
    """Types whose footers carry lists, maps, nested schemas, binary statistics, dictionaries."""
    ids = list(range(start, start + rows))
    return pa.table(
        {
            "id": pa.array(ids, pa.int64()),
            "flag": pa.array([i % 3 == 0 if i % 5 else None for i in ids]),
            "price": pa.array([Decimal(i) / 8 for i in ids], pa.decimal128(12, 3)),
            "at": pa.array(
                [dt.datetime(2024, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=i) for i in ids],
                pa.timestamp("us", tz="UTC"),
            ),
            "tags": pa.array([[f"t{i % 3}", None] if i % 2 else [] for i in ids]),
            "point": pa.array([{"x": i, "y": float(i) / 3} for i in ids]),
            "attrs": pa.array([[("k", str(i))] for i in ids], pa.map_(pa.string(), pa.string())),
            "kind": pa.array([f"kind{i % 4}" for i in ids]).dictionary_encode(),
            "blob": pa.array([bytes([i % 256]) * (i % 7) for i in ids], pa.binary()),
        }
    )


class TestFooter:
    def test_moved_row_groups_read_back_exactly(self, tmp_path: Path) -> None:
        """Files encoded on their own, their row groups joined and their footers moved: Arrow
        and polars read every row and every type back, and each group's statistics hold."""
        polars = import_extra("polars", "arrow")
        parts = [awkward(i * 300, 300) for i in range(4)]
        out = io.BytesIO()
        out.write(b"PAR1")
        merged = None
        for table in parts:
            encoded = io.BytesIO()
            pq.write_table(table, encoded, compression="zstd", row_group_size=300)
            body, footer = split_file(encoded.getvalue())
            moved = shift_offsets(footer, out.tell() - 4)
            out.write(body)
            meta = pq.read_metadata(io.BytesIO(as_file(moved)))
            merged = meta if merged is None else (merged.append_row_groups(meta) or merged)
        assert merged is not None
        footer_file = io.BytesIO()
        merged.write_metadata_file(footer_file)
        out.write(footer_file.getvalue()[4:])
        path = tmp_path / "joined.parquet"
        path.write_bytes(out.getvalue())
        expected = pa.concat_tables(parts)
        assert pq.read_table(path).equals(expected.cast(pq.read_table(path).schema))
        file = pq.ParquetFile(path)
        assert file.num_row_groups == 4
        for group in range(4):
            stats = file.metadata.row_group(group).column(0).statistics
            assert (stats.min, stats.max) == (group * 300, group * 300 + 299)
            assert file.read_row_group(group).column("id").to_pylist()[0] == group * 300
        frame = polars.read_parquet(path)
        assert frame["id"].to_list() == expected.column("id").to_pylist()
        assert frame["tags"].to_list() == expected.column("tags").to_pylist()

    def test_not_a_footer_is_named(self) -> None:
        with pytest.raises(FooterError, match="PAR1"):
            split_file(b"not parquet at all")
        encoded = io.BytesIO()
        pq.write_table(pa.table({"a": [1]}), encoded)
        _, footer = split_file(encoded.getvalue())
        with pytest.raises(FooterError, match="ends in the middle"):
            shift_offsets(footer[: len(footer) // 2], 10)
        with pytest.raises(FooterError, match="after the footer's end"):
            shift_offsets(footer + b"\x00\x00", 10)


class TestLocalFile:
    def test_contract_is_byte_exact(self, tmp_path: Path) -> None:
        """Kills and failures at every chunk (after the row group was appended, too), write
        scans, restarts: the file equals a clean run's, byte for byte."""
        out = tmp_path / "out.parquet"
        report = check_writer(
            lambda: ArrowParquetWriter(str(out)),
            [batch(i * 4, 4) for i in range(10)],
            lambda: out.read_bytes() if out.exists() else b"",
            chunk_size=3,
            expected_empty=b"",  # no schema, no rows: no file, not the last run's left in place
        )
        out.write_bytes(report.output)
        assert pq.read_table(out).to_batches()[0].num_rows == 12
        assert pq.read_table(out).column("id").to_pylist() == list(range(40))
        assert pq.ParquetFile(out).num_row_groups == 4
        assert not (tmp_path / "out.parquet.parts").exists()

    def test_a_restart_truncates_to_the_committed_row_groups(
        self, sqlite_engine: Engine, tmp_path: Path
    ) -> None:
        """A job failing in its fourth chunk leaves three row groups' bytes in the staging file;
        the restart, with another chunk size, truncates there and appends the rest."""
        source = tmp_path / "in.parquet"
        pq.write_table(pa.Table.from_batches([batch(0, 100)]), source, row_group_size=30)
        target = tmp_path / "out.parquet"
        failing = {"on": True}

        def processor(b: Any) -> Any:
            if failing["on"] and b.column(0)[0].as_py() >= 30:
                raise RuntimeError("boom in the fourth chunk")
            return b

        def job(rows: int) -> Any:
            step = (
                StepBuilder("copy")
                .columnar(rows)
                .reader(lambda se: ArrowParquetReader(str(source)))
                .processor(processor)
                .writer(lambda se: ArrowParquetWriter(str(target)))
            )
            return JobBuilder("pq_restart").step(step).build()

        first = sqlite_engine.start(job(10))
        assert first.status is BatchStatus.FAILED
        data = tmp_path / "out.parquet.parts" / "data.parquet"
        committed = data.read_bytes()  # three row groups, their footers cut
        assert not target.exists()
        failing["on"] = False
        second = sqlite_engine.start(job(25))  # the failed instance, restarted
        assert second.status is BatchStatus.COMPLETED, second.exit_status
        file = pq.ParquetFile(target)
        assert [file.metadata.row_group(g).num_rows for g in range(file.num_row_groups)] == [
            10,
            10,
            10,
            25,
            25,
            20,
        ]
        assert pq.read_table(target).column("id").to_pylist() == list(range(100))
        assert second.id != first.id
        assert target.read_bytes().startswith(committed)  # kept as they were, then appended to
        assert not data.parent.exists()

    def test_the_file_moved_into_place_but_not_recorded_is_taken_back(self, tmp_path: Path) -> None:
        """The crash window between moving the file into place and recording the step's end:
        the restart takes the file back, cuts its footer and appends after its row groups."""
        staging, target = str(tmp_path / "o.parquet.parts"), str(tmp_path / "o.parquet")
        first = AppendedParquet(staging, target, "snappy")
        first.start_new()
        for i in range(2):
            first.append(pa.Table.from_batches([batch(i * 5, 5)]))
            first.commit()
        size, groups = first.size, first.row_groups
        assert first.finish(target)
        os.remove(os.path.join(staging, "footers"))
        os.rmdir(staging)
        again = AppendedParquet(staging, target, "snappy")
        again.resume(size, groups, target)
        assert not os.path.exists(target)
        again.append(pa.Table.from_batches([batch(10, 5)]))
        again.commit()
        assert again.finish(target)
        assert pq.read_table(target).column("id").to_pylist() == list(range(15))
        assert pq.ParquetFile(target).num_row_groups == 3

    def test_a_restart_finding_less_than_committed_says_so(self, tmp_path: Path) -> None:
        staging, target = str(tmp_path / "o.parquet.parts"), str(tmp_path / "o.parquet")
        first = AppendedParquet(staging, target, "snappy")
        first.start_new()
        first.append(pa.Table.from_batches([batch(0, 5)]))
        first.commit()
        size = first.size
        first.close()
        with pytest.raises(ConfigurationError, match=f"restarting at byte {size + 10}"):
            AppendedParquet(staging, target, "snappy").resume(size + 10, 1, target)
        with pytest.raises(ConfigurationError, match="describes only 1"):
            AppendedParquet(staging, target, "snappy").resume(size, 2, target)
        os.remove(os.path.join(staging, "footers"))
        with pytest.raises(ConfigurationError, match="describes only 0"):
            AppendedParquet(staging, target, "snappy").resume(size, 1, target)

    def test_a_chunk_of_other_types_is_cast_or_named(self, tmp_path: Path) -> None:
        """A column null throughout a chunk is cast to the file's type; a column that cannot
        be cast fails that chunk, naming the column, and the committed groups stay."""
        staging, target = str(tmp_path / "o.parquet.parts"), str(tmp_path / "o.parquet")
        file = AppendedParquet(staging, target, "snappy")
        file.start_new()
        file.append(pa.table({"id": [1, 2], "name": ["a", "b"]}))
        file.commit()
        file.append(pa.table({"id": [3], "name": pa.array([None], pa.null())}))
        file.commit()
        with pytest.raises(ConfigurationError, match=r"column name \(list<item: int64>"):
            file.append(pa.table({"id": [4], "name": [[1]]}))
        with pytest.raises(ConfigurationError, match=r"columns \['id'\]"):
            file.append(pa.table({"id": [4]}))
        assert file.finish(target)
        assert pq.read_table(target).to_pylist() == [
            {"id": 1, "name": "a"},
            {"id": 2, "name": "b"},
            {"id": 3, "name": None},
        ]

    def test_an_empty_input_with_a_schema_gives_an_empty_file(
        self, sqlite_engine: Engine, tmp_path: Path
    ) -> None:
        source = tmp_path / "in.parquet"
        pq.write_table(SCHEMA.empty_table(), source)
        target = tmp_path / "out.parquet"
        step = (
            StepBuilder("copy")
            .columnar(10)
            .reader(ArrowParquetReader(str(source)))
            .writer(ArrowParquetWriter(str(target), schema=SCHEMA))
        )
        execution = sqlite_engine.start(JobBuilder("pq_empty").step(step).build())
        assert execution.status is BatchStatus.COMPLETED, execution.exit_status
        assert pq.read_table(target).schema.equals(SCHEMA)
        assert pq.read_table(target).num_rows == 0


def test_closing_a_writer_never_opened_is_harmless(tmp_path: Path) -> None:
    """A step closes its streams when another one failed to open: this one did not open."""
    writer = ArrowParquetWriter(str(tmp_path / "never.parquet"))
    writer.close()
    assert not (tmp_path / "never.parquet.parts").exists()


class TestObjectStore:
    def test_contract_on_memory_store_is_byte_exact(self) -> None:
        """memory:// cannot truncate: parts, joined by their bytes when the step completes."""
        fsspec = pytest.importorskip("fsspec")
        fs = fsspec.filesystem("memory")
        path = f"memory://bl-{uuid.uuid4().hex}/out.parquet"

        def output() -> bytes:
            with fs.open(path, "rb") as f:
                return bytes(f.read())

        report = check_writer(
            lambda: ArrowParquetWriter(path),
            [batch(i * 4, 4) for i in range(7)],
            output,
            chunk_size=2,
        )
        table = pq.read_table(io.BytesIO(report.output))
        assert table.column("id").to_pylist() == list(range(28))
        assert pq.ParquetFile(io.BytesIO(report.output)).num_row_groups == 4
        assert not fs.exists(f"{path}.parts")


class TestOlderRuns:
    def test_a_run_begun_with_ipc_parts_finishes_with_them(self, tmp_path: Path) -> None:
        """A restart of a run whose context lists Arrow IPC parts (the writer before it
        appended row groups) goes on with parts: the committed one is encoded into the file
        with the new chunk's."""
        from batchline import ExecutionContext
        from batchline.items.base import Chunk
        from batchline.model import StepExecution

        target = tmp_path / "old.parquet"
        staging = tmp_path / "old.parquet.parts"
        staging.mkdir()
        committed = pa.Table.from_batches([batch(0, 6)])
        with (staging / "000001.arrow").open("wb") as f, pa.ipc.new_file(f, SCHEMA) as ipc:
            ipc.write_table(committed)
        (staging / "000002.arrow").write_bytes(b"a part that never committed")
        context = ExecutionContext({"writer.parts": ["000001.arrow"]})
        writer = ArrowParquetWriter(str(target))
        writer.open(context)
        se = StepExecution(id=1, job_execution_id=1, step_name="s")
        writer.write([batch(6, 4)], Chunk(2, None, se))
        writer.update(context)
        se.commit_count += 1
        writer.complete()
        writer.close()
        assert pq.read_table(target).column("id").to_pylist() == list(range(10))
        assert pq.ParquetFile(target).num_row_groups == 2
        assert not staging.exists()
