from __future__ import annotations

import dataclasses
import datetime as dt
import gzip
import json
from decimal import Decimal
from pathlib import Path

import pytest

from batchline import ExecutionContext, ItemReadError
from batchline.items.files.jsonl import JsonLinesReader, JsonLinesWriter
from batchline.items.files.mapping import Field, RecordMapper
from batchline.testing.contract import check_reader, check_writer

RECORDS = [
    {"id": 1, "name": "ascii", "tags": ["a"]},
    {"id": 2, "name": "ünïcödé ✓", "tags": []},
    {"id": 3, "name": "nested", "tags": [{"deep": True}]},
]


@dataclasses.dataclass
class Event:
    id: int
    day: dt.date
    amount: Decimal
    note: str | None = None


def write_lines(path: Path, lines: list[str | bytes]) -> Path:
    data = b"".join((x if isinstance(x, bytes) else x.encode()) + b"\n" for x in lines)
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


class TestJsonLinesReader:
    @pytest.mark.parametrize("name", ["in.jsonl", "in.jsonl.gz"])
    def test_contract(self, tmp_path: Path, name: str) -> None:
        """Plain and gzip JSON Lines pass the contract kit, malformed lines included."""
        path = write_lines(tmp_path / name, [json.dumps(r) for r in RECORDS] + [""])
        empty = write_lines(tmp_path / f"empty-{name}", [])
        bad = write_lines(
            tmp_path / f"bad-{name}",
            [json.dumps(RECORDS[0]), '{"id": 2,', b'{"id": "\xff"}', json.dumps(RECORDS[2])],
        )
        check_reader(
            lambda: JsonLinesReader(str(path)),
            expected=RECORDS,
            empty=lambda: JsonLinesReader(str(empty)),
            malformed=lambda: JsonLinesReader(str(bad)),
            malformed_expected=[RECORDS[0], RECORDS[2]],
            malformed_errors=2,
        )

    def test_mapping_errors_name_line_and_field(self, tmp_path: Path) -> None:
        """A bad date in a mapped record names the file, line and field; reading goes on."""
        path = write_lines(
            tmp_path / "events.jsonl",
            [
                '{"id": 1, "day": "2024-02-29", "amount": "1.50"}',
                '{"id": 2, "day": "2024-02-30", "amount": "2"}',
                '{"id": 3, "day": "2024-03-01", "amount": 3, "note": "x"}',
            ],
        )
        reader = JsonLinesReader(str(path), mapper=Event)
        reader.open(ExecutionContext())
        assert reader.read() == Event(1, dt.date(2024, 2, 29), Decimal("1.50"))
        with pytest.raises(
            ItemReadError, match=r"events\.jsonl, line 2, field 'day': '2024-02-30'"
        ):
            reader.read()
        assert reader.read() == Event(3, dt.date(2024, 3, 1), 3, "x")  # type: ignore[arg-type]
        reader.close()


class TestJsonLinesWriter:
    def test_contract_with_typed_items(self, tmp_path: Path) -> None:
        """Dataclasses with dates and decimals are written as JSON; restarts are byte-exact."""
        out = tmp_path / "out.jsonl.gz"
        events = [Event(i, dt.date(2024, 1, i), Decimal(f"{i}.10"), "é") for i in range(1, 6)]
        report = check_writer(lambda: JsonLinesWriter(str(out)), events, out.read_bytes)
        lines = gzip.decompress(report.output).decode().splitlines()
        assert lines[0] == '{"id":1,"day":"2024-01-01","amount":"1.10","note":"é"}'
        out.write_bytes(report.output)
        mapper = RecordMapper(Event, Field("amount", type=Decimal))
        reader = JsonLinesReader(str(out), mapper=mapper)
        reader.open(ExecutionContext())
        assert list(iter(reader.read, None)) == events
        reader.close()
