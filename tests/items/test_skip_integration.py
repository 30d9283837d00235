"""Malformed input in a real job with a skip policy: every bad record is skipped and recorded
with its file and line, every good one is written."""

from __future__ import annotations

import dataclasses
import datetime as dt
import gzip
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

from batchline import (
    BatchStatus,
    Chunk,
    Engine,
    ExecutionContext,
    ItemReadError,
    JobBuilder,
    StepBuilder,
)
from batchline.items.files.delimited import DelimitedReader, DelimitedWriter
from batchline.items.files.jsonl import JsonLinesReader
from batchline.items.memory import ListReader

GOOD = [f"{i},item {i},{i}.50,2024-01-{i:02d}" for i in range(1, 21)]
BAD = {
    3: '99,"bad"quote,1.00,2024-01-01',  # bad quoting
    6: "99,too,few",  # wrong field count
    9: "99,bad number,1.x0,2024-01-01",  # a bad decimal
    12: "99,bad date,1.00,2024-02-30",  # a bad date
}


@dataclasses.dataclass
class Line:
    id: int
    name: str
    price: Decimal
    day: dt.date


def make_input() -> bytes:
    lines: list[bytes] = [b"id,name,price,day"]
    for index, good in enumerate(GOOD, 1):
        if index in BAD:
            lines.append(BAD[index].encode())
        if index == 15:
            lines.append(b"99,caf\xe9,1.00,2024-01-01")  # latin-1 in a UTF-8 file
        lines.append(good.encode())
    return b"\n".join(lines) + b"\n"


def run(engine: Engine, source: Path, target: Path, name: str) -> tuple[BatchStatus, list[str]]:
    step = (
        StepBuilder("load")
        .chunk(4)
        .reader(lambda se: DelimitedReader(str(source), mapper=Line))
        .writer(DelimitedWriter(str(target), fields=["id", "name", "price", "day"]))
        .skip(ItemReadError, limit=None)
    )
    execution = engine.start(JobBuilder(name).step(step).build())
    skipped = engine.skipped_items(execution.id)
    return execution.status, [f"{s.position}: {s.error_message}" for s in skipped]


