from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import math
from decimal import Decimal
from typing import Any, NamedTuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batchline.items.files.mapping import MISSING, Field, FieldError, RecordMapper


class Colour(enum.Enum):
    RED = "r"
    GREEN = "g"


KINDS: list[Any] = [int, float, Decimal, dt.date, dt.datetime, bool, str, Colour]
FORMATS: dict[Any, list[str | None]] = {
    dt.date: [None, "%d.%m.%Y"],
    dt.datetime: [None, "%Y%m%d %H%M"],
    bool: [None, "J/N", "oui/non"],
}
DEFAULTS: dict[Any, Any] = {
    int: 0,
    float: 1.5,
    Decimal: Decimal("0.00"),
    dt.date: dt.date(2000, 1, 1),
    dt.datetime: dt.datetime(2000, 1, 1),
    bool: False,
    str: "none",
    Colour: Colour.RED,
}
# Texts near every converter's edges: spaces, signs, underscores, NaN, other scripts, words.
EDGES = st.sampled_from(
    [
        "",
        " ",
        "0",
        " 42 ",
        "-7",
        "1_000",
        "4x",
        "\u0664\u0662",
        "1.50",
        " 2.5\n",
        "NaN",
        "Infinity",
        "-inf",
        "1e3",
        "1,5",
        "2024-02-29",
        " 2024-02-29",
        "2024-02-30",
        "20240229",
        "29.02.2024",
        "2024-02-29T10:00",
        "2024-02-29 10:00:00+01:00",
        "20240229 1000",
        "true",
        "TRUE",
        "Yes",
        " no ",
        "n",
        "J",
        "n\u0131",
        "OUI",
        "Non",
        "maybe",
        "r",
        "g",
        " g",
        "x",
    ]
)
TEXTS = st.one_of(EDGES, EDGES, EDGES, st.text(max_size=6))


@st.composite
def targets(draw: st.DrawFn) -> tuple[type, list[Field], bool]:
    """A dataclass of random typed fields, some optional or defaulted, plus Field overrides."""
    count = draw(st.integers(min_value=1, max_value=6))
    specs: list[Any] = []
    fields: list[Field] = []
    seen_default = False
    for i in range(count):
        kind = draw(st.sampled_from(KINDS))
        optional = draw(st.booleans())
        annotation = kind | None if optional else kind
        has_default = seen_default or draw(st.booleans())
        if has_default:
            seen_default = True
            specs.append((f"f{i}", annotation, dataclasses.field(default=DEFAULTS[kind])))
        else:
            specs.append((f"f{i}", annotation))
        fmt = draw(st.sampled_from(FORMATS.get(kind, [None])))
        if fmt is not None:
            fields.append(Field(f"f{i}", format=fmt))
    slots = draw(st.booleans())
    cls = dataclasses.make_dataclass("Random", specs, slots=slots)
    return cls, fields, draw(st.booleans())


def outcome(fn: Any, record: Any) -> tuple[str, Any]:
    """What one mapping gives: ("ok", comparable fields) or ("error", field, message)."""
    try:
        item = fn(record)
    except FieldError as exc:
        return ("error", (exc.field, exc.message))
    values = dataclasses.astuple(item) if dataclasses.is_dataclass(item) else tuple(item)
    return ("ok", tuple(_comparable(v) for v in values))


