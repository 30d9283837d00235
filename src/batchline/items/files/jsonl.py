"""JSON Lines: one JSON value per line, read and written restartably.

Reading never evaluates anything: ``json.loads`` only. Items are the decoded objects (dicts) by
default, or mapped with a RecordMapper (a dataclass, a class, a model with ``model_validate``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any, TypeVar

from batchline.items.files.mapping import DictMapper, FieldError, Mapper, as_mapper
from batchline.items.files.reader import LineFileReader
from batchline.items.files.storage import StorageOptions
from batchline.items.files.writer import FileWriter, Footer, Header
from batchline.model import non_finite

T = TypeVar("T")


class JsonLinesReader(LineFileReader[T]):
    """One item per non-blank line. A line that is not JSON is an error naming its column."""

    def __init__(
        self,
        path: str,
        *,
        mapper: Mapper[T] | Callable[..., T] | None = None,
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
        self.mapper = as_mapper(mapper)
        self._plain = isinstance(self.mapper, DictMapper)

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
                text = self.codec.decode(raw)
            except UnicodeDecodeError as exc:
                self.count += 1
                raise self.error(self.decode_error(exc), self.line) from None
            if not text.strip():
                continue
            self.count += 1
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                raise self.error(f"not JSON: {exc.msg} at column {exc.colno}", self.line) from None
            except RecursionError:
                raise self.error("JSON nested too deeply to decode", self.line) from None
            if value is None:
                # A reader returns None only at the end of its input: a null line is bad data.
                raise self.error("null is not an item", self.line)
            if self._plain:
                return value  # type: ignore[no-any-return]
            if not isinstance(value, Mapping):
                raise self.error(f"expected a JSON object, found {type(value).__name__}", self.line)
            try:
                item = self.mapper.from_mapping(value)
            except FieldError as exc:
                raise self.error(exc.message, self.line, exc.field) from None
            if item is None:
                raise self.error("the mapper returned None for this record", self.line)
            return item  # type: ignore[no-any-return]


def to_json(value: Any) -> Any:
    """``default`` for json.dumps: dataclasses, dates, decimals, UUIDs, enums, sets."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, set | frozenset):
        return sorted(value)
    dump = getattr(value, "model_dump", None)  # a pydantic model
    if callable(dump):
        return dump(mode="json")
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


class JsonLinesWriter(FileWriter[Any]):
    """Writes each item as one line of JSON (UTF-8 text kept as is, not \\u-escaped)."""

    def __init__(
        self,
        path: str,
        *,
        sort_keys: bool = False,
        header: Header = None,
        footer: Footer = None,
        encoding: str = "utf-8",
        compression: str | None = "infer",
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
            compression=compression,
            fsync=fsync,
            storage_options=storage_options,
            name=name,
            lock_timeout=lock_timeout,
        )
        self._encoder = json.JSONEncoder(
            ensure_ascii=False,
            sort_keys=sort_keys,
            default=to_json,
            separators=(",", ":"),
            allow_nan=False,  # NaN and Infinity are not JSON: refused, naming the item
        )

    def format(self, items: Sequence[Any]) -> str:
        encode = self._encoder.encode
        try:
            return "".join(encode(item) + "\n" for item in items)
        except ValueError:
            self._refuse_non_finite(items)
            raise

    def _refuse_non_finite(self, items: Sequence[Any]) -> None:
        """Name the item and key holding a NaN or infinity (error path only)."""
        loose = json.JSONEncoder(default=to_json)
        for index, item in enumerate(items):
            found = non_finite(json.loads(loose.encode(item)), "")
            if found is not None:
                where = f" key {found[0]!r}" if found[0] else ""
                raise ValueError(
                    f"{self.path}: item {self.written + index + 1} of the output,{where} holds "
                    f"{found[1]!r}, which JSON cannot hold (write it as a string or null)"
                )
