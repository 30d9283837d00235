from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from batchline import ExecutionContext, ItemReadError
from batchline.errors import ConfigurationError
from batchline.items.files.delimited import DelimitedReader
from batchline.items.files.mapping import Field, FieldError, RecordMapper, converter


class Side(enum.Enum):
    BUY = "B"
    SELL = "S"


@dataclasses.dataclass
class Trade:
    id: int
    day: dt.date
    price: Decimal
    side: Side
    active: bool
    note: str | None
    qty: int = 1


def read_all(path: Path, **options: Any) -> list[Any]:
    reader: DelimitedReader[Any] = DelimitedReader(str(path), **options)
    reader.open(ExecutionContext())
    out: list[Any] = []
    while True:
        try:
            item = reader.read()
        except ItemReadError as exc:
            out.append(str(exc).replace(f"{path.parent}/", ""))
            continue
        if item is None:
            reader.close()
            return out
        out.append(item)


class TestConverters:
    def test_each_type_and_its_error(self) -> None:
        """Every built-in conversion parses good text and rejects bad text with the text shown."""
        assert converter(int)(" 42 ") == 42
        assert converter(Decimal)("1.10") == Decimal("1.10")
        assert converter(dt.date, "%d/%m/%Y")("29/02/2024") == dt.date(2024, 2, 29)
        assert converter(dt.datetime)("2024-02-29T10:00") == dt.datetime(2024, 2, 29, 10)
        assert converter(bool)("Yes") is True and converter(bool, "O/N")("n") is False
        assert converter(Side)("S") is Side.SELL
        for kind, fmt, text, message in [
            (int, None, "4x", "'4x' is not an integer"),
            (Decimal, None, "1,5", "'1,5' is not a decimal number"),
            (Decimal, None, "NaN", "'NaN' is not a finite decimal number"),
            (dt.date, "%d/%m/%Y", "31/02/2024", "does not match the format"),
            (bool, None, "maybe", "'maybe' is not a boolean"),
        ]:
            with pytest.raises(ValueError, match=message):
                converter(kind, fmt)(text)


class TestRecordMapper:
    def test_dataclass_by_header_name(self, tmp_path: Path) -> None:
        """Types, optional fields and defaults come from the dataclass; a bad value is named."""
        path = tmp_path / "t.csv"
        path.write_text(
            "id,day,price,side,active,note,qty\n"
            "1,2024-02-29,9.99,B,true,,\n"
            "2,2024-13-01,1,S,false,x,3\n"
            "3,2024-03-01,1,X,false,x,3\n"
            "4,2024-03-02,2.5,S,no,hello,7\n"
        )
        assert read_all(path, mapper=Trade) == [
            Trade(1, dt.date(2024, 2, 29), Decimal("9.99"), Side.BUY, True, None, 1),
            "t.csv, line 3, field 'day': '2024-13-01' is not a date YYYY-MM-DD",
            "t.csv, line 4, field 'side': 'X' is not one of ['B', 'S']",
            Trade(4, dt.date(2024, 3, 2), Decimal("2.5"), Side.SELL, False, "hello", 7),
        ]

    def test_position_format_default_and_required(self, tmp_path: Path) -> None:
        """Fields by position with a date format, a default for empties, and a required one."""
        path = tmp_path / "p.csv"
        path.write_text("7;01.02.2024;;J\n;02.02.2024;5;N\n")
        mapper = RecordMapper(
            Trade,
            Field("id", source=0),
            Field("day", source=1, format="%d.%m.%Y"),
            Field("price", source=2, default=Decimal("0")),
            Field("active", source=3, format="J/N"),
            Field("side", default=Side.BUY),
            Field("note", default=None),
        )
        assert read_all(path, header="none", mapper=mapper, delimiter=";") == [
            Trade(7, dt.date(2024, 2, 1), Decimal("0"), Side.BUY, True, None),
            "p.csv, line 2, field 'id': a value is required",
        ]

    def test_plain_class_needs_fields_and_a_missing_column_is_named(self) -> None:
        """A class that is not a dataclass needs Fields; an unknown column fails at bind time."""

        class Plain:
            def __init__(self, a: str) -> None:
                self.a = a

        with pytest.raises(ConfigurationError, match="not a dataclass"):
            RecordMapper(Plain)
        with pytest.raises(ConfigurationError, match="no column 'id'"):
            RecordMapper(Trade).bind(["day"])

    def test_model_validate_duck_typing(self) -> None:
        """A class with model_validate (a pydantic model) gets the named values; its error's
        first location names the field."""

        class Invalid(Exception):
            def errors(self) -> list[dict[str, Any]]:
                return [{"loc": ("qty",), "msg": "not an int"}]

            def __str__(self) -> str:
                return "1 validation error\nqty\n  not an int"

        class Model:
            def __init__(self, data: dict[str, Any]) -> None:
                self.data = data

            @classmethod
            def model_validate(cls, data: dict[str, Any]) -> Model:
                if not str(data["qty"]).isdigit():
                    raise Invalid
                return cls(data)

        bound = RecordMapper(Model).bind(["id", "qty"])
        assert bound(["1", "2"]).data == {"id": "1", "qty": "2"}
        with pytest.raises(FieldError) as caught:
            bound(["1", "two"])
        assert (caught.value.field, caught.value.message) == ("qty", "not an int")
