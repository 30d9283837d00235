"""Fixed-width files: each field at a fixed range of characters on its line.

Columns are given as ``(name, width)`` (one after another) or ``(name, start, end)`` (0-based
character positions, end excluded). Positions count characters after decoding, so a multi-byte
encoding does not shift the columns.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from batchline.errors import ConfigurationError
from batchline.items.files.delimited import format_row
from batchline.items.files.mapping import FieldError, Mapper, as_mapper
from batchline.items.files.reader import LineFileReader
from batchline.items.files.storage import StorageOptions
from batchline.items.files.writer import FileWriter, Footer, Header

T = TypeVar("T")
ColumnSpec = tuple[str, int] | tuple[str, int, int]


def ranges(columns: Sequence[ColumnSpec]) -> list[tuple[str, int, int]]:
    """Columns as (name, start, end), from widths or explicit ranges."""
    out: list[tuple[str, int, int]] = []
    position = 0
    for spec in columns:
        if len(spec) == 2:
            name, width = spec
            start, end = position, position + width
        else:
            name, start, end = spec
        if start < 0 or end <= start:
            raise ConfigurationError(f"fixed-width column {name!r}: bad range {start}:{end}")
        out.append((name, start, end))
        position = end
    return out


class FixedWidthReader(LineFileReader[T]):
    """One item per non-blank line; values are stripped of the padding unless ``strip=False``.

    A line too short for a column is an error naming that column; with ``strict_length`` a line
    of any other length than the last column's end is one too.
    """

    def __init__(
        self,
        path: str,
        columns: Sequence[ColumnSpec],
        *,
        mapper: Mapper[T] | Callable[..., T] | None = None,
        strip: bool = True,
        strict_length: bool = False,
        encoding: str = "utf-8",
        errors: str = "strict",
        compression: str | None = "infer",
        storage_options: StorageOptions = None,
        skip_lines: int = 0,
        name: str = "reader",
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
        self.columns = ranges(columns)
        self.length = max(end for _, _, end in self.columns)
        self.strip = strip
        self.strict_length = strict_length
        self.mapper = as_mapper(mapper)
        self._map = self.mapper.bind([name for name, _, _ in self.columns])
        self._slices = [slice(start, end) for _, start, end in self.columns]

    def read(self) -> T | None:
        if (self._lines is None or self.pending is not None or self.ended) and not self.ready():
            return None
        while True:
            try:
                raw = self.readline()
            except self.stream_errors as exc:
                raise self.stream_error(exc, self.line + 1) from None
            if not raw:
                return None
            try:
                text = self.codec.decode(raw).rstrip("\r\n")
            except UnicodeDecodeError as exc:
                self.count += 1
                column = self._column_at(len(exc.object[: exc.start].decode(errors="replace")))
                raise self.error(self.decode_error(exc), self.line, column) from None
            if not text.strip():
                continue
            self.count += 1
            if len(text) < self.length or (self.strict_length and len(text) != self.length):
                raise self._length_error(text)
            values = list(map(text.__getitem__, self._slices))
            if self.strip:
                values = list(map(str.strip, values))
            try:
                item = self._map(values)
            except FieldError as exc:
                raise self.error(exc.message, self.line, exc.field) from None
            if item is None:  # None would read as the end of the input
                raise self.error("the mapper returned None for this record", self.line)
            return item  # type: ignore[no-any-return]

    def _length_error(self, text: str) -> Exception:
        if len(text) > self.length:
            return self.error(
                f"line is {len(text)} characters, expected {self.length}", self.line, None
            )
        column = self._column_at(len(text))
        return self.error(
            f"line is {len(text)} characters, too short for this column (ends at "
            f"{next(end for n, _, end in self.columns if n == column)})",
            self.line,
            column,
        )

    def _column_at(self, position: int) -> str:
        for name, start, end in self.columns:
            if start <= position < end:
                return name
        return self.columns[-1][0]


class FixedWidthWriter(FileWriter[Any]):
    """Writes each item's fields padded to their width (``align`` "<" or ">" per column).

    A value longer than its column is an error naming the field, unless ``truncate`` is True.
    """

    def __init__(
        self,
        path: str,
        columns: Sequence[ColumnSpec],
        *,
        align: dict[str, str] | None = None,
        pad: str = " ",
        truncate: bool = False,
        header: Header = None,
        footer: Footer = None,
        encoding: str = "utf-8",
        errors: str = "strict",
        compression: str | None = "infer",
        line_separator: str = "\n",
        fsync: bool = False,
        storage_options: StorageOptions = None,
        name: str = "writer",
        lock_timeout: float = 60.0,
    ) -> None:
        super().__init__(
            path,
            header=header,
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
        self.columns = ranges(columns)
        self.align = dict(align or {})
        self.pad = pad
        self.truncate = truncate
        self._row = format_row([name for name, _, _ in self.columns])

    def format(self, items: Sequence[Any]) -> str:
        lines = []
        for item in items:
            line: list[str] = []
            position = 0
            for (name, start, end), value in zip(self.columns, self._row(item), strict=True):
                text = "" if value is None else str(value)
                width = end - start
                if len(text) > width:
                    if not self.truncate:
                        raise ValueError(
                            f"{self.path}: field {name!r} value {text!r} is longer than {width}"
                        )
                    text = text[:width]
                line.append(self.pad * (start - position))
                if self.align.get(name, "<") == ">":
                    line.append(text.rjust(width, self.pad))
                else:
                    line.append(text.ljust(width, self.pad))
                position = end
            lines.append("".join(line) + self.line_separator)
        return "".join(lines)
