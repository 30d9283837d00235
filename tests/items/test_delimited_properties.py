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


records = st.lists(
    st.tuples(
        st.sampled_from(["good", "bad value", "short", "long"]),
        st.text(st.sampled_from('ab,\n"é '), max_size=6),
        st.booleans(),  # save the position (update) after this record
    ),
    min_size=1,
    max_size=25,
)


@settings(max_examples=60, deadline=None)
@given(records=records, encoding=st.sampled_from(["utf-8", "utf-16"]))
def test_errors_name_the_line_and_raw_record_wherever_the_last_mark_is(
    records: list[tuple[str, str, bool]], encoding: str
) -> None:
    """Good and bad records (multi-line quoted fields, wrong counts, bad values) mixed, with
    updates at random points: every error names the record's first physical line and carries
    exactly its raw text, though no offset is taken per record."""
    import csv
    import io

    from batchline import ItemReadError
    from batchline.items.files.mapping import Field, RecordMapper

    class Row:
        def __init__(self, n: int, text: str) -> None:
            self.n, self.text = n, text

    lines = ["n,text\n"]
    expected: list[tuple[str, int, str] | tuple[str, list[str]]] = []
    line = 2
    for kind, text, _ in records:
        fields = {
            "good": ["7", text],
            "bad value": ["x7", text],
            "short": [text or "a"],
            "long": ["7", text, "extra"],
        }[kind]
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerow(fields)
        written = buffer.getvalue()
        if kind == "good":
            expected.append(("item", ["7", text]))
        else:
            expected.append(("error", line, written.removesuffix("\n")))
        lines.append(written)
        line += written.count("\n")
    with TemporaryDirectory() as folder:
        path = Path(folder) / "mixed.csv"
        path.write_bytes("".join(lines).encode(encoding))
        mapper = RecordMapper(Row, Field("n", type=int), Field("text", default=""))
        reader: DelimitedReader[Row] = DelimitedReader(str(path), mapper=mapper, encoding=encoding)
        reader.open(ExecutionContext())
        found: list[tuple[str, int, str] | tuple[str, list[str]]] = []
        for _, _, save in records:
            try:
                item = reader.read()
                assert item is not None
                found.append(("item", [str(item.n), item.text]))
            except ItemReadError as exc:
                assert exc.line is not None and exc.raw is not None
                found.append(("error", exc.line, exc.raw))
            if save:
                reader.update(ExecutionContext())
        assert reader.read() is None
        reader.close()
    assert found == expected
