from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest

from batchline import (
    BatchStatus,
    Engine,
    ExecutionContext,
    ItemReadError,
    JobBuilder,
    StepBuilder,
)
from batchline.items.parquet import ParquetReader, ParquetWriter
from batchline.testing.contract import check_reader, check_writer
from tests.backends import import_extra

pa = import_extra("pyarrow", "parquet")
pq = import_extra("pyarrow.parquet", "parquet")

SCHEMA = pa.schema([("id", pa.int64()), ("name", pa.string()), ("day", pa.date32())])
ROWS = [
    {"id": i, "name": f"n{i}" if i % 4 else None, "day": dt.date(2024, 1, 1 + i % 28)}
    for i in range(23)
]


@dataclasses.dataclass
class Row:
    id: int
    name: str | None
    day: dt.date


def write_file(path: Path, rows: list[dict[str, object]], row_group_size: int) -> Path:
    pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMA), path, row_group_size=row_group_size)
    return path


class TestParquetReader:
    def test_contract_across_row_groups_and_batches(self, tmp_path: Path) -> None:
        """Row groups of 7 read in batches of 3 pass the contract kit at every boundary."""
        path = write_file(tmp_path / "in.parquet", ROWS, 7)
        empty = write_file(tmp_path / "empty.parquet", [], 7)
        assert ParquetReader(str(path)).estimated_size() == len(ROWS)
        check_reader(
            lambda: ParquetReader(str(path), batch_size=3),
            expected=ROWS,
            chunk_size=4,
            empty=lambda: ParquetReader(str(empty)),
        )

    def test_columns_and_dataclass_mapper(self, tmp_path: Path) -> None:
        """Selected columns only; a class mapper gets the row's columns as keywords."""
        path = write_file(tmp_path / "in.parquet", ROWS[:3], 2)
        names = ParquetReader(str(path), columns=["name"])
        check_reader(lambda: names, expected=[{"name": r["name"]} for r in ROWS[:3]])
        typed = ParquetReader(str(path), mapper=Row)
        check_reader(lambda: typed, expected=[Row(**r) for r in ROWS[:3]])  # type: ignore[arg-type]

    def test_a_file_that_is_not_parquet_is_named(self, tmp_path: Path) -> None:
        """Opening a CSV as Parquet is an ItemReadError naming the file."""
        path = tmp_path / "in.parquet"
        path.write_text("id,name\n1,a\n")
        with pytest.raises(ItemReadError, match=r"in\.parquet: not a readable Parquet file"):
            ParquetReader(str(path)).open(ExecutionContext())

    def test_corrupt_row_group_is_skippable(self, tmp_path: Path) -> None:
        """A corrupt row group is an error naming it; the next read goes on in the next group,
        and a restart from the position saved after the error does too."""
        path = tmp_path / "in.parquet"
        rows = [{"id": i, "name": f"value-{i}" * 10, "day": dt.date(2024, 1, 1)} for i in range(40)]
        pq.write_table(
            pa.Table.from_pylist(rows, schema=SCHEMA), path, row_group_size=20, compression="snappy"
        )
        column = pq.ParquetFile(path).metadata.row_group(0).column(1)
        data = bytearray(path.read_bytes())
        for i in range(column.data_page_offset, column.data_page_offset + 64):
            data[i] ^= 0x5A
        path.write_bytes(bytes(data))
        reader = ParquetReader(str(path))
        reader.open(ExecutionContext())
        with pytest.raises(ItemReadError, match=r"in\.parquet: row group 0 is unreadable"):
            reader.read()
        saved = ExecutionContext()
        reader.update(saved)
        assert reader.read() == rows[20]
        reader.close()
        again = ParquetReader(str(path))
        again.open(saved)
        assert list(iter(again.read, None)) == rows[20:]
        again.close()

    def test_mapper_none_or_refusal_is_a_read_error_with_the_row(self, tmp_path: Path) -> None:
        """A mapper returning None, or refusing a row with ValueError, fails that row only."""
        path = write_file(tmp_path / "in.parquet", ROWS[:4], 2)

        def mapper(row: dict[str, object]) -> object:
            if row["id"] == 1:
                return None
            if row["id"] == 2:
                raise ValueError("id 2 refused")
            return row["id"]

        reader = ParquetReader(str(path), mapper=mapper)
        reader.open(ExecutionContext())
        assert reader.read() == 0
        with pytest.raises(ItemReadError, match=r"row group 0, row 2: the mapper returned None"):
            reader.read()
        with pytest.raises(ItemReadError, match=r"row group 1, row 1: refused by") as caught:
            reader.read()
        assert caught.value.raw is not None and '"id": 2' in caught.value.raw
        assert [reader.read(), reader.read()] == [3, None]
        reader.close()


class TestParquetWriter:
    def test_contract_is_byte_exact(self, tmp_path: Path) -> None:
        """Restarts after kills or failures at every chunk give a file identical to a clean one."""
        out = tmp_path / "out.parquet"
        report = check_writer(
            lambda: ParquetWriter(str(out), schema=SCHEMA),
            [Row(**r) for r in ROWS[:10]],  # type: ignore[arg-type]
            out.read_bytes,
            chunk_size=3,
        )
        out.write_bytes(report.output)
        table = pq.read_table(out)
        assert table.to_pylist() == ROWS[:10]
        assert pq.ParquetFile(out).num_row_groups == 4
        assert not (tmp_path / "out.parquet.parts").exists()

    def test_job_parquet_to_parquet(self, sqlite_engine: Engine, tmp_path: Path) -> None:
        """A chunk job copies a Parquet file through reader and writer."""
        source = write_file(tmp_path / "in.parquet", ROWS, 5)
        target = tmp_path / "copy.parquet"
        step = (
            StepBuilder("copy")
            .chunk(6)
            .reader(lambda se: ParquetReader(str(source), batch_size=4))
            .writer(ParquetWriter(str(target)))
        )
        execution = sqlite_engine.start(JobBuilder("pq").step(step).build())
        assert execution.status is BatchStatus.COMPLETED, execution.exit_status
        assert pq.read_table(target).to_pylist() == ROWS
