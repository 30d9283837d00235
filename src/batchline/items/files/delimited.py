"""Delimited files (CSV, TSV, any separator) through the csv module: reader and writer.

Quoted fields may hold the delimiter and newlines; a record then spans lines and the saved
offset is the one after its last line. Blank lines are skipped. ``strict`` quoting is on by
default, so ``"a"b`` is an error rather than silently read as ``ab``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Mapping, Sequence
from itertools import islice, repeat
from operator import is_
from typing import Any, Literal, TypeVar

from batchline.errors import ConfigurationError, ItemReadError
from batchline.items.files.csv_scan import failing_field
from batchline.items.files.mapping import FieldError, Mapper, as_list, as_mapper
from batchline.items.files.reader import LineFileReader
from batchline.items.files.storage import StorageOptions
from batchline.items.files.writer import FileWriter, Footer

T = TypeVar("T")
Header = Literal["use", "skip", "validate", "none"]
FIELD_SIZE_LIMIT = 128 * 1024  # the csv module's default, in characters
MAPPED_RUN = 32  # records per bulk run when a mapper builds items (see _bulk)


class DelimitedReader(LineFileReader[T]):
    """Reads one item per record.

    ``header``: "use" takes the names from the first record, "skip" ignores it (names come from
    ``names``), "validate" checks it equals ``names``, "none" means the file has no header.
    ``dialect`` and ``fmtparams`` are the csv module's (``dialect="excel-tab"`` for TSV,
    ``delimiter=";"``...). Items are dicts by default; ``mapper`` may be a dataclass or class
    (see RecordMapper) or ``ListMapper()`` for plain lists. A record whose field count differs
    from the names' is an error unless ``strict_fields`` is False, and so is a field longer than
    ``field_size_limit`` characters. The csv module's own limit is one setting per process: a
    reader given a larger limit raises it (never lowers it) and checks its own.
    """

    def __init__(
        self,
        path: str,
        *,
        header: Header = "use",
        names: Sequence[str] | None = None,
        mapper: Mapper[T] | Callable[..., T] | None = None,
        dialect: str | type[csv.Dialect] | csv.Dialect = "excel",
        strict_fields: bool = True,
        comment: str | None = None,
        field_size_limit: int = FIELD_SIZE_LIMIT,
        encoding: str = "utf-8",
        errors: str = "strict",
        compression: str | None = "infer",
        storage_options: StorageOptions = None,
        skip_lines: int = 0,
        name: str = "reader",
        **fmtparams: Any,
    ) -> None:
        super().__init__(
            path,
            encoding=encoding,
            errors=errors,
            compression=compression,
            storage_options=storage_options,
            skip_lines=skip_lines,
            name=name,
        )
        if header not in ("use", "skip", "validate", "none"):
            raise ConfigurationError(f"{path}: header must be use, skip, validate or none")
        if header == "validate" and not names:
            raise ConfigurationError(f"{path}: header='validate' needs the expected names")
        self.header = header
        self.expected_names = list(names) if names else None
        self.names: list[str] | None = self.expected_names
        self.mapper = as_mapper(mapper)
        self.strict_fields = strict_fields
        self.comment = comment
        if field_size_limit < 1:
            raise ConfigurationError(f"{path}: field_size_limit must be at least 1")
        self.field_size_limit = field_size_limit
        self._format: dict[str, Any] = {"dialect": dialect, "strict": True, **fmtparams}
        self._dialect = csv.reader([], **self._format).dialect  # resolved, for the error path
        self._rows: Any = None
        self._own_limit = False
        self._base = 0
        self._mark = (0, 0)  # (offset, physical line) of a known line start, for errors
        self._map: Callable[[list[str]], T] = as_list  # type: ignore[assignment]
        self._width = 0
        # The field count of a record that needs no other check; -1 when every record does
        # (no fixed count, an own size limit, a comment prefix).
        self._expect = -1

    def start(self) -> None:
        self.names = self.expected_names
        if self.header == "none":
            self._bind()
            return
        self.restart()
        unreadable: tuple[type[Exception], ...] = (
            csv.Error,
            UnicodeDecodeError,
            *self.stream_errors,
        )
        try:
            found = next(self._rows, None)
        except unreadable as exc:
            raise self.error(f"unreadable header: {exc}", self.line + 1) from None
        except ValueError as exc:  # QUOTE_NONNUMERIC and a header: refuse it, naming the file
            raise self.error(f"unreadable header: {exc}", self.line + 1) from None
        self.line = self._base + self._rows.line_num
        if found is None:
            return  # an empty file: nothing will be mapped
        if self.header == "use":
            self.names = found
        elif self.header == "validate" and found != self.expected_names:
            wrong = next(
                (
                    f"#{i + 1}"
                    for i, (a, b) in enumerate(zip(found, self.expected_names or [], strict=False))
                    if a != b
                ),
                None,
            )
            raise self.error(
                f"header {found} differs from the expected {self.expected_names}", self.line, wrong
            )
        self._bind()

    def _bind(self) -> None:
        self._map = self.mapper.bind(self.names)
        self._width = len(self.names) if self.names is not None and self.strict_fields else 0
        self._set_checks()

    def _set_checks(self) -> None:
        plain = self._width and not self._own_limit and self.comment is None
        self._expect = self._width if plain else -1

    def restart(self) -> None:
        self._base = self.line
        if csv.field_size_limit() < self.field_size_limit:
            csv.field_size_limit(self.field_size_limit)
        # At the csv module's limit the module enforces it; below it, read() checks the fields.
        self._own_limit = self.field_size_limit < csv.field_size_limit()
        self._set_checks()
        # Lines reach the csv module through C iterators only (no Python frame per line); the
        # csv reader pulls one line at a time, so tell() after a record is still exact.
        lines = self._lines
        self._rows = csv.reader(map(self.codec.decoder, iter(lines.readline, b"")), **self._format)
        self._mark = (int(lines.tell()), self._base)

    def read(self) -> T | None:
        rows = self._rows
        if rows is None or self.pending is not None or self.ended:
            if not self.ready():
                return None
            rows = self._rows
        # The hot path: no offset is taken per record (where a bad record began is found again
        # from the last mark, see _start_of), and one test covers the options that are off.
        while True:
            before = rows.line_num
            try:
                values: list[str] = next(rows)
            except StopIteration:
                return None
            except Exception as exc:
                self._remember_raw(exc, before)
                raise self._failure(exc, before, rows.line_num) from None
            if len(values) == self._expect:
                self.count += 1
            elif not self._accept(values, before):
                continue
            if self._map is as_list:
                return values  # type: ignore[return-value]
            try:
                item = self._map(values)
            except FieldError as exc:
                raise self._bad_record(exc.message, before, exc.field) from None
            if item is None:  # None would read as the end of the input
                raise self._bad_record("the mapper returned None for this record", before)
            return item

    def _bulk_allowed(self) -> bool:
        return type(self).read is DelimitedReader.read

    def _bulk(self, items: list[Any], n: int) -> bool | None:
        """A run of records parsed (and mapped) in C loops; a run with a blank line, a record
        of another width, a parse or mapping error or a mapper returning None is read again
        by ``read()``. Mapped runs are short (``MAPPED_RUN``): each run's parsed lists die
        before the cyclic GC would scan them, which costs more than the loop saves."""
        if self._expect < 0:
            return None
        mapping = self._map is not as_list
        want = min(n, MAPPED_RUN) if mapping else n
        rows = list(islice(self._rows, want))
        if rows:
            if max(map(len, rows)) != self._expect or min(map(len, rows)) != self._expect:
                return None
            if mapping:
                mapped = list(map(self._map, rows))
                if any(map(is_, mapped, repeat(None))):
                    return None
                items.extend(mapped)
            else:
                items.extend(rows)
            self.count += len(rows)
        return len(rows) < want

    def _accept(self, values: list[str], before: int) -> bool:
        """A blank line or comment (False), or a record counted and checked (True); raises for
        a record with the wrong field count or an oversized field."""
        if not values or (self.comment is not None and values[0].startswith(self.comment)):
            return False
        self.count += 1
        if self._own_limit:
            self._check_sizes(values, before)
        if self._width and len(values) != self._width:
            raise self._field_count(values, before)
        return True

    def _check_sizes(self, values: list[str], before: int) -> None:
        limit = self.field_size_limit
        if max(map(len, values)) <= limit:
            return
        for position, value in enumerate(values, 1):
            if len(value) > limit:
                raise self._bad_record(
                    f"field of {len(value)} characters, over field_size_limit={limit}",
                    before,
                    self._label(position),
                )

    def _bad_record(self, message: str, before: int, field: str | None = None) -> ItemReadError:
        """A record parsed but refused: the error carries its raw text (re-read from the file)."""
        self._remember_raw(None, before)
        return self.error(message, self._base + before + 1, field)

    def _start_of(self, before: int) -> int:
        """The offset where the record after csv line ``before`` began: re-read from the last
        mark (the position of a known line: restart, the last commit, the last error), so a
        good record costs no ``tell()`` and a chunk of bad records is scanned once."""
        lines = self._lines
        offset, line = self._mark
        target = self._base + before
        if target < line:  # cannot happen: a mark never passes a record not yet returned
            return offset
        lines.seek(offset)
        readline = lines.readline
        for _ in range(target - line):
            if not readline():
                break
        return int(lines.tell())

    def _remember_raw(self, exc: Exception | None, before: int) -> None:
        """The failed record's physical lines, for the error (error path only)."""
        if isinstance(exc, UnicodeDecodeError) and isinstance(exc.object, bytes):
            self.raw = exc.object
            return
        if isinstance(exc, self.stream_errors):
            return
        lines = self._lines
        end = lines.tell()
        self._start_of(before)  # leaves the stream at the record's first line
        parts = []
        while lines.tell() < end and (raw := lines.readline()):
            parts.append(raw)
        lines.seek(end)
        self.raw = b"".join(parts)
        self._mark = (end, self._base + self._rows.line_num)

    def sync_line(self) -> None:
        if self._rows is not None:
            self.line = self._base + self._rows.line_num
            self._mark = (int(self._lines.tell()), self.line)

    def _failure(self, exc: Exception, before: int, after: int) -> Exception:
        if isinstance(exc, csv.Error):
            return self._resync(self._csv_error(exc, before, after))
        if isinstance(exc, UnicodeDecodeError):
            return self._resync(self._undecodable(exc, before, after))
        if isinstance(exc, self.stream_errors):
            self.line = self._base + after
            return self.stream_error(exc, self.line + 1)
        if isinstance(exc, ValueError):  # QUOTE_NONNUMERIC: an unquoted field is not a number
            self.line = self._base + after
            return self._resync(self.error(f"bad value: {exc}", self._base + before + 1))
        return exc

    def _resync(self, error: ItemReadError) -> ItemReadError:
        """After a parse error the csv reader starts afresh on the line after the bad one."""
        self.count += 1
        self.restart()
        return error

    def _csv_error(self, exc: csv.Error, before: int, after: int) -> ItemReadError:
        self.line = self._base + after
        text = self.raw.decode(self.codec.encoding, "replace")
        limit = min(self.field_size_limit, csv.field_size_limit())
        position = failing_field(text, self._dialect, limit)
        reason = str(exc)
        if "field limit" in reason:
            message = f"a field is over field_size_limit={limit} characters"
        elif "new-line character" in reason:
            message = "a line break inside an unquoted field (a stray CR?); quote the field"
        else:
            message = f"bad quoting: {exc}"
        field = None if position is None else self._label(position)
        return self.error(message, self._base + before + 1, field)

    def _undecodable(self, exc: UnicodeDecodeError, before: int, after: int) -> ItemReadError:
        self.line = self._base + after + 1
        prefix = exc.object[: exc.start].decode(self.codec.encoding, "replace")
        try:
            parsed = next(csv.reader([prefix], **{**self._format, "strict": False}), [""])
        except csv.Error:
            parsed = [""]
        return self.error(self.decode_error(exc), self.line, self._label(max(len(parsed), 1)))

    def _field_count(self, values: list[str], before: int) -> ItemReadError:
        names = self.names or []
        if len(values) < len(names):
            field = names[len(values)]
            message = f"expected {len(names)} fields, found {len(values)} (missing {field!r})"
        else:
            field = f"#{len(names) + 1}"
            message = f"expected {len(names)} fields, found {len(values)}"
        return self._bad_record(message, before, field)

    def _label(self, position: int) -> str:
        names = self.names
        return names[position - 1] if names and position <= len(names) else f"#{position}"