def _comparable(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return (type(value).__name__, value)


class TestCompiledAgreesWithReference:
    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(target=targets(), data=st.data())
    def test_records_by_header(self, target: tuple[type, list[Field], bool], data: Any) -> None:
        """On any record of text (short, long, empty values), compiled and reference mapping
        give equal items or the same FieldError (field and message)."""
        cls, fields, empty_is_missing = target
        names = [f.name for f in dataclasses.fields(cls)]
        header = data.draw(st.permutations(names))
        mapper = RecordMapper(cls, *fields, empty_is_missing=empty_is_missing)
        compiled, reference = mapper.bind(header), mapper.reference_bind(header)
        sizes = st.one_of(st.just(len(header)), st.integers(0, len(header) + 1))
        for _ in range(10):
            size = data.draw(sizes)
            record = data.draw(st.lists(TEXTS, min_size=size, max_size=size))
            assert outcome(compiled, record) == outcome(reference, record)

    @settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(target=targets(), data=st.data())
    def test_json_objects(self, target: tuple[type, list[Field], bool], data: Any) -> None:
        """On JSON-like objects (text, numbers, null, missing keys), compiled from_mapping and
        the reference agree."""
        cls, fields, empty_is_missing = target
        names = [f.name for f in dataclasses.fields(cls)]
        json_values = st.one_of(TEXTS, st.integers(), st.none(), st.booleans(), st.just([1]))
        mapper = RecordMapper(cls, *fields, empty_is_missing=empty_is_missing)
        for _ in range(5):
            keys = data.draw(st.lists(st.sampled_from([*names, "other"]), unique=True))
            record = {k: data.draw(json_values) for k in keys}
            expected = outcome(mapper.reference_from_mapping, record)
            assert outcome(mapper.from_mapping, record) == expected

    @settings(max_examples=100, deadline=None)
    @given(record=st.lists(TEXTS, min_size=4, max_size=4))
    def test_positions_defaults_and_odd_names(self, record: list[str]) -> None:
        """Fields by position, names that are not identifiers (a dict call), a class whose
        constructor raises: still the reference's values and errors."""

        class Odd:
            def __init__(self, **values: Any) -> None:
                if values.get("a-b") == 13:
                    raise ValueError("a-b is unlucky")
                self.values = values

            def __iter__(self) -> Any:
                return iter(sorted(self.values.items()))

        mapper = RecordMapper(
            Odd,
            Field("a-b", source=2, type=int),
            Field("class", source=0, type=Decimal, default=Decimal(1)),
            Field("c", source=3, type=bool, required=False),
            Field("d", source=7, default="x"),
        )
        compiled, reference = mapper.bind(None), mapper.reference_bind(None)
        assert outcome(compiled, record) == outcome(reference, record)
        assert outcome(compiled, ["", "", "13", "y"]) == ("error", ("a-b", "a-b is unlucky"))


class TestCompiledCode:
    def test_no_text_from_headers_or_data_becomes_code(self) -> None:
        """Names that would be code if pasted are passed as constants; the source never holds
        a header name or a default."""

        @dataclasses.dataclass
        class Item:
            x: int
            y: str = "'); import os; ('"

        evil = "x\n    import os"
        mapper = RecordMapper(Item, Field("x", source=evil))
        bound = mapper.bind([evil, "y"])
        assert bound(["7", ""]) == Item(7)
        assert evil not in mapper.source and "import" not in mapper.source

    def test_namedtuple_and_positional_call(self) -> None:
        """A NamedTuple takes its fields, types and defaults from the class."""

        class Row(NamedTuple):
            id: int
            price: Decimal
            note: str = "-"

        mapper = RecordMapper(Row)
        bound = mapper.bind(["price", "id", "note"])
        assert bound(["1.5", "3", ""]) == Row(3, Decimal("1.5"), "-")
        assert "_target(a0, a1, a2)" in mapper.source
        with pytest.raises(FieldError, match="not an integer") as caught:
            bound(["1.5", "three", ""])
        assert caught.value.field == "id"

    def test_a_target_without_fields(self) -> None:
        """A dataclass with no fields maps every record, and every object, to an instance."""

        @dataclasses.dataclass
        class Empty:
            pass

        mapper = RecordMapper(Empty)
        assert mapper.bind(["a"])(["x"]) == Empty()
        assert mapper.from_mapping({"a": 1}) == Empty()

    def test_default_sentinel_is_not_a_value(self) -> None:
        """MISSING is never handed to the target."""

        @dataclasses.dataclass
        class Item:
            a: str | None = None

        assert RecordMapper(Item).bind(["a"])([""]) == Item(None)
        assert Item(None).a is not MISSING
