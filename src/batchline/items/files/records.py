"""Raw CSV records, not parsed: the pass-through reader for loading a file into a database that
parses CSV itself (PostgreSQL's ``COPY ... (FORMAT csv)``).

Each item is the record's bytes as they are in the file, line terminator included. A record ends
at a newline outside quotes, found by counting quote characters (RFC 4180: a quote inside a
quoted field is doubled, which leaves the count even), so a quoted field may span lines.
Nothing else is checked here: the database rejects a bad value, and its error names the line of
the chunk. Restart, offsets and gzip are as for every line-based reader.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from itertools import islice, repeat
from typing import Any

from batchline.errors import ConfigurationError
from batchline.items.files.reader import LineFileReader
from batchline.items.files.storage import StorageOptions


class CsvRecordReader(LineFileReader[bytes]):
    """Reads raw records; ``header`` is "skip", "validate" (against ``names``) or "none".

    ASCII-compatible encodings only (the bytes go to the database unchanged; tell it the
    encoding). ``names`` is set from the header when it is read.
    """

    def __init__(
        self,
        path: str,
        *,
        header: str = "skip",
        names: Sequence[str] | None = None,
        delimiter: str = ",",
        quotechar: str = '"',
        encoding: str = "utf-8",
        compression: str | None = "infer",
        storage_options: StorageOptions = None,
        skip_lines: int = 0,
        name: str = "reader",
    ) -> None:
        super().__init__(
            path,
            encoding=encoding,
            compression=compression,
            storage_options=storage_options,
            skip_lines=skip_lines,
            name=name,
        )
        if self.codec.unit != 1:
            raise ConfigurationError(f"{path}: raw CSV records need an ASCII-compatible encoding")
        if header not in ("skip", "validate", "none"):
            raise ConfigurationError(f"{path}: header must be skip, validate or none")
        if header == "validate" and not names:
            raise ConfigurationError(f"{path}: header='validate' needs the expected names")
        self.header = header
        self.expected = list(names) if names else None
        self.names: list[str] | None = self.expected
        self.delimiter = delimiter
        self._quote = quotechar.encode("ascii")

    def start(self) -> None:
        if self.header == "none":
            return
        first = self.line + 1
        raw = self._record()
        if raw is None:
            return
        self.raw = raw
        try:
            text = self.codec.decode(raw)
        except UnicodeDecodeError as exc:
            raise self.error(f"unreadable header: {self.decode_error(exc)}", first) from None
        try:
            found = next(csv.reader([text], delimiter=self.delimiter), [])
        except csv.Error as exc:
            raise self.error(f"unreadable header: {exc}", first) from None
        self.names = found
        if self.header == "validate" and found != self.expected:
            raise self.error(f"header {found} differs from the expected {self.expected}", 1)

    def read(self) -> bytes | None:
        blocked = self._lines is None or self.pending is not None or self.ended
        if blocked and not self.ready():
            return None
        readline, quote = self._lines.readline, self._quote
        while True:
            try:
                line: bytes = readline()
            except self.stream_errors as exc:
                raise self.stream_error(exc, self.line + 1) from None
            if not line:
                return None
            self.line += 1
            if line.count(quote) % 2:
                self.raw = line
                line = self._rest_of(line)
            elif line == b"\n" or line == b"\r\n":
                continue  # a blank line
            self.count += 1
            return line

    def _bulk_allowed(self) -> bool:
        return type(self).read is CsvRecordReader.read

    def _bulk(self, items: list[Any], n: int) -> bool | None:
        """Whole lines in C; a run with a record spanning lines or a blank line is read
        again by ``read()``."""
        got = list(islice(iter(self._lines.readline, b""), n))
        if got:
            counts = map(bytes.count, got, repeat(self._quote))
            if any(map((1).__and__, counts)) or b"\n" in got or b"\r\n" in got:
                return None
            items.extend(got)
            self.line += len(got)
            self.count += len(got)
            self.raw = got[-1]
        return len(got) < n

    def _record(self) -> bytes | None:
        """One record from the current position (the header)."""
        line = self.readline()
        if not line:
            return None
        return self._rest_of(line) if line.count(self._quote) % 2 else line

    def _rest_of(self, line: bytes) -> bytes:
        """The lines that complete a record whose quote is still open after ``line``."""
        first = self.line
        parts = [line]
        quotes = line.count(self._quote)
        while quotes % 2:
            try:
                more = self.readline()
            except self.stream_errors as exc:
                raise self.stream_error(exc, self.line + 1) from None
            if not more:
                self.count += 1
                self.raw = b"".join(parts)
                raise self.error("unterminated quoted field at the end of the file", first)
            parts.append(more)
            quotes += more.count(self._quote)
        return b"".join(parts)
