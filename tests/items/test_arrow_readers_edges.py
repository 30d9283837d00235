"""The columnar readers on awkward files, each through a real job on a SQLite repository:
restarts with another batch size, files pandas users meet (BOM, CRLF, no trailing newline,
empty, header only, wide headers, bare CR), bad rows, and Parquet files that do not match."""

from __future__ import annotations

import gzip
import itertools
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from batchline import BatchStatus, Chunk, Engine, ItemReadError, JobBuilder, StepBuilder
from batchline.model import JobExecution, StepExecution
from batchline.testing import temporary_engine
from tests.backends import import_extra

pa = import_extra("pyarrow", "arrow")
pc = import_extra("pyarrow.compute", "arrow")
pq = import_extra("pyarrow.parquet", "arrow")

from batchline.items.arrow import (  # noqa: E402
    ArrowCsvReader,
    ArrowJsonReader,
    ArrowParquetReader,
)

SCHEMA = {"id": pa.int64(), "name": pa.string(), "qty": pa.int64()}
_names = itertools.count()


class Rows:
    """A writer keeping the rows of the batches it is given."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def write(self, items: Sequence[Any], chunk: Chunk) -> None:
        for batch in items:
            self.rows.extend(batch.to_pylist())


class Job:
    """A one-step columnar job; ``stop_at`` fails the first run on the batch holding that id,
    and ``restart(rows)`` resumes it with another batch size."""

    def __init__(self, engine: Engine, reader: Any, *, skips: int | None = 10) -> None:
        self.engine, self.reader, self.skips = engine, reader, skips
        self.out = Rows()
        self.stop_at: int | None = None
        self.name = f"edges_{next(_names)}"

    def _job(self, rows: int) -> Any:
        def process(batch: Any) -> Any:
            if self.stop_at is not None and pc.any(pc.equal(batch["id"], self.stop_at)).as_py():
                raise RuntimeError(f"stopped at id {self.stop_at}")
            return batch

        step = StepBuilder("load").columnar(rows).reader(self.reader).processor(process)
        step = step.writer(self.out)
        if self.skips is not None:
            step = step.skip(ItemReadError, limit=self.skips)
        return JobBuilder(self.name).step(step.build()).build()

    def start(self, rows: int) -> JobExecution:
        job = self.engine.register(self._job(rows), replace=True)
        return self.engine.start(job)

    def restart(self, failed: JobExecution, rows: int) -> JobExecution:
        assert failed.status is BatchStatus.FAILED, failed.exit_status
        self.stop_at = None
        self.engine.register(self._job(rows), replace=True)
        return self.engine.restart(failed.id)


def step_of(execution: JobExecution) -> StepExecution:
    (se,) = execution.step_executions
    return se


def first_line(execution: JobExecution) -> str:
    return execution.exit_status.description.splitlines()[0]


@pytest.fixture
def engine() -> Iterator[Engine]:
    with temporary_engine() as engine:
        yield engine


class TestRestart:
    # the run stops in the chunk after the one ending just before the bad row, in its block
    @pytest.mark.parametrize(
        ("kind", "block", "first", "stop"), [("csv", 40, 4, 10), ("jsonl", 140, 3, 8)]
    )
    @pytest.mark.parametrize("then", [2, 9])
    def test_a_restart_keeps_the_types_inferred_from_the_first_block(
        self,
        engine: Engine,
        tmp_path: Path,
        kind: str,
        block: int,
        first: int,
        stop: int,
        then: int,
    ) -> None:
        """Without a schema the types come from the first block: a restart resuming in a
        later block parses it with those types, not with its own (where a bad row of the
        first run would parse, and the rows counted as taken would be others)."""
        lines = [(i, f"n{i}", "1.5" if i == 7 else str(i)) for i in range(1, 21)]
        path = tmp_path / f"in.{kind}"
        if kind == "csv":
            path.write_text("id,name,qty\n" + "".join(f"{i},{n},{q}\n" for i, n, q in lines))

            def reader(se: Any) -> Any:
                return ArrowCsvReader(str(path), block_size=block)
        else:
            path.write_text(
                "".join(f'{{"id": {i}, "name": "{n}", "qty": {q}}}\n' for i, n, q in lines)
            )

            def reader(se: Any) -> Any:
                return ArrowJsonReader(str(path), block_size=block)

        whole = Job(engine, reader)
        clean = whole.start(first)
        assert step_of(clean).read_skip_count == 1  # 1.5 is not an int64
        job = Job(engine, reader)
        job.stop_at = stop
        again = job.restart(job.start(first), then)
        assert again.status is BatchStatus.COMPLETED, again.exit_status
        assert job.out.rows == whole.out.rows
        assert [r["id"] for r in job.out.rows] == [i for i in range(1, 21) if i != 7]
        assert {type(r["qty"]) for r in job.out.rows} == {int}

    @pytest.mark.parametrize(("first", "then"), [(3, 1), (3, 7), (8, 2)])
    def test_bad_rows_at_edges_of_chunks_and_blocks_survive_a_restart(
        self, engine: Engine, tmp_path: Path, first: int, then: int
    ) -> None:
        """A bad value at the first and the last row, rows with too few and too many fields
        and a bad date, across small blocks: each is skipped once, with its line and raw text,
        and every good row is written once, whatever the batch sizes before and after."""
        schema = {**SCHEMA, "day": pa.date32()}
        rows = [f"{i},n{i},{i},2024-01-{i:02d}" for i in range(1, 21)]
        bad = {
            1: "1,n1,abc,2024-01-01",
            6: "6,n6",
            7: "7,n7,7,2024-01-07,x",
            12: "12,n12,12,2024-02-30",
            20: "20,n20,20,soon",
        }
        for i, text in bad.items():
            rows[i - 1] = text
        path = tmp_path / "in.csv"
        path.write_bytes(("id,name,qty,day\r\n" + "\r\n".join(rows)).encode())  # CRLF, no last EOL
        job = Job(engine, lambda se: ArrowCsvReader(str(path), schema=schema, block_size=45))
        job.stop_at = 13
        failed = job.start(first)
        again = job.restart(failed, then)
        assert again.status is BatchStatus.COMPLETED, again.exit_status
        assert [r["id"] for r in job.out.rows] == [i for i in range(1, 21) if i not in bad]
        counts = [(step_of(e).read_count, step_of(e).read_skip_count) for e in (failed, again)]
        assert sum(c[0] for c in counts) == 15 and sum(c[1] for c in counts) == len(bad)
        skipped = [s for e in (failed, again) for s in engine.skipped_items(e.id)]
        assert [(s.position, s.item) for s in skipped] == [
            (f"{path} line {i + 1}", bad[i]) for i in sorted(bad)
        ]


@pytest.mark.parametrize("kind", ["csv", "jsonl"])
def test_a_column_empty_in_the_first_block_keeps_its_later_values(
    engine: Engine, tmp_path: Path, kind: str
) -> None:
    """Inferred from an all-empty first block, a column is Arrow's null type, which refused
    every later value (each a read skip); it is read as text from the first block on (CSV's
    empty fields then '' as with a string schema), and a restart keeps it so."""
    if kind == "csv":
        lines = ["id,note", *(f"{i}," for i in range(1, 31)), *(f"{i},n{i}" for i in range(31, 41))]
    else:
        notes = ["null"] * 30 + [f'"n{i}"' for i in range(31, 41)]
        lines = [f'{{"id": {i}, "note": {note}}}' for i, note in enumerate(notes, 1)]
    path = tmp_path / f"in.{kind}"
    path.write_text("\n".join(lines) + "\n")
    make = ArrowCsvReader if kind == "csv" else ArrowJsonReader
    job = Job(engine, lambda se: make(str(path), block_size=64), skips=None)
    job.stop_at = 35
    execution = job.restart(job.start(6), 4)
    assert execution.status is BatchStatus.COMPLETED, execution.exit_status
    empty = "" if kind == "csv" else None  # CSV text as with a string schema; JSON's null
    assert [r["note"] for r in job.out.rows] == [empty] * 30 + [f"n{i}" for i in range(31, 41)]
    assert [r["id"] for r in job.out.rows] == list(range(1, 41))


class TestCsvFiles:
    @pytest.mark.parametrize(
        "data",
        [b"", b"id,name,qty", b"id,name,qty\n", b"\xef\xbb\xbfid,name,qty\r\n"],
        ids=["empty", "header-no-newline", "header", "bom-crlf-header"],
    )
    def test_an_empty_or_header_only_file_has_no_rows(
        self, engine: Engine, tmp_path: Path, data: bytes
    ) -> None:
        """As for the row readers: nothing to read, the step completes (Arrow itself refuses a
        0-byte file and a header without its newline)."""
        path = tmp_path / "in.csv"
        path.write_bytes(data)
        for schema in (SCHEMA, None):
            job = Job(engine, lambda se, s=schema: ArrowCsvReader(str(path), schema=s), skips=None)
            execution = job.start(5)
            assert execution.status is BatchStatus.COMPLETED, execution.exit_status
            assert (step_of(execution).read_count, job.out.rows) == (0, [])

    def test_bom_quoted_newlines_and_no_trailing_newline(
        self, engine: Engine, tmp_path: Path
    ) -> None:
        """The BOM is not part of the first column's name; quoted delimiters, quotes and
        newlines stay in the value; the last row needs no newline."""
        path = tmp_path / "in.csv"
        path.write_bytes(b'\xef\xbb\xbfid,name,qty\n1,"a,\nb",1\n2,"say ""hi""",2\n3,c,3')
        reader = ArrowCsvReader(str(path), schema=SCHEMA, newlines_in_values=True, block_size=9)
        job = Job(engine, reader, skips=None)
        assert job.start(2).status is BatchStatus.COMPLETED
        assert [r["name"] for r in job.out.rows] == ["a,\nb", 'say "hi"', "c"]

    def test_a_header_longer_than_the_first_read(self, engine: Engine, tmp_path: Path) -> None:
        """A wide file (3,000 columns, a 90 KB header): the header is read to its end, not cut
        at 64 KiB with its rest taken for a row."""
        names = [f"a_rather_long_column_name_{i:05d}" for i in range(3000)]
        path = tmp_path / "wide.csv"
        body = "".join(",".join(str(r * 10_000 + c) for c in range(3000)) + "\n" for r in range(3))
        path.write_text(",".join(names) + "\n" + body)
        schema = {names[0]: pa.int64(), names[-1]: pa.int64()}
        job = Job(engine, lambda se: ArrowCsvReader(str(path), schema=schema), skips=None)
        execution = job.start(2)
        assert execution.status is BatchStatus.COMPLETED, execution.exit_status
        assert [r[names[-1]] for r in job.out.rows] == [2999, 12999, 22999]

    def test_bare_cr_line_ends_fail_with_a_clear_error(
        self, engine: Engine, tmp_path: Path
    ) -> None:
        """Old Mac line ends: the reader finds records by their newline and would take the
        whole file for its header, reading nothing; it refuses the file instead."""
        path = tmp_path / "mac.csv"
        path.write_bytes(b"id,name,qty\r1,a,1\r2,b,2\r")
        execution = Job(engine, lambda se: ArrowCsvReader(str(path), schema=SCHEMA)).start(5)
        assert execution.status is BatchStatus.FAILED
        assert first_line(execution) == (
            f"step 'load' FAILED: ItemReadError: {path}, line 1: lines end with a bare CR: "
            "convert the file to LF or CRLF line ends"
        )

    def test_a_header_that_is_not_utf8_fails_naming_the_file(
        self, engine: Engine, tmp_path: Path
    ) -> None:
        """A latin-1 header: the file and line 1 in the error, not a bare UnicodeDecodeError."""
        path = tmp_path / "latin1.csv"
        path.write_bytes(b"id,caf\xe9\n1,2\n")
        execution = Job(engine, lambda se: ArrowCsvReader(str(path))).start(5)
        assert execution.status is BatchStatus.FAILED
        assert first_line(execution).startswith(
            f"step 'load' FAILED: ItemReadError: {path}, line 1: cannot read the header: "
            "'utf-8' codec can't decode byte 0xe9"
        )

    def test_a_compressed_file_is_refused_whatever_the_case_of_its_extension(
        self, engine: Engine, tmp_path: Path
    ) -> None:
        """``IN.CSV.GZ`` is gzip as ``in.csv.gz`` is: refused, not parsed as text."""
        path = tmp_path / "IN.CSV.GZ"
        path.write_bytes(gzip.compress(b"id,name,qty\n1,a,1\n"))
        execution = Job(engine, lambda se: ArrowCsvReader(str(path))).start(5)
        assert execution.status is BatchStatus.FAILED
        assert "which a compressed file does not have" in first_line(execution)

    @pytest.mark.parametrize("columns", [None, ["id", "qty"]])
    def test_columns_the_header_lacks_fail_naming_them(
        self, engine: Engine, tmp_path: Path, columns: list[str] | None
    ) -> None:
        """A schema or ``columns`` naming a column the header does not have: one error naming
        the file, the header line and the column, not an Arrow KeyError without the file."""
        path = tmp_path / "in.csv"
        path.write_text("id,name\n1,a\n2,b\n")
        reader = ArrowCsvReader(str(path), schema=SCHEMA, columns=columns)
        execution = Job(engine, reader).start(5)
        assert execution.status is BatchStatus.FAILED
        assert first_line(execution) == (
            f"step 'load' FAILED: ItemReadError: {path}, line 1: no column 'qty' in the header "
            "(id, name)"
        )

    @pytest.mark.parametrize("columns", [None, ["qty", "id"]])
    def test_a_bad_value_names_its_field_as_the_row_readers_do(
        self, engine: Engine, tmp_path: Path, columns: list[str] | None
    ) -> None:
        """Arrow numbers the file's columns ("In CSV column #2"); the skip names the field,
        also when the columns read are fewer and in another order."""
        path = tmp_path / "in.csv"
        path.write_text("id,name,qty\n1,a,10\n2,b,x\nz,c,4\n")
        reader = ArrowCsvReader(str(path), schema=SCHEMA, columns=columns)
        execution = Job(engine, reader).start(10)
        assert execution.status is BatchStatus.COMPLETED, execution.exit_status
        found = [(s.position, s.error_message) for s in engine.skipped_items(execution.id)]
        assert [position for position, _ in found] == [f"{path} line 3", f"{path} line 4"]
        assert [message.split(": ", 1)[0] for _, message in found] == [
            f"{path}, line 3, field 'qty'",
            f"{path}, line 4, field 'id'",
        ]


