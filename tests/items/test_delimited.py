from __future__ import annotations

import bz2
import csv
import gzip
import lzma
from pathlib import Path

import pytest

from batchline import ExecutionContext, ItemReadError
from batchline.errors import ConfigurationError
from batchline.items.files.delimited import DelimitedReader, DelimitedWriter
from batchline.items.files.mapping import Field, ListMapper, RecordMapper
from batchline.testing.contract import check_reader, check_writer

ROWS = [
    {"id": "1", "name": "plain", "note": "x"},
    {"id": "2", "name": "with, comma", "note": 'with "quotes"'},
    {"id": "3", "name": "multi\nline", "note": "y"},
    {"id": "4", "name": "été ünïcödé", "note": ""},
    {"id": "5", "name": "last", "note": "z"},
]


def many_rows(n: int) -> list[dict[str, str]]:
    return [{"id": str(i), "name": f"n{i * 7919 % 10007}", "note": str(i * i)} for i in range(n)]


def write_csv(path: Path, rows: list[dict[str, str]], **options: object) -> Path:
    encoding = str(options.pop("encoding", "utf-8"))
    with path.open("w", newline="", encoding=encoding) as f:
        writer = csv.DictWriter(f, fieldnames=["id", "name", "note"], **options)  # type: ignore[arg-type]
        writer.writeheader()
        writer.writerows(rows)
    return path


def read_all(reader: DelimitedReader[object]) -> list[object]:
    reader.open(ExecutionContext())
    try:
        return list(iter(reader.read, None))
    finally:
        reader.close()