class TestSkippingMalformedRecords:
    def test_each_kind_of_bad_record_is_skipped_with_file_and_line(
        self, sqlite_engine: Engine, tmp_path: Path
    ) -> None:
        """Bad quoting, field count, number, date and bytes are skipped; all good rows land."""
        source = tmp_path / "in.csv"
        source.write_bytes(make_input())
        target = tmp_path / "out.csv"
        status, skipped = run(sqlite_engine, source, target, "skip_csv")
        assert status is BatchStatus.COMPLETED
        assert target.read_text().splitlines() == GOOD
        assert len(skipped) == 5
        for entry, (line, field) in zip(
            skipped,
            [(4, "'name'"), (8, "'day'"), (12, "'price'"), (16, "'day'"), (20, "'name'")],
            strict=True,
        ):
            assert entry.startswith(f"{source} line {line}: "), entry
            assert f"field {field}" in entry, entry

    def test_truncated_gzip_keeps_what_came_before(
        self, sqlite_engine: Engine, tmp_path: Path
    ) -> None:
        """A gzip file cut short: the records before the cut are written, the cut is skipped."""
        source = tmp_path / "in.csv.gz"
        body = b"\n".join([b"id,name,price,day", *(g.encode() for g in GOOD * 300)]) + b"\n"
        whole = gzip.compress(body)
        source.write_bytes(whole[: len(whole) * 2 // 3])
        target = tmp_path / "out.csv"
        status, skipped = run(sqlite_engine, source, target, "skip_gzip")
        assert status is BatchStatus.COMPLETED
        written = target.read_text().splitlines()
        assert 0 < len(written) < len(GOOD) * 300
        assert written == (GOOD * 300)[: len(written)]
        assert len(skipped) == 1 and "unreadable stream" in skipped[0], skipped


class FailOn:
    """Writes through a file writer, then fails when the chunk holds a given id."""

    def __init__(self, inner: DelimitedWriter, bad: str) -> None:
        self.inner = inner
        self.bad = bad

    def open(self, context: ExecutionContext) -> None:
        self.inner.open(context)

    def write(self, items: Sequence[dict[str, str]], chunk: Chunk) -> None:
        self.inner.write(items, chunk)
        if any(item["id"] == self.bad for item in items):
            raise ValueError(f"id {self.bad} refused")

    def update(self, context: ExecutionContext) -> None:
        self.inner.update(context)

    def close(self) -> None:
        self.inner.close()


class TestFileWriterUnderScan:
    def test_rolled_back_chunk_and_scan_leave_no_duplicate(
        self, sqlite_engine: Engine, tmp_path: Path
    ) -> None:
        """A write failure rolls the chunk back and the skip scan rewrites it item by item: the
        file holds every other row exactly once, in order."""
        source = tmp_path / "in.csv"
        source.write_text("id,name\n" + "".join(f"{i},n{i}\n" for i in range(1, 15)))
        target = tmp_path / "out.csv"
        writer = FailOn(DelimitedWriter(str(target), fields=["id", "name"], header=True), "7")
        step = (
            StepBuilder("load")
            .chunk(4)
            .reader(lambda se: DelimitedReader(str(source)))
            .writer(writer)
            .skip(ValueError, limit=1)
        )
        execution = sqlite_engine.start(JobBuilder("scan_file").step(step).build())
        assert execution.status is BatchStatus.COMPLETED, execution.exit_status
        expected = ["id,name"] + [f"{i},n{i}" for i in range(1, 15) if i != 7]
        assert target.read_text().splitlines() == expected


class TestSkippedRecordsKeepTheirRawInput:
    def test_skipped_delimited_records_store_the_raw_line(
        self, sqlite_engine: Engine, tmp_path: Path
    ) -> None:
        """The skipped-item rows of a wrong field count, a value that does not convert and a
        stray CR hold the record's raw text, not None."""
        source = tmp_path / "in.csv"
        source.write_bytes(make_input() + b"99,a\rb,1.00,2024-01-01\n")
        execution = sqlite_engine.start(
            JobBuilder("raw_csv")
            .step(
                StepBuilder("load")
                .chunk(4)
                .reader(lambda se: DelimitedReader(str(source), mapper=Line))
                .writer(DelimitedWriter(str(tmp_path / "out.csv"), fields=["id"]))
                .skip(ItemReadError, limit=None)
            )
            .build()
        )
        assert execution.status is BatchStatus.COMPLETED
        items = [s.item for s in sqlite_engine.skipped_items(execution.id)]
        expected = [BAD[3], BAD[6], BAD[9], BAD[12], "99,caf\ufffd,1.00,2024-01-01"]
        assert items == [*expected, "99,a\rb,1.00,2024-01-01"]

    def test_null_and_none_items_are_skipped_not_the_end(
        self, sqlite_engine: Engine, tmp_path: Path
    ) -> None:
        """A JSON Lines null and a None in a list are skipped read errors: every item after
        them is still written."""
        source = tmp_path / "in.jsonl"
        source.write_text('{"id":1}\nnull\n{"id":3}\n{"id":4}\n')
        written: list[object] = []
        for name, reader in (
            ("null_jsonl", lambda se: JsonLinesReader(str(source))),
            ("none_list", ListReader([{"id": 1}, None, {"id": 3}, {"id": 4}])),
            ("none_iterable", [{"id": 1}, None, {"id": 3}, {"id": 4}]),
        ):
            written.clear()
            step = (
                StepBuilder("load")
                .chunk(2)
                .reader(reader)
                .writer(lambda items: written.extend(items))
                .skip(ItemReadError, limit=None)
            )
            execution = sqlite_engine.start(JobBuilder(name).step(step).build())
            assert execution.status is BatchStatus.COMPLETED, name
            assert written == [{"id": 1}, {"id": 3}, {"id": 4}], name
            skipped = sqlite_engine.skipped_items(execution.id)
            assert len(skipped) == 1, name
            assert "None" in skipped[0].error_message or "null" in skipped[0].error_message
            if name == "null_jsonl":
                assert skipped[0].item == "null"