class TestJsonLines:
    @pytest.mark.parametrize("schema", [{"id": pa.int64(), "name": pa.string()}, None])
    def test_bytes_that_are_not_utf8_are_bad_records(
        self, engine: Engine, tmp_path: Path, schema: Any
    ) -> None:
        """Arrow's JSON reader takes any bytes into a string column (its CSV reader does not):
        a latin-1 value, or key where the fields are inferred, is a read skip with its line and
        text, and the writer gets valid strings only (it failed on the batch before)."""
        path = tmp_path / "in.jsonl"
        lines = [b'{"id": 1, "name": "a"}', b'{"id": 2, "name": "caf\xe9"}', b'{"id": 3}']
        path.write_bytes(b"\n".join(lines) + b"\n")
        execution = Job(engine, lambda se: ArrowJsonReader(str(path), schema=schema)).start(2)
        assert execution.status is BatchStatus.COMPLETED, execution.exit_status
        (skipped,) = engine.skipped_items(execution.id)
        assert (skipped.position, skipped.item) == (
            f"{path} line 2",
            '{"id": 2, "name": "caf\ufffd"}',
        )
        if schema is not None:
            return  # a key not in the schema is dropped unread
        path.write_bytes(b'{"caf\xe9": 1}\n{"id": 2}\n')
        job = Job(engine, lambda se: ArrowJsonReader(str(path)))
        execution = job.start(2)
        assert execution.status is BatchStatus.COMPLETED, execution.exit_status
        assert ([s.position for s in engine.skipped_items(execution.id)], job.out.rows) == (
            [f"{path} line 1"],
            [{"id": 2}],
        )


