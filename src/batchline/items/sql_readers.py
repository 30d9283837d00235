"""SQL readers: keyset paging (restart-stable, no OFFSET) and a server-side cursor.

The keyset reader asks for ``WHERE key > :last ORDER BY key LIMIT n`` page by page, each page on
a short-lived connection of its own (so it holds no lock while the chunk writes), and saves the
last key it returned. The key must be unique and not null: with a non-unique key a restart
could skip the rows that share the last key (Spring Batch #1137, #1740).

The cursor reader runs the query once on a connection it keeps for the whole step and streams
rows from a server-side cursor; a restart runs the query again and skips the rows already
read, which costs reading them again. It is stable under restart only when the query has an
ORDER BY on a unique key. On SQLite it must not read the database the step writes to: its
open read transaction would block the chunk's commits.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any, Generic, TypeVar

import sqlalchemy as sa

from batchline.errors import ConfigurationError, ItemReadError
from batchline.model import ExecutionContext, SkippedItem

T = TypeVar("T")
RowMapper = Callable[[Mapping[str, Any]], T]


def _engine(bind: sa.Engine | str) -> tuple[sa.Engine, bool]:
    if isinstance(bind, str):
        return sa.create_engine(bind), True
    return bind, False


def _mapper(mapper: Any) -> Callable[[Mapping[str, Any]], Any]:
    if mapper is None:
        return dict
    if isinstance(mapper, type):
        return lambda row: mapper(**row)
    if callable(mapper):

        def mapped(row: Mapping[str, Any]) -> Any:
            item = mapper(row)
            if item is None:  # None would read as the end of the input
                raise ItemReadError(
                    "the row mapper returned None for this row",
                    raw=SkippedItem.describe(dict(row)),
                )
            return item

        return mapped
    raise ConfigurationError(f"row mapper {mapper!r} is not callable")


class KeysetReader(Generic[T]):
    """Reads ``query`` (a Select or a Table) in pages ordered by the unique ``key`` column(s).

    Items are dicts of the row by default; ``mapper`` is a class (called with the row's columns
    as keywords) or a function of the row mapping.
    """

    def __init__(
        self,
        bind: sa.Engine | str,
        query: sa.Select[Any] | sa.Table,
        key: str | Sequence[str],
        *,
        page_size: int = 1000,
        mapper: type[T] | RowMapper[T] | None = None,
        name: str = "reader",
    ) -> None:
        self._engine, self._owned = _engine(bind)
        select = sa.select(query) if isinstance(query, sa.Table) else query
        self._source = select.subquery("keyset_source")
        self.key = [key] if isinstance(key, str) else list(key)
        missing = [k for k in self.key if k not in self._source.c]
        if missing:
            raise ConfigurationError(f"KeysetReader: the query has no column(s) {missing}")
        self.page_size = page_size
        self.name = name
        self._map = _mapper(mapper)
        self._buffer: deque[Mapping[str, Any]] = deque()
        self._last: list[Any] | None = None  # key of the last row returned
        self._fetched: list[Any] | None = None  # key of the last row fetched
        self._done = False
        self.count = 0

    def open(self, context: ExecutionContext) -> None:
        saved = context.get(f"{self.name}.last_key")
        self._last = [_decode(v) for v in saved] if saved is not None else None
        self._fetched = self._last
        self.count = int(context.get(f"{self.name}.count", 0))
        self._buffer.clear()
        self._done = False

    def read(self) -> T | None:
        if not self._buffer:
            if self._done:
                return None
            self._fetch()
            if not self._buffer:
                return None
        row = self._buffer.popleft()
        self._last = [row[k] for k in self.key]
        self.count += 1
        return self._map(row)  # type: ignore[no-any-return]

    def _fetch(self) -> None:
        columns = [self._source.c[k] for k in self.key]
        stmt = sa.select(self._source).order_by(*columns).limit(self.page_size)
        if self._fetched is not None:
            if len(columns) == 1:
                stmt = stmt.where(columns[0] > self._fetched[0])
            else:
                stmt = stmt.where(sa.tuple_(*columns) > sa.tuple_(*self._fetched))
        with self._engine.connect() as conn:
            rows: list[Any] = [row._mapping for row in conn.execute(stmt)]
        self._buffer.extend(rows)
        if len(rows) < self.page_size:
            self._done = True
        if rows:
            self._fetched = [rows[-1][k] for k in self.key]

    def update(self, context: ExecutionContext) -> None:
        if self._last is not None:
            context[f"{self.name}.last_key"] = [_encode(v, self.key) for v in self._last]
        context[f"{self.name}.count"] = self.count

    def close(self) -> None:
        self._buffer.clear()
        if self._owned:
            self._engine.dispose()


class CursorReader(Generic[T]):
    """Streams ``query`` through a server-side cursor, ``fetch_size`` rows per round trip."""

    def __init__(
        self,
        bind: sa.Engine | str,
        query: sa.Select[Any] | sa.TextClause | sa.Table,
        *,
        fetch_size: int = 1000,
        mapper: type[T] | RowMapper[T] | None = None,
        name: str = "reader",
    ) -> None:
        self._engine, self._owned = _engine(bind)
        self.query = sa.select(query) if isinstance(query, sa.Table) else query
        self.fetch_size = fetch_size
        self.name = name
        self._map = _mapper(mapper)
        self._conn: sa.Connection | None = None
        self._rows: Any = None
        self.count = 0

    def open(self, context: ExecutionContext) -> None:
        self.close()
        self.count = int(context.get(f"{self.name}.count", 0))
        conn = self._engine.connect()
        self._conn = conn
        result = conn.execution_options(stream_results=True, yield_per=self.fetch_size).execute(
            self.query
        )
        self._rows = iter(result.mappings())
        for _ in range(self.count):
            if next(self._rows, None) is None:
                break

    def read(self) -> T | None:
        if self._rows is None:
            self.open(ExecutionContext())
        row = next(self._rows, None)
        if row is None:
            return None
        self.count += 1
        return self._map(row)  # type: ignore[no-any-return]

    def update(self, context: ExecutionContext) -> None:
        context[f"{self.name}.count"] = self.count

    def close(self) -> None:
        self._rows = None
        if self._conn is not None:
            self._conn.close()
            self._conn = None


_TAGS: dict[str, Callable[[str], Any]] = {
    "datetime": dt.datetime.fromisoformat,
    "date": dt.date.fromisoformat,
    "time": dt.time.fromisoformat,
    "decimal": Decimal,
    "uuid": uuid.UUID,
}


def _encode(value: Any, key: list[str]) -> Any:
    """A key value as JSON: plain for str/int/float/bool, tagged for the others."""
    if value is None:
        raise ConfigurationError(f"KeysetReader: key {key} has a NULL value; it must be NOT NULL")
    if isinstance(value, bool | int | float | str):
        return value
    for tag, kind in (
        ("datetime", dt.datetime),
        ("date", dt.date),
        ("time", dt.time),
        ("decimal", Decimal),
        ("uuid", uuid.UUID),
    ):
        if isinstance(value, kind):
            return {tag: value.isoformat() if hasattr(value, "isoformat") else str(value)}
    raise ConfigurationError(
        f"KeysetReader: cannot save a key value of type {type(value).__name__} in the context"
    )


def _decode(value: Any) -> Any:
    if isinstance(value, dict) and len(value) == 1:
        ((tag, text),) = value.items()
        if tag in _TAGS:
            return _TAGS[tag](text)
    return value