class TestDelimitedReader:
    def test_contract_with_quoted_newlines(self, tmp_path: Path) -> None:
        """The CSV reader passes the contract kit on a file with quotes and embedded newlines."""
        path = write_csv(tmp_path / "in.csv", ROWS)
        empty = tmp_path / "empty.csv"
        empty.write_bytes(b"id,name,note\n")
        bad = tmp_path / "bad.csv"
        bad.write_bytes(b'id,name,note\n1,a,b\n2,"x"y,c\n3,c\n4,\xff,d\n5,e,f\n')
        check_reader(
            lambda: DelimitedReader(str(path)),
            expected=ROWS,
            chunk_size=2,
            empty=lambda: DelimitedReader(str(empty)),
            malformed=lambda: DelimitedReader(str(bad)),
            malformed_expected=[
                {"id": "1", "name": "a", "note": "b"},
                {"id": "5", "name": "e", "note": "f"},
            ],
            malformed_errors=3,
        )

    @pytest.mark.parametrize("chunk", [1, 3])
    def test_contract_for_every_encoding(self, tmp_path: Path, chunk: int) -> None:
        """Latin-1, cp1252, UTF-8 with BOM and UTF-16 (BOM, LE, BE) read and restart exactly."""
        for encoding in ("latin-1", "cp1252", "utf-8-sig", "utf-16", "utf-16-be", "utf-32"):
            path = write_csv(tmp_path / f"{encoding}.csv", ROWS, encoding=encoding)
            check_reader(
                lambda p=path, e=encoding: DelimitedReader(str(p), encoding=e),
                expected=ROWS,
                chunk_size=chunk,
            )

    @pytest.mark.parametrize("suffix", [".gz", ".bz2", ".xz"])
    def test_contract_for_compressed_files(self, tmp_path: Path, suffix: str) -> None:
        """gzip, bz2 and xz files read and restart at every chunk; a truncated one errors once
        and ends."""
        compress = {".gz": gzip.compress, ".bz2": bz2.compress, ".xz": lzma.compress}[suffix]
        rows = many_rows(3000)
        plain = write_csv(tmp_path / "in.csv", rows).read_bytes()
        path = tmp_path / f"in.csv{suffix}"
        path.write_bytes(compress(plain))
        cut = tmp_path / f"cut.csv{suffix}"
        cut.write_bytes(compress(plain)[: len(compress(plain)) // 2])
        check_reader(
            lambda: DelimitedReader(str(path)),
            expected=rows,
            chunk_size=701,
            malformed=lambda: DelimitedReader(str(cut)),
            malformed_errors=1,
        )

    def test_tsv_and_other_separators(self, tmp_path: Path) -> None:
        """TSV through the excel-tab dialect and a ';' separator read the same records."""
        tsv = write_csv(tmp_path / "in.tsv", ROWS, dialect="excel-tab")
        semi = write_csv(tmp_path / "in.txt", ROWS, delimiter=";")
        assert read_all(DelimitedReader(str(tsv), dialect="excel-tab")) == ROWS
        assert read_all(DelimitedReader(str(semi), delimiter=";")) == ROWS

    def test_header_skip_validate_and_none(self, tmp_path: Path) -> None:
        """A header is used, skipped for given names, validated against them, or absent."""
        path = write_csv(tmp_path / "in.csv", ROWS[:2])
        names = ["a", "b", "c"]
        skipped = read_all(DelimitedReader(str(path), header="skip", names=names))
        assert skipped == [dict(zip(names, r.values(), strict=True)) for r in ROWS[:2]]
        valid = DelimitedReader(str(path), header="validate", names=["id", "name", "note"])
        assert read_all(valid) == ROWS[:2]
        wrong = DelimitedReader(str(path), header="validate", names=["id", "nom", "note"])
        with pytest.raises(ItemReadError, match=r"in\.csv, line 1, field '#2': header"):
            wrong.open(ExecutionContext())
        raw = read_all(DelimitedReader(str(path), header="none", mapper=ListMapper()))
        assert raw[0] == ["id", "name", "note"]

    def test_preamble_lines_comments_and_blank_lines(self, tmp_path: Path) -> None:
        """skip_lines drops a preamble; comment records and blank lines are not items."""
        path = tmp_path / "in.csv"
        path.write_text("exported by X\nat noon\nid,name\n1,a\n\n# a comment\n2,b\n")
        reader = DelimitedReader(str(path), skip_lines=2, comment="#")
        assert read_all(reader) == [{"id": "1", "name": "a"}, {"id": "2", "name": "b"}]

    def test_read_after_error_returns_next_good_record(self, tmp_path: Path) -> None:
        """Each bad record raises an error naming file, line and field; the next read goes on."""
        path = tmp_path / "bad.csv"
        path.write_bytes(b'id,name,note\n"x"y,a,b\n1,2\n1,2,3,4\n\xe9,b,c\n7,"ok",8\n')
        reader = DelimitedReader(str(path))
        reader.open(ExecutionContext())
        messages = []
        for _ in range(4):
            with pytest.raises(ItemReadError) as caught:
                reader.read()
            messages.append(str(caught.value).replace(f"{tmp_path}/", ""))
        assert messages == [
            "bad.csv, line 2, field 'id': bad quoting: ',' expected after '\"'",
            "bad.csv, line 3, field 'note': expected 3 fields, found 2 (missing 'note')",
            "bad.csv, line 4, field '#4': expected 3 fields, found 4",
            "bad.csv, line 5, field 'id': bytes b'\\xe9' are not valid utf-8",
        ]
        assert reader.read() == {"id": "7", "name": "ok", "note": "8"}
        assert reader.read() is None
        reader.close()

    def test_error_names_the_field_in_a_later_column(self, tmp_path: Path) -> None:
        """Bad quoting in the third field is reported on that field, with the full path."""
        path = tmp_path / "bad.csv"
        path.write_text('id,name,note\n1,"a,b","c"d\n')
        reader = DelimitedReader(str(path))
        reader.open(ExecutionContext())
        with pytest.raises(ItemReadError) as caught:
            reader.read()
        assert (caught.value.source, caught.value.line, caught.value.field) == (
            str(path),
            2,
            "note",
        )
        assert caught.value.raw == '1,"a,b","c"d'
        reader.close()

    def test_restart_does_not_reread_the_start(self, tmp_path: Path) -> None:
        """A restart seeks to the saved offset: the bytes before it are never parsed again."""
        path = write_csv(tmp_path / "in.csv", ROWS)
        reader = DelimitedReader(str(path))
        reader.open(ExecutionContext())
        reader.read()
        reader.read()
        context = ExecutionContext()
        reader.update(context)
        reader.close()
        data = path.read_bytes()
        offset = context["reader.offset"]
        # Garble everything between the header and the offset: a restart must not notice.
        header_end = data.index(b"\n") + 1
        path.write_bytes(data[:header_end] + b"#" * (offset - header_end) + data[offset:])
        resumed = DelimitedReader(str(path))
        resumed.open(context)
        assert resumed.read() == ROWS[2]
        assert context["reader.line"] == 3 and context["reader.count"] == 2
        resumed.close()

    def test_unsupported_encoding_is_refused(self) -> None:
        """A stateful encoding cannot be read by line: refused when the reader is built."""
        with pytest.raises(ConfigurationError, match="utf-7"):
            DelimitedReader("x.csv", encoding="utf-7")


class TestDelimitedWriter:
    def test_contract_with_header_and_footer(self, tmp_path: Path) -> None:
        """The CSV writer passes the contract kit: restart and retry give identical bytes."""
        out = tmp_path / "out.csv"
        report = check_writer(
            lambda: DelimitedWriter(
                str(out), fields=["id", "name", "note"], header=True, footer=lambda n: f"# {n}"
            ),
            ROWS,
            out.read_bytes,
            chunk_size=2,
            expected_empty=b"id,name,note\n# 0\n",
        )
        assert report.output.endswith(b"# 5\n")
        out.write_bytes(report.output)
        assert read_all(DelimitedReader(str(out), comment="#")) == ROWS

    @pytest.mark.parametrize("encoding", ["utf-16", "cp1252"])
    def test_contract_gzip_and_encodings(self, tmp_path: Path, encoding: str) -> None:
        """Gzip members per chunk and non-UTF-8 encodings restart to identical bytes."""
        out = tmp_path / "out.csv.gz"
        report = check_writer(
            lambda: DelimitedWriter(
                str(out), fields=["id", "name", "note"], header=True, encoding=encoding
            ),
            ROWS,
            out.read_bytes,
            chunk_size=2,
        )
        out.write_bytes(report.output)
        reader = DelimitedReader(str(out), encoding=encoding)
        assert read_all(reader) == ROWS

    def test_dataclass_and_tuple_items(self, tmp_path: Path) -> None:
        """Dataclass items are written by field name; bools, dates and None formatted."""
        import dataclasses
        import datetime as dt

        @dataclasses.dataclass
        class Row:
            id: int
            day: dt.date
            ok: bool
            note: str | None

        out = tmp_path / "out.tsv"
        writer = DelimitedWriter(
            str(out), fields=["id", "day", "ok", "note"], header=True, dialect="excel-tab"
        )
        check_writer(
            lambda: writer,
            [Row(1, dt.date(2024, 2, 29), True, None), Row(2, dt.date(2024, 3, 1), False, "x")],
            out.read_text,
            expected="id\tday\tok\tnote\n1\t2024-02-29\ttrue\t\n2\t2024-03-01\tfalse\tx\n",
        )


def read_errors(reader: DelimitedReader[object], reads: int) -> list[object]:
    """``reads`` reads, each error recorded in place of its item."""
    reader.open(ExecutionContext())
    out: list[object] = []
    try:
        for _ in range(reads):
            try:
                out.append(reader.read())
            except ItemReadError as exc:
                out.append(exc)
    finally:
        reader.close()
    return out


def csv_chars_parsed(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the characters every csv reader made from now on is handed."""
    seen = [0]
    real = csv.reader

    def counted(lines: object, *args: object, **kwargs: object) -> object:
        def feed() -> object:
            for line in lines:  # type: ignore[attr-defined]
                seen[0] += len(line)
                yield line

        return real(feed(), *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(csv, "reader", counted)
    return seen


class TestHostileInput:
    def test_utf8_bom_stays_out_of_the_first_name(self, tmp_path: Path) -> None:
        """A BOM before the header is skipped; restarts at every offset still read the same."""
        path = tmp_path / "bom.csv"
        path.write_bytes(b"\xef\xbb\xbfid,name,note\n1,a,x\n2,b,y\n3,c,z\n")
        rows = [{"id": str(i), "name": n, "note": x} for i, n, x in ((1, "a", "x"), (2, "b", "y"))]
        rows.append({"id": "3", "name": "c", "note": "z"})
        check_reader(lambda: DelimitedReader(str(path)), expected=rows, chunk_size=1)

    def test_a_bom_later_in_the_file_is_data(self, tmp_path: Path) -> None:
        """Only byte 0 is a BOM: the same bytes at the start of a later line stay in the value."""
        path = tmp_path / "bom.csv"
        path.write_bytes(b"id\n\xef\xbb\xbf1\n")
        assert read_all(DelimitedReader(str(path))) == [{"id": "\ufeff1"}]

    def test_stray_cr_is_a_skippable_error_naming_the_field(self, tmp_path: Path) -> None:
        """A CR inside an unquoted field fails that record only, with file, line and field."""
        path = tmp_path / "cr.csv"
        path.write_bytes(b"id,name,note\n1,a\rb,x\n2,c,y\n")
        found = read_errors(DelimitedReader(str(path)), 3)
        error = found[0]
        assert isinstance(error, ItemReadError)
        assert (error.source, error.line, error.field) == (str(path), 2, "name")
        assert error.raw == "1,a\rb,x"
        assert found[1:] == [{"id": "2", "name": "c", "note": "y"}, None]

    def test_field_size_limit_is_an_option(self, tmp_path: Path) -> None:
        """A field over the default 128 KiB fails its record only; a larger limit reads it; a
        smaller limit refuses a field the csv module's default would let through."""
        path = tmp_path / "big.csv"
        big = "x" * (129 * 1024)
        path.write_text(f'id,name,note\n1,{big},a\n2,"{big}",b\n3,short,c\n')
        found = read_errors(DelimitedReader(str(path)), 4)
        assert [e.line for e in found[:2] if isinstance(e, ItemReadError)] == [2, 3]
        assert all(isinstance(e, ItemReadError) and e.field == "name" for e in found[:2])
        assert found[2:] == [{"id": "3", "name": "short", "note": "c"}, None]
        roomy = read_all(DelimitedReader(str(path), field_size_limit=256 * 1024))
        assert [r["name"] for r in roomy] == [big, big, "short"]  # type: ignore[index]
        tight = read_errors(DelimitedReader(str(path), field_size_limit=4), 4)
        assert [e.line if isinstance(e, ItemReadError) else e for e in tight] == [2, 3, 4, None]
        assert isinstance(tight[2], ItemReadError) and tight[2].field == "name"

    @pytest.mark.parametrize("fields", [2_000])
    def test_quoting_error_on_a_wide_line_is_linear(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fields: int
    ) -> None:
        """Finding the failing field of a bad line with 16x the fields costs at most ~16x the
        csv parsing (it re-parsed every prefix, 256x, before)."""

        def parsed_chars(width: int) -> int:
            path = tmp_path / f"wide{width}.csv"
            line = ",".join(["v"] * (width - 1) + ['"bad"x'])
            path.write_text(",".join(f"c{i}" for i in range(width)) + "\n" + line + "\n")
            seen = csv_chars_parsed(monkeypatch)
            found = read_errors(DelimitedReader(str(path)), 2)
            monkeypatch.undo()
            assert isinstance(found[0], ItemReadError) and found[0].field == f"c{width - 1}"
            return seen[0]

        small, large = parsed_chars(fields), parsed_chars(fields * 16)
        assert large <= 20 * small, (small, large)

    def test_mapper_returning_none_is_an_error_not_the_end(self, tmp_path: Path) -> None:
        """A mapper's None would end the input silently: it is a read error and reading goes on."""
        path = tmp_path / "m.csv"
        path.write_text("id\n1\n2\n3\n")
        mapper = RecordMapper(lambda id: None if id == "2" else int(id), Field("id"))
        reader = DelimitedReader(str(path), mapper=mapper)
        found = read_errors(reader, 4)
        assert found[0] == 1 and found[2:] == [3, None]
        assert isinstance(found[1], ItemReadError) and found[1].line == 3
        assert found[1].raw == "2"

    def test_refused_records_carry_their_raw_text(self, tmp_path: Path) -> None:
        """Wrong field counts and values that do not convert keep the record's raw text,
        both lines of a record that spans two."""
        path = tmp_path / "raw.csv"
        path.write_text('id,name,note\n1,a\n"x\ny",b,c,d\n3,b,c\n')
        found = read_errors(DelimitedReader(str(path)), 4)
        assert [e.raw for e in found[:2] if isinstance(e, ItemReadError)] == [
            "1,a",
            '"x\ny",b,c,d',
        ]
        assert found[2:] == [{"id": "3", "name": "b", "note": "c"}, None]