class TestParquet:
    def test_columns_the_file_lacks_fail_naming_them(self, engine: Engine, tmp_path: Path) -> None:
        """Arrow drops an unknown column silently (and with none known left, the reader broke
        on an empty batch list): the reader names it instead."""
        path = tmp_path / "in.parquet"
        pq.write_table(pa.table({"id": [1, 2], "s": [{"a": 1}, {"a": 2}]}), path)
        for columns, rows in ((["id", "s.a"], [{"id": 1, "s": {"a": 1}}]), (["id", "nope"], None)):
            job = Job(engine, lambda se, c=columns: ArrowParquetReader(str(path), columns=c))
            execution = job.start(1)
            if rows is not None:
                assert job.out.rows[:1] == rows
                continue
            assert execution.status is BatchStatus.FAILED
            assert first_line(execution) == (
                f"step 'load' FAILED: ItemReadError: {path}: no column 'nope' in the file (id, s)"
            )

    @pytest.mark.parametrize("rows", [4, 10, 30])
    def test_an_unreadable_row_group_loses_no_other_rows(
        self, engine: Engine, tmp_path: Path, rows: int
    ) -> None:
        """The rows taken from the groups before it in the same batch are read, then the bad
        group is one read skip, then the next group follows."""
        path = tmp_path / "in.parquet"
        pq.write_table(pa.table({"id": list(range(1, 31))}), path, row_group_size=10)
        column = pq.ParquetFile(path).metadata.row_group(1).column(0)
        start = column.dictionary_page_offset or column.data_page_offset
        data = bytearray(path.read_bytes())
        data[start : start + column.total_compressed_size] = b"\xff" * column.total_compressed_size
        path.write_bytes(bytes(data))
        job = Job(engine, lambda se: ArrowParquetReader(str(path)))
        execution = job.start(rows)
        assert execution.status is BatchStatus.COMPLETED, execution.exit_status
        assert [r["id"] for r in job.out.rows] == [*range(1, 11), *range(21, 31)]
        assert (step_of(execution).read_count, step_of(execution).read_skip_count) == (20, 1)

    def test_zero_and_many_tiny_row_groups_restart_with_other_sizes(
        self, engine: Engine, tmp_path: Path
    ) -> None:
        """No row group at all reads nothing; 18 groups of up to 3 rows (one of them empty)
        restarted with a smaller and a larger batch read each row once."""
        table = pa.table({"id": list(range(1, 51))})
        empty = tmp_path / "none.parquet"
        pq.ParquetWriter(empty, table.schema).close()
        execution = Job(engine, lambda se: ArrowParquetReader(str(empty))).start(4)
        assert (execution.status, step_of(execution).read_count) == (BatchStatus.COMPLETED, 0)
        tiny = tmp_path / "tiny.parquet"
        with pq.ParquetWriter(tiny, table.schema) as writer:
            writer.write_table(table.slice(0, 20), row_group_size=3)
            writer.write_table(table.slice(20, 0))
            writer.write_table(table.slice(20), row_group_size=3)
        for first, then in ((4, 1), (4, 11)):
            job = Job(engine, lambda se: ArrowParquetReader(str(tiny)))
            job.stop_at = 22
            again = job.restart(job.start(first), then)
            assert again.status is BatchStatus.COMPLETED, again.exit_status
            assert [r["id"] for r in job.out.rows] == list(range(1, 51))