def format_row(fields: Sequence[str] | None) -> Callable[[Any], Sequence[Any]]:
    """A function from an item (mapping, dataclass, object or sequence) to its row of values."""
    if fields is None:
        return _as_sequence
    keys = tuple(fields)

    def row(item: Any) -> Sequence[Any]:
        if isinstance(item, Mapping):
            return [_text(item[k]) for k in keys]
        if isinstance(item, list | tuple):
            return item
        return [_text(getattr(item, k)) for k in keys]

    return row


def _as_sequence(item: Any) -> Sequence[Any]:
    if isinstance(item, list | tuple):
        return item
    if isinstance(item, Mapping):
        return [_text(v) for v in item.values()]
    raise ConfigurationError(f"cannot write {type(item).__name__} items without field names")


def _text(value: Any) -> Any:
    if value is True or value is False:
        return "true" if value else "false"
    isoformat = getattr(value, "isoformat", None)
    return isoformat() if callable(isoformat) else value


class DelimitedWriter(FileWriter[Any]):
    """Writes items as delimited records with the csv module's ``dialect`` and ``fmtparams``.

    ``fields`` names what to take from mapping, dataclass or object items (lists and tuples are
    written as they are); ``header=True`` writes those names as the first line. Booleans become
    ``true``/``false``, dates ISO 8601, None an empty field.
    """

    def __init__(
        self,
        path: str,
        *,
        fields: Sequence[str] | None = None,
        header: bool | str | Callable[[], str] | None = None,
        footer: Footer = None,
        dialect: str | type[csv.Dialect] | csv.Dialect = "excel",
        encoding: str = "utf-8",
        errors: str = "strict",
        compression: str | None = "infer",
        line_separator: str = "\n",
        fsync: bool = False,
        storage_options: StorageOptions = None,
        name: str = "writer",
        lock_timeout: float = 60.0,
        **fmtparams: Any,
    ) -> None:
        if header is True and not fields:
            raise ConfigurationError(f"{path}: header=True needs the field names (fields=...)")
        line_separator = str(fmtparams.pop("lineterminator", line_separator))
        super().__init__(
            path,
            header=None if header is True or header is False else header,
            footer=footer,
            encoding=encoding,
            errors=errors,
            compression=compression,
            line_separator=line_separator,
            fsync=fsync,
            storage_options=storage_options,
            name=name,
            lock_timeout=lock_timeout,
        )
        self.fields = list(fields) if fields else None
        self._names_header = header is True
        self._format = {"dialect": dialect, **fmtparams, "lineterminator": _TERMINATOR}
        try:  # a wrong format parameter is refused here, not at the first chunk's write
            csv.writer(io.StringIO(), **self._format)
        except (TypeError, csv.Error) as exc:
            raise ConfigurationError(f"{path}: DelimitedWriter: {exc}") from None
        self._row = format_row(self.fields)

    def header_text(self) -> str | None:
        if self._names_header and self.fields:
            return self._csv([self.fields])
        return super().header_text()

    def format(self, items: Sequence[Any]) -> str:
        return self._csv(list(map(self._row, items)))

    def _csv(self, rows: list[Sequence[Any]]) -> str:
        """Rows as text. The csv module quotes a field only for the characters of its line
        terminator, so it is given one holding both CR and NL (and a NUL no text file holds),
        which is then replaced by the real separator: a lone CR in a value is quoted too."""
        buffer = io.StringIO()
        csv.writer(buffer, **self._format).writerows(rows)
        text = buffer.getvalue()
        if text.count(_TERMINATOR) == len(rows):
            return text.replace(_TERMINATOR, self.line_separator)
        out = []  # a value holds the marker itself: end each row by hand
        for row in rows:
            buffer = io.StringIO()
            csv.writer(buffer, **self._format).writerow(row)
            out.append(buffer.getvalue()[: -len(_TERMINATOR)] + self.line_separator)
        return "".join(out)


_TERMINATOR = "\r\n\x00"
