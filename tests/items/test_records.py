from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from batchline import BatchStatus, Engine, ExecutionContext, ItemReadError, JobBuilder, StepBuilder
from batchline.items.files.records import CsvRecordReader
from batchline.items.postgres_copy import PostgresCopyWriter
from batchline.testing.contract import check_reader, check_writer
from batchline.transaction import SqlTransactionManager
from tests.backends import fresh_database, import_extra

RECORDS = [b"1,plain,x\r\n", b'2,"with ""quotes"", and comma",y\r\n', b'3,"multi\nline",z\r\n']
DATA = b"id,name,note\r\n" + b"".join(RECORDS)


class TestCsvRecordReader:
    @pytest.mark.parametrize("name", ["in.csv", "in.csv.gz"])
    def test_contract(self, tmp_path: Path, name: str) -> None:
        """Raw records (quotes, multi-line, CRLF, gzip) pass the reader contract kit."""
        path = tmp_path / name
        path.write_bytes(gzip.compress(DATA) if name.endswith(".gz") else DATA)
        bad = tmp_path / "bad.csv"
        bad.write_bytes(DATA + b'4,"never closed,x\n5,y,z\n')
        empty = tmp_path / "empty.csv"
        empty.write_bytes(b"id,name,note\n")
        check_reader(
            lambda: CsvRecordReader(str(path)),
            expected=RECORDS,
            empty=lambda: CsvRecordReader(str(empty)),
            malformed=lambda: CsvRecordReader(str(bad)),
            malformed_expected=RECORDS,
            malformed_errors=1,
        )

    def test_header_validation_and_names(self, tmp_path: Path) -> None:
        """The header is parsed into names, and checked against the expected ones."""
        path = tmp_path / "in.csv"
        path.write_bytes(DATA)
        reader = CsvRecordReader(str(path), header="validate", names=["id", "name", "note"])
        reader.open(ExecutionContext())
        assert reader.names == ["id", "name", "note"] and reader.read() == RECORDS[0]
        reader.close()
        wrong = CsvRecordReader(str(path), header="validate", names=["id"])
        with pytest.raises(ItemReadError, match="line 1: header"):
            wrong.open(ExecutionContext())

    def test_bom_is_skipped_and_a_bad_header_is_named(self, tmp_path: Path) -> None:
        """A UTF-8 BOM reaches neither the names nor a record; a header that is not UTF-8 is an
        ItemReadError naming file and line."""
        path = tmp_path / "bom.csv"
        path.write_bytes(b"\xef\xbb\xbf" + DATA)
        check_reader(lambda: CsvRecordReader(str(path)), expected=RECORDS, chunk_size=1)
        reader = CsvRecordReader(str(path), header="validate", names=["id", "name", "note"])
        reader.open(ExecutionContext())
        assert reader.names == ["id", "name", "note"]
        reader.close()
        bare = tmp_path / "bare.csv"
        bare.write_bytes(b"\xef\xbb\xbf" + b"".join(RECORDS))
        check_reader(lambda: CsvRecordReader(str(bare), header="none"), expected=RECORDS)
        latin = tmp_path / "latin.csv"
        latin.write_bytes(b"id,n\xe9\n1,x\n")
        with pytest.raises(ItemReadError, match=r"latin\.csv, line 1: unreadable header"):
            CsvRecordReader(str(latin)).open(ExecutionContext())


class TestCopyCsvRecords:
    @pytest.fixture
    def pg(self, tmp_path: Path) -> Iterator[str]:
        with fresh_database("postgresql", tmp_path) as url:
            engine = sa.create_engine(url)
            with engine.begin() as conn:
                conn.execute(sa.text("CREATE TABLE t (id integer, name text, note text)"))
            engine.dispose()
            yield url

    def rows(self, url: str) -> list[tuple[object, ...]]:
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            found = sorted(tuple(r) for r in conn.execute(sa.text("SELECT * FROM t")))
        engine.dispose()
        return found

    def test_contract(self, pg: str) -> None:
        """Raw records go through COPY (FORMAT csv) in the chunk's transaction: contract kit."""
        bind = sa.create_engine(pg)

        def reset() -> None:
            with bind.begin() as conn:
                conn.execute(sa.text("DELETE FROM t"))

        check_writer(
            lambda: PostgresCopyWriter("t", ["id", "name", "note"], csv_records=True),
            RECORDS,
            lambda: self.rows(pg),
            transaction_manager=SqlTransactionManager(bind),
            reset=reset,
            expected=[
                (1, "plain", "x"),
                (2, 'with "quotes", and comma', "y"),
                (3, "multi\nline", "z"),
            ],
        )
        bind.dispose()

    def test_job_skips_the_record_the_database_rejects(self, pg: str, tmp_path: Path) -> None:
        """A value PostgreSQL rejects fails its chunk; a skip policy scans it and skips only
        that record, and the job on a PostgreSQL repository loads all the others."""
        psycopg = import_extra("psycopg", "postgres")
        path = tmp_path / "in.csv"
        lines = [f"{i},name {i},n" for i in range(1, 30)]
        lines[16] = "x17,bad id,n"
        path.write_text("id,name,note\n" + "\n".join(lines) + "\n")
        step = (
            StepBuilder("load")
            .chunk(5)
            .reader(lambda se: CsvRecordReader(str(path)))
            .writer(PostgresCopyWriter("t", ["id", "name", "note"], csv_records=True))
            .skip(psycopg.errors.DataError, limit=1)
        )
        with Engine(pg) as engine:
            execution = engine.start(JobBuilder("raw_copy").step(step).build())
            assert execution.status is BatchStatus.COMPLETED, execution.exit_status
            skipped = engine.skipped_items(execution.id)
        assert [s.phase for s in skipped] == ["write"]
        assert [r[0] for r in self.rows(pg)] == [i for i in range(1, 30) if i != 17]
