"""Built-in partitioners: exact cover of the work, bounded queries and reads, no key lists."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import fsspec
import pytest
import sqlalchemy as sa
from fsspec.implementations.memory import MemoryFile
from hypothesis import given, settings
from hypothesis import strategies as st

from batchline import ConfigurationError, ExecutionContext
from batchline.partitioners import (
    FileRangePartitioner,
    FilesPartitioner,
    IntegerRangePartitioner,
    KeyRangePartitioner,
    LineRangeReader,
    TablePartitioner,
    TableRangeReader,
)
from batchline.partitioners.ranges import split_integers
from batchline.repository.database import create_engine


def read_all(reader: Any, context: ExecutionContext | None = None) -> list[Any]:
    reader.open(context or ExecutionContext())
    try:
        return list(iter(reader.read, None))
    finally:
        reader.close()


class TestRanges:
    @given(st.integers(-50, 50), st.integers(-1, 200), st.integers(1, 20))
    def test_integer_ranges_cover_exactly(self, first: int, length: int, grid: int) -> None:
        """The ranges are contiguous, cover first..last once, and differ in size by one at most."""
        last = first + length - 1
        ranges = split_integers(first, last, grid)
        covered = [i for lo, hi in ranges for i in range(lo, hi + 1)]
        assert covered == list(range(first, last + 1))
        assert len(ranges) == min(grid, max(length, 0))
        sizes = {hi - lo + 1 for lo, hi in ranges}
        assert not sizes or max(sizes) - min(sizes) <= 1

    def test_integer_partitioner_contexts(self) -> None:
        """Each context holds its inclusive bounds."""
        assert IntegerRangePartitioner(1, 10).partition(3) == [
            {"partition.min": 1, "partition.max": 4},
            {"partition.min": 5, "partition.max": 7},
            {"partition.min": 8, "partition.max": 10},
        ]

    def test_key_ranges_are_half_open_between_boundaries(self) -> None:
        """n boundaries give n + 1 ranges, open at both ends."""
        assert KeyRangePartitioner(["g", "p"]).partition(99) == [
            {"partition.min": None, "partition.below": "g"},
            {"partition.min": "g", "partition.below": "p"},
            {"partition.min": "p", "partition.below": None},
        ]

    def test_key_boundaries_must_be_sorted(self) -> None:
        """Unsorted or repeated boundaries are refused."""
        with pytest.raises(ConfigurationError):
            KeyRangePartitioner(["p", "g"])
        with pytest.raises(ConfigurationError):
            KeyRangePartitioner(["g", "g"])


@pytest.fixture
def table_db(db_url: str) -> Any:
    """Table ``items`` with sparse integer ids and a unique string code, on every backend."""
    bind = create_engine(db_url)
    meta = sa.MetaData()
    items = sa.Table(
        "items",
        meta,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("code", sa.String(20), nullable=False, unique=True),
    )
    meta.create_all(bind)
    ids = [*range(1, 101), *range(1001, 1051)]  # a gap: equal-width splits come out empty
    with bind.begin() as conn:
        conn.execute(items.insert(), [{"id": i, "code": f"c{i:05d}"} for i in ids])
    yield bind, ids
    bind.dispose()


class TestTable:
    def test_integer_key_one_query_per_split_and_empty_splits_dropped(self, table_db: Any) -> None:
        """One stats query, then one min/max/count query per split; readers cover every row."""
        bind, ids = table_db
        statements: list[str] = []
        sa.event.listen(bind, "before_cursor_execute", lambda *a: statements.append(a[2]))
        contexts = TablePartitioner(bind, "items", "id").partition(8)
        queries = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
        assert len(queries) == 1 + 8
        assert sum(c["partition.count"] for c in contexts) == len(ids)
        assert len(contexts) < 8  # the splits inside the gap held no row
        seen = []
        for context in contexts:
            reader = TableRangeReader(
                bind,
                "items",
                "id",
                lower=context["partition.min"],
                upper=context["partition.max"],
                page_size=7,
            )
            rows = read_all(reader)
            assert len(rows) == context["partition.count"]
            seen += [r["id"] for r in rows]
        assert seen == ids

    def test_string_key_cut_at_quantiles(self, table_db: Any) -> None:
        """A non-integer key is cut at quantiles into disjoint ranges covering every row."""
        bind, ids = table_db
        contexts = TablePartitioner(bind, "items", "code").partition(4)
        assert len(contexts) == 4
        seen = []
        for context in contexts:
            reader = TableRangeReader(
                bind,
                "items",
                "code",
                lower=context["partition.min"],
                below=context["partition.below"],
                columns=["id"],
            )
            seen += [r["id"] for r in read_all(reader)]
        assert seen == ids

    def test_reader_restarts_after_its_last_key(self, table_db: Any) -> None:
        """A new reader opened on the saved context goes on after the last row handed out."""
        bind, ids = table_db
        first = TableRangeReader(bind, "items", "id", lower=1, upper=100, page_size=10)
        context = ExecutionContext()
        first.open(context)
        head = [first.read() for _ in range(15)]
        first.update(context)
        first.close()
        rest = read_all(TableRangeReader(bind, "items", "id", lower=1, upper=100), context)
        assert [r["id"] for r in head + rest] == ids[:100]  # type: ignore[index]

    def test_empty_table_gives_no_partition(self, table_db: Any) -> None:
        """No rows, no partitions."""
        bind, _ = table_db
        assert TablePartitioner(bind, "items", "id", where="id < 0").partition(4) == []


class Tracked(MemoryFile):
    """An in-memory file that records the offset of every read."""

    offsets: list[int]

    def read(self, size: int | None = -1) -> bytes:
        self.offsets.append(self.tell())
        return super().read(size)

    def readline(self, size: int | None = -1) -> bytes:
        self.offsets.append(self.tell())
        return super().readline(size)


class TestFiles:
    def test_one_partition_per_matching_file(self, tmp_path: Path) -> None:
        """Files matching the pattern, sorted; folders and other names left out."""
        for name in ("b.csv", "a.csv", "notes.txt"):
            (tmp_path / name).write_text("x\n")
        (tmp_path / "sub.csv").mkdir()
        contexts = FilesPartitioner(str(tmp_path), "*.csv").partition(1)
        assert [Path(c["partition.file"]).name for c in contexts] == ["a.csv", "b.csv"]
        assert read_all(LineRangeReader(contexts[0]["partition.file"])) == ["x"]

    @settings(max_examples=40, deadline=None)
    @given(
        st.lists(st.text("abcé,", max_size=30), min_size=1, max_size=60),
        st.integers(1, 9),
        st.booleans(),
    )
    def test_byte_ranges_align_on_lines_and_no_partition_reads_before_its_own(
        self, lines: list[str], grid: int, header: bool
    ) -> None:
        """Every line lands in exactly one range; a range's reader never reads before it."""
        data = "".join(f"{line}\n" for line in lines).encode()
        fs = fsspec.filesystem("memory")
        path = f"/ranges-{uuid.uuid4().hex}.txt"
        tracked = Tracked(fs, path, data)
        tracked.offsets = []
        fs.store[path] = tracked
        try:
            contexts = FileRangePartitioner(f"memory://{path}", skip_header=header).partition(grid)
            got: list[str] = []
            for context in contexts:
                start, end = context["partition.start"], context["partition.end"]
                assert start == 0 or data[start - 1 : start] == b"\n"  # a line starts here
                tracked.offsets = []
                reader = LineRangeReader(context["partition.file"], start, end)
                got += read_all(reader)
                assert min(tracked.offsets) >= start
                assert reader.position == end
            assert got == lines[1:] if header else got == lines
        finally:
            fs.store.pop(path, None)

    def test_line_reader_restarts_at_its_saved_offset(self, tmp_path: Path) -> None:
        """The byte offset saved at a commit resumes the range at the next line."""
        path = tmp_path / "lines.txt"
        path.write_text("".join(f"line {i}\n" for i in range(10)))
        first = LineRangeReader(str(path), 0, path.stat().st_size)
        context = ExecutionContext()
        first.open(context)
        head = [first.read() for _ in range(4)]
        first.update(context)
        first.close()
        rest = read_all(LineRangeReader(str(path), 0, path.stat().st_size), context)
        assert head + rest == [f"line {i}" for i in range(10)]
