from __future__ import annotations

import dataclasses
import datetime as dt
import gzip
import json
from decimal import Decimal
from pathlib import Path

import pytest

from batchline import ExecutionContext, ItemReadError
from batchline.errors import ConfigurationError
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

    def test_null_line_is_a_read_error_not_the_end(self, tmp_path: Path) -> None:
        """A null line is an error naming file and line; the records after it are read."""
        path = write_lines(tmp_path / "n.jsonl", ['{"id":1}', "null", '{"id":3}', '{"id":4}'])
        good = write_lines(tmp_path / "good.jsonl", ['{"id":1}', '{"id":3}', '{"id":4}'])
        check_reader(
            lambda: JsonLinesReader(str(good)),
            expected=[{"id": 1}, {"id": 3}, {"id": 4}],
            malformed=lambda: JsonLinesReader(str(path)),
            malformed_expected=[{"id": 1}, {"id": 3}, {"id": 4}],
            malformed_errors=1,
        )
        reader = JsonLinesReader(str(path))
        reader.open(ExecutionContext())
        reader.read()
        with pytest.raises(ItemReadError) as caught:
            reader.read()
        assert (caught.value.source, caught.value.line, caught.value.raw) == (str(path), 2, "null")
        reader.close()

    def test_mapper_returning_none_is_a_read_error(self, tmp_path: Path) -> None:
        """A mapper that returns None fails that line only."""
        path = write_lines(tmp_path / "m.jsonl", ['{"id":1}', '{"id":2}', '{"id":3}'])
        mapper = RecordMapper(lambda id: None if id == 2 else id, Field("id"))
        reader = JsonLinesReader(str(path), mapper=mapper)
        reader.open(ExecutionContext())
        assert reader.read() == 1
        with pytest.raises(ItemReadError, match=r"m\.jsonl, line 2: the mapper returned None"):
            reader.read()
        assert [reader.read(), reader.read()] == [3, None]
        reader.close()

    def test_utf8_bom_is_skipped_at_the_start_only(self, tmp_path: Path) -> None:
        """A BOM opening the file is not part of the first record; restarts read the same."""
        path = write_lines(tmp_path / "b.jsonl", [b'\xef\xbb\xbf{"id":1}', b'{"id":2}'])
        check_reader(lambda: JsonLinesReader(str(path)), expected=[{"id": 1}, {"id": 2}])

    def test_deep_nesting_is_a_skippable_read_error(self, tmp_path: Path) -> None:
        """JSON nested past the recursion limit fails its line with file and line, not the step."""
        path = write_lines(tmp_path / "d.jsonl", ["[" * 100_000, '{"id":2}'])
        reader = JsonLinesReader(str(path))
        reader.open(ExecutionContext())
        with pytest.raises(ItemReadError, match=r"d\.jsonl, line 1: JSON nested too deeply"):
            reader.read()
        assert [reader.read(), reader.read()] == [{"id": 2}, None]
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

    def test_nan_and_infinity_are_refused_naming_item_and_key(self, tmp_path: Path) -> None:
        """NaN and Infinity are not JSON: the error names the file, the item and the key."""
        writer = JsonLinesWriter(str(tmp_path / "out.jsonl"))
        with pytest.raises(ValueError) as caught:
            writer.format([{"id": 1, "x": 1.5}, {"id": 2, "m": {"v": [0.0, float("nan")]}}])
        message = str(caught.value)
        assert f"{tmp_path}/out.jsonl: item 2 of the output, key 'm.v[1]' holds nan" in message
        with pytest.raises(ValueError, match=r"item 1 of the output, key 'amount' holds inf"):
            writer.format([Event(1, dt.date(2024, 1, 1), float("inf"))])  # type: ignore[arg-type]


class TestContextJson:
    def test_nan_in_a_context_is_refused_naming_the_key(self) -> None:
        """A context holding NaN or Infinity cannot be saved; the error names the key."""
        context = ExecutionContext({"ok": 1, "stats": {"mean": float("nan")}})
        with pytest.raises(ConfigurationError, match=r"key 'stats\.mean' holds nan"):
            context.to_json()
        context["stats"] = {"mean": 0.5}
        context["rate"] = [1.0, float("-inf")]
        with pytest.raises(ConfigurationError, match=r"key 'rate\[1\]' holds -inf"):
            context.to_json()
        context["rate"] = None
        assert json.loads(context.to_json()) == {"ok": 1, "rate": None, "stats": {"mean": 0.5}}
