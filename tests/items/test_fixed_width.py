from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest

from batchline import ExecutionContext, ItemReadError
from batchline.items.files.fixed_width import FixedWidthReader, FixedWidthWriter
from batchline.items.files.mapping import Field, RecordMapper
from batchline.testing.contract import check_reader, check_writer

COLUMNS = [("id", 4), ("name", 10), ("amount", 8)]
ITEMS = [
    {"id": "0001", "name": "Ana", "amount": "1.50"},
    {"id": "0002", "name": "Zoë", "amount": "1200.00"},
    {"id": "0003", "name": "Bo", "amount": "-3.25"},
]
LINES = [f"{r['id']}{r['name']:<10}{r['amount']:>8}" for r in ITEMS]


@dataclasses.dataclass
class Payment:
    id: int
    name: str
    amount: Decimal
    day: dt.date


class TestFixedWidthReader:
    def test_contract_latin1(self, tmp_path: Path) -> None:
        """A latin-1 fixed-width file passes the contract kit; positions count characters."""
        path = tmp_path / "in.txt"
        path.write_bytes(("\n".join(LINES) + "\n").encode("latin-1"))
        bad = tmp_path / "bad.txt"
        bad.write_bytes("\n".join([LINES[0], "0002Short", LINES[2]]).encode("latin-1") + b"\n")
        empty = tmp_path / "empty.txt"
        empty.write_bytes(b"")
        check_reader(
            lambda: FixedWidthReader(str(path), COLUMNS, encoding="latin-1"),
            expected=ITEMS,
            empty=lambda: FixedWidthReader(str(empty), COLUMNS),
            malformed=lambda: FixedWidthReader(str(bad), COLUMNS, encoding="latin-1"),
            malformed_expected=[ITEMS[0], ITEMS[2]],
            malformed_errors=1,
        )

    def test_mapped_errors_name_the_field(self, tmp_path: Path) -> None:
        """Too-short lines and unparsable values name their column; the next line is read."""
        path = tmp_path / "pay.txt"
        path.write_text(
            f"0001{'Ana':<10}{'1.50':>8}20240229\n"
            "0002Bob\n"
            f"0003{'Cy':<10}{'abc':>8}20240301\n"
            f"0004{'Di':<10}{'2.00':>8}20240302\n"
        )
        mapper = RecordMapper(Payment, Field("day", format="%Y%m%d"))
        reader = FixedWidthReader(str(path), [*COLUMNS, ("day", 22, 30)], mapper=mapper)
        reader.open(ExecutionContext())
        assert reader.read() == Payment(1, "Ana", Decimal("1.50"), dt.date(2024, 2, 29))
        with pytest.raises(ItemReadError, match=r"pay\.txt, line 2, field 'name': line is 7"):
            reader.read()
        with pytest.raises(ItemReadError, match=r"line 3, field 'amount': 'abc' is not a decimal"):
            reader.read()
        assert reader.read() == Payment(4, "Di", Decimal("2.00"), dt.date(2024, 3, 2))
        reader.close()

    def test_bom_does_not_shift_the_first_line(self, tmp_path: Path) -> None:
        """A UTF-8 BOM before the first line is not counted into its columns."""
        path = tmp_path / "bom.txt"
        path.write_bytes(b"\xef\xbb\xbf" + ("\n".join(LINES) + "\n").encode())
        check_reader(lambda: FixedWidthReader(str(path), COLUMNS), expected=ITEMS, chunk_size=1)

    def test_mapper_returning_none_is_a_read_error(self, tmp_path: Path) -> None:
        """A mapper's None fails its line instead of ending the input."""
        path = tmp_path / "in.txt"
        path.write_text("\n".join(LINES) + "\n")
        mapper = RecordMapper(lambda id: None if id == "0002" else id, Field("id"))
        reader = FixedWidthReader(str(path), [("id", 4)], mapper=mapper)
        reader.open(ExecutionContext())
        assert reader.read() == "0001"
        with pytest.raises(ItemReadError, match=r"in\.txt, line 2: the mapper returned None"):
            reader.read()
        assert [reader.read(), reader.read()] == ["0003", None]
        reader.close()


class TestFixedWidthWriter:
    def test_contract_and_alignment(self, tmp_path: Path) -> None:
        """Fields are padded and aligned per column; restarts give identical bytes."""
        out = tmp_path / "out.txt"
        check_writer(
            lambda: FixedWidthWriter(
                str(out), COLUMNS, align={"amount": ">"}, header="HDR", footer=lambda n: f"T{n:04d}"
            ),
            ITEMS,
            out.read_text,
            expected="HDR\n" + "\n".join(LINES) + "\nT0003\n",
        )

    def test_too_long_value_is_an_error(self, tmp_path: Path) -> None:
        """A value wider than its column fails naming the field, unless truncation is on."""
        writer = FixedWidthWriter(str(tmp_path / "x.txt"), [("code", 3)])
        with pytest.raises(ValueError, match="field 'code' value 'ABCD' is longer than 3"):
            writer.format([{"code": "ABCD"}])
        cut = FixedWidthWriter(str(tmp_path / "x.txt"), [("code", 3)], truncate=True)
        assert cut.format([{"code": "ABCD"}]) == "ABC\n"
