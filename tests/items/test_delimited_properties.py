"""Property tests: whatever the text, writing then reading a delimited file gives it back, and a
restart at any record resumes exactly there."""

from __future__ import annotations

from pathlib import Path
from tempfile import TemporaryDirectory

from hypothesis import given, settings
from hypothesis import strategies as st

from batchline import ExecutionContext
from batchline.items.files.delimited import DelimitedReader, DelimitedWriter
from batchline.items.files.mapping import ListMapper
from batchline.testing.contract import check_writer

# Any text the csv module can round-trip: no NUL, no lone surrogates.
cells = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12
)
rows = st.lists(st.lists(cells, min_size=3, max_size=3), max_size=12)


@settings(max_examples=40, deadline=None)
@given(
    rows=rows,
    encoding=st.sampled_from(["utf-8", "utf-16", "utf-8-sig"]),
    terminator=st.sampled_from(["\n", "\r\n"]),
    cut=st.integers(min_value=0, max_value=12),
    delimiter=st.sampled_from([",", ";", "\t", "|"]),
)
def test_write_read_restart_round_trip(
    rows: list[list[str]], encoding: str, terminator: str, cut: int, delimiter: str
) -> None:
    """Rows with quotes, delimiters and newlines survive a write, and a restart after any
    record reads exactly the rest."""
    with TemporaryDirectory() as folder:
        path = str(Path(folder) / "data.csv")
        report = check_writer(
            lambda: DelimitedWriter(
                path,
                fields=["a", "b", "c"],
                header=True,
                encoding=encoding,
                line_separator=terminator,
                delimiter=delimiter,
            ),
            rows,
            lambda: Path(path).read_bytes(),
            chunk_size=5,
        )
        Path(path).write_bytes(report.output)

        def reader() -> DelimitedReader[list[str]]:
            return DelimitedReader(
                path, mapper=ListMapper(), encoding=encoding, delimiter=delimiter
            )

        first = reader()
        first.open(ExecutionContext())
        head = [first.read() for _ in range(min(cut, len(rows)))]
        context = ExecutionContext()
        first.update(context)
        first.close()
        second = reader()
        second.open(ExecutionContext.from_json(context.to_json()))
        tail = list(iter(second.read, None))
        second.close()
        expected = [row for row in rows if row != []]
        assert head + tail == expected
