"""ArrowCsvReader and ArrowJsonReader: line files parsed by Arrow, by blocks (see blocks.py)."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from batchline.errors import ItemReadError
from batchline.items.arrow.blocks import BLOCK_SIZE, LineBlockReader, pyarrow
from batchline.items.files.storage import StorageOptions

_CSV_COLUMN = re.compile(r"In CSV column #(\d+)")
_JSON_COLUMN = re.compile(r"Column\((/[^)]*)\)")  # a path: "/o/a", "/tags/[]"


class ArrowCsvReader(LineBlockReader):
    """CSV into record batches, typed by Arrow's C++ reader on all cores.

    ``schema`` (a pyarrow Schema, or a mapping of column name to type) gives the columns' types
    and, unless ``columns`` names others, the columns read and their order; without one, Arrow
    infers the types from the first block and keeps them. ``header=False``: the file has no
    header line and the schema names the columns. ``newlines_in_values=True`` allows quoted
    newlines (records then end where an even number of quote characters precedes a newline).
    ``null_values`` are the strings read as null (Arrow's list by default).
    """

    def __init__(
        self,
        path: str,
        *,
        schema: Any = None,
        columns: Sequence[str] | None = None,
        header: bool = True,
        delimiter: str = ",",
        quote_char: str = '"',
        newlines_in_values: bool = False,
        null_values: Sequence[str] | None = None,
        block_size: int = BLOCK_SIZE,
        storage_options: StorageOptions = None,
        name: str = "reader",
    ) -> None:
        super().__init__(path, block_size=block_size, storage_options=storage_options, name=name)
        pa = pyarrow()
        if isinstance(schema, Mapping):
            schema = pa.schema(list(schema.items()))
        self.schema = schema
        self.columns = list(columns) if columns else None
        self.header = header
        self.delimiter = delimiter
        self.quote_char = quote_char
        self.newlines_in_values = newlines_in_values
        self.null_values = list(null_values) if null_values is not None else None
        if not header and schema is None:
            raise ItemReadError("a CSV file without a header needs a schema", source=self.path)
        self._names: list[str] | None = None if header else list(schema.names)
        self._quote = quote_char.encode()

    def __repr__(self) -> str:
        return f"ArrowCsvReader({self.path!r})"

    def _read_header(self, first: bytes) -> tuple[int, int]:
        if not self.header:
            self._check_columns()
            # The first record shows the line ends too: read on, a bare-CR file is one record,
            # its rows read as one (a single bad value skips them all) and numbered line 1.
            end = self._first_boundary(first + b"\n", 0)
            self._refuse_bare_cr(first[: end if end > 0 else len(first)])
            return 0, 0
        if not first:
            return 0, 0  # an empty file: no rows, as for the row readers
        end = self._first_boundary(first + b"\n", 0)
        while end <= 0:  # a header longer than what was read
            more = self._file.read(len(first))
            if not more:
                end = len(first)
                break
            first += more
            end = self._first_boundary(first + b"\n", 0)
        line = first[:end].rstrip(b"\r\n")
        self._refuse_bare_cr(line)
        import pyarrow.csv as pacsv

        pa = pyarrow()
        try:
            names = pacsv.read_csv(
                pa.py_buffer(line + b"\n"),  # Arrow refuses a header alone without one
                parse_options=self._parse_options(),
                read_options=pacsv.ReadOptions(use_threads=False),
            ).column_names
        except (pa.ArrowInvalid, UnicodeDecodeError) as exc:  # names must be UTF-8
            raise ItemReadError(
                f"cannot read the header: {' '.join(str(exc).split())}", source=self.path, line=1
            ) from None
        self._names = list(names)
        self._check_columns()
        return end, first.count(b"\n", 0, end)

    def _refuse_bare_cr(self, record: bytes) -> None:
        """Refuse a file whose first record holds a CR neither in a CRLF nor quoted (Arrow
        reads a quoted one as part of the value): Arrow would end lines there, but records are
        found by their "\n", and the row readers refuse such a file too."""
        record = record.rstrip(b"\r\n").replace(b"\r\n", b"")
        if self._quote:
            record = b"".join(record.split(self._quote)[::2])  # outside quotes
        if b"\r" in record:
            raise ItemReadError(
                "lines end with a bare CR: convert the file to LF or CRLF line ends",
                source=self.path,
                line=1,
            )

    def _check_columns(self) -> None:
        """Columns asked that the file lacks fail here, not as a parse error on every row."""
        wanted = self.columns or (list(self.schema.names) if self.schema is not None else [])
        missing = [c for c in wanted if c not in (self._names or [])]
        if missing:
            names = self._names or []
            shown = ", ".join(names[:20]) + (", ..." if len(names) > 20 else "")
            raise ItemReadError(
                f"no column {', '.join(map(repr, missing))} in the "
                f"{'header' if self.header else 'schema'} ({shown})",
                source=self.path,
                line=1 if self.header else None,
            )

    def _field_of(self, reason: str, record: str) -> str | None:
        # Arrow numbers the file's columns ("In CSV column #2: ..."); the row readers name them.
        found = _CSV_COLUMN.search(reason)
        names = self._names or []
        if found is None or int(found.group(1)) >= len(names):
            return None
        return names[int(found.group(1))]

    def _is_boundary(self, data: bytes, end: int) -> bool:
        return not self.newlines_in_values or data.count(self._quote, 0, end) % 2 == 0

    def _parse_options(self) -> Any:
        import pyarrow.csv as pacsv

        return pacsv.ParseOptions(
            delimiter=self.delimiter,
            quote_char=self.quote_char or False,
            newlines_in_values=self.newlines_in_values,
        )

    def _parse(self, data: bytes) -> Any:
        import pyarrow.csv as pacsv

        pa = pyarrow()
        types: dict[str, Any] = {}
        include = self.columns
        if self.schema is not None:
            types = {f.name: f.type for f in self.schema}
            include = include or list(self.schema.names)
        elif self._schema is not None:
            types = {f.name: f.type for f in self._schema}  # inferred from the first block
        options: dict[str, Any] = {"column_types": types, "include_columns": include or []}
        if self.null_values is not None:
            options["null_values"] = self.null_values
        return pacsv.read_csv(
            pa.py_buffer(data),
            read_options=pacsv.ReadOptions(column_names=self._names, use_threads=True),
            parse_options=self._parse_options(),
            convert_options=pacsv.ConvertOptions(**options),
        )


class ArrowJsonReader(LineBlockReader):
    """JSON Lines (one object per line) into record batches, by Arrow's JSON reader.

    ``schema`` (a pyarrow Schema or a mapping) types the fields and drops others; without one
    Arrow infers the fields of the first block and keeps their types.
    """

    def __init__(
        self,
        path: str,
        *,
        schema: Any = None,
        block_size: int = BLOCK_SIZE,
        storage_options: StorageOptions = None,
        name: str = "reader",
    ) -> None:
        super().__init__(path, block_size=block_size, storage_options=storage_options, name=name)
        pa = pyarrow()
        if isinstance(schema, Mapping):
            schema = pa.schema(list(schema.items()))
        self.schema = schema

    def __repr__(self) -> str:
        return f"ArrowJsonReader({self.path!r})"

    def _parse(self, data: bytes) -> Any:
        import pyarrow.json as pajson

        pa = pyarrow()
        schema = self.schema if self.schema is not None else self._schema
        # A schema given selects the fields; one inferred from the first block does not: a field
        # that block lacked would be dropped without a word, so its record is a bad one.
        unexpected = "ignore" if self.schema is not None else "infer" if schema is None else "error"
        parse = pajson.ParseOptions(explicit_schema=schema, unexpected_field_behavior=unexpected)
        try:
            table = pajson.read_json(
                io.BytesIO(data),
                read_options=pajson.ReadOptions(use_threads=True),
                parse_options=parse,
            )
        except pa.ArrowInvalid as exc:
            if "unexpected field" not in str(exc):
                raise
            raise pa.ArrowInvalid(
                f"{exc}: the fields are those of the file's first block (give a schema naming "
                "the fields to read)"
            ) from None
        if schema is not None and table.schema != schema:
            table = table.select(schema.names)
        # Arrow's JSON reader does not check UTF-8 (its CSV reader does): a bad byte would reach
        # the writer as a string. Raised as ArrowInvalid, the record is a bad one.
        try:
            table.validate(full=True)
        except UnicodeDecodeError as exc:  # in a field name
            raise pa.ArrowInvalid(f"a field name is not UTF-8: {exc}") from None
        return table

    def _field_of(self, reason: str, record: str) -> str | None:
        # Arrow names a value's path ("Column(/o/a) changed from number to string"), not the
        # field it did not expect: that one is the record's first key the schema lacks.
        found = _JSON_COLUMN.search(reason)
        if found is not None:
            return found.group(1).strip("/").replace("/[]", "[]").replace("/", ".")
        schema = self.schema if self.schema is not None else self._schema
        if "unexpected field" not in reason or schema is None:
            return None
        try:
            value = json.loads(record)
        except ValueError:
            return None
        return _unexpected_key(value, pyarrow().struct(list(schema)), "")


def _unexpected_key(value: Any, kind: Any, path: str) -> str | None:
    """The path of the first key in ``value`` that the Arrow type ``kind`` has no field for."""
    pa = pyarrow()
    if isinstance(value, dict) and pa.types.is_struct(kind):
        for key, item in value.items():
            index = kind.get_field_index(key)
            if index < 0:
                return f"{path}{key}"
            found = _unexpected_key(item, kind.field(index).type, f"{path}{key}.")
            if found is not None:
                return found
    elif isinstance(value, list) and (pa.types.is_list(kind) or pa.types.is_large_list(kind)):
        for item in value:
            found = _unexpected_key(item, kind.value_type, f"{path[:-1]}[].")
            if found is not None:
                return found
    return None
