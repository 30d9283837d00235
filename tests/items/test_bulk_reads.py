"""``read_into`` (runs of records in C loops) gives what ``read()`` gives, record for record:
the same items, the same errors (line, field, raw text) in the same places, and a saved
position after any run from which a restart reads exactly the rest."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from batchline import ExecutionContext
from batchline.errors import ItemReadError
from batchline.items.files.delimited import DelimitedReader
from batchline.items.files.mapping import ListMapper
from batchline.items.files.records import CsvRecordReader

LINES = {
    "plain": "1,ab,3\n",
    "quoted": '2,"x, y",4\n',
    "multiline": '3,"two\nlines",5\n',
    "wide": "4,a,b,c\n",
    "narrow": "5,a\n",
    "blank": "\n",
    "badquote": '6,"a"b,7\n',
    "crlf": "7,cr,8\r\n",
    "doubled": '8,"say ""hi""",9\n',
}
kinds = st.lists(st.sampled_from(sorted(LINES)), max_size=60)
sizes = st.lists(st.integers(min_value=1, max_value=9), min_size=1, max_size=8)


@dataclass(frozen=True)
class Seen:
    item: Any = None
    error: tuple[Any, ...] | None = None


def describe(error: ItemReadError) -> tuple[Any, ...]:
    return (error.line, error.field, error.raw, str(error))


def by_read(reader: Any) -> list[Seen]:
    seen = []
    while True:
        try:
            item = reader.read()
        except ItemReadError as exc:
            seen.append(Seen(error=describe(exc)))
            continue
        if item is None:
            return seen
        seen.append(Seen(item))


def by_read_into(reader: Any, sizes: list[int]) -> tuple[list[Seen], list[tuple[int, dict]]]:
    """Everything, in runs of the given sizes (cycled); and (records so far, saved
    context) after each run."""
    seen: list[Seen] = []
    marks = []
    turn = 0
    while True:
        items: list[Any] = []
        n = sizes[turn % len(sizes)]
        turn += 1
        try:
            ended = reader.read_into(items, n)
        except ItemReadError as exc:
            seen.extend(Seen(i) for i in items)
            seen.append(Seen(error=describe(exc)))
            continue
        seen.extend(Seen(i) for i in items)
        assert ended or len(items) == n
        context = ExecutionContext()
        reader.update(context)
        marks.append((len(seen), dict(context)))
        if ended:
            return seen, marks


def check(make: Any, text: str, sizes: list[int], encoding: str = "utf-8") -> None:
    with TemporaryDirectory() as folder:
        path = Path(folder) / "data.csv"
        path.write_bytes(("id,name,qty\n" + text).encode(encoding))
        one = make(str(path))
        one.open(ExecutionContext())
        expected = by_read(one)
        one.close()
        bulk = make(str(path))
        bulk.open(ExecutionContext())
        got, marks = by_read_into(bulk, sizes)
        bulk.close()
        assert got == expected
        for done, context in marks[:: max(1, len(marks) // 4)]:
            again = make(str(path))
            again.open(ExecutionContext(context))
            assert by_read(again) == expected[done:]
            again.close()


@settings(max_examples=150, deadline=None)
@given(kinds=kinds, sizes=sizes)
def test_delimited_read_into_equals_read(kinds: list[str], sizes: list[int]) -> None:
    """DelimitedReader with lists: runs with bad widths, blank lines, bad quoting and
    records over two lines give what read() gives."""
    text = "".join(LINES[k] for k in kinds)
    check(lambda p: DelimitedReader(p, mapper=ListMapper()), text, sizes)


@settings(max_examples=60, deadline=None)
@given(kinds=kinds, sizes=sizes)
def test_delimited_utf16_read_into_equals_read(kinds: list[str], sizes: list[int]) -> None:
    """The same in UTF-16, whose lines are read two bytes a unit (seek and tell included)."""
    text = "".join(LINES[k] for k in kinds)
    check(
        lambda p: DelimitedReader(p, mapper=ListMapper(), encoding="utf-16"),
        text,
        sizes,
        encoding="utf-16",
    )


@settings(max_examples=100, deadline=None)
@given(kinds=kinds, sizes=sizes)
def test_delimited_dicts_read_into_equals_read(kinds: list[str], sizes: list[int]) -> None:
    """The same with the default mapper (dicts)."""
    text = "".join(LINES[k] for k in kinds)
    check(lambda p: DelimitedReader(p), text, sizes)


@settings(max_examples=150, deadline=None)
@given(kinds=kinds, sizes=sizes, unterminated=st.booleans())
def test_records_read_into_equals_read(
    kinds: list[str], sizes: list[int], unterminated: bool
) -> None:
    """CsvRecordReader: records over two lines, blank lines and an unterminated quote at
    the end give what read() gives."""
    text = "".join(LINES[k] for k in kinds) + ('9,"open\n' if unterminated else "")
    check(lambda p: CsvRecordReader(p), text, sizes)


def test_a_long_ordinary_file_is_read_in_bulk(tmp_path: Path) -> None:
    """Ordinary records take the bulk path (it never misses), and the items are right."""
    path = tmp_path / "data.csv"
    path.write_text("id,name\n" + "".join(f"{i},n{i}\n" for i in range(5000)))
    reader = DelimitedReader(str(path), mapper=ListMapper())
    reader.open(ExecutionContext())
    items: list[Any] = []
    while not reader.read_into(items, 128):
        pass
    assert items == [[str(i), f"n{i}"] for i in range(5000)]
    assert reader.bulk and reader._bulk_misses == 0 and reader._bulk_calls > 30


class NoneForFive:
    """A mapper whose function returns None for the record with id 5."""

    def bind(self, names: Any) -> Any:
        return lambda values: None if values[0] == "5" else tuple(values)

    def from_mapping(self, record: Any) -> Any:
        raise NotImplementedError


def test_mapped_runs_and_a_mapper_returning_none(tmp_path: Path) -> None:
    """Mapped records are read in runs too; a run where the mapper returns None is read
    again by read(), which raises for that record with its line, the others kept."""
    path = tmp_path / "data.csv"
    path.write_text("id,name\n" + "".join(f"{i},n{i}\n" for i in range(300)))
    reader = DelimitedReader(str(path), mapper=NoneForFive())
    reader.open(ExecutionContext())
    items: list[Any] = []
    errors = []
    while True:
        try:
            if reader.read_into(items, 100):
                break
        except ItemReadError as exc:
            errors.append((exc.line, str(exc)))
    assert [item[0] for item in items] == [str(i) for i in range(300) if i != 5]
    assert len(errors) == 1 and errors[0][0] == 7 and "returned None" in errors[0][1]
    assert reader._bulk_calls > 5 and reader._bulk_misses == 1
