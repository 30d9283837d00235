"""Partitions of an SQL table by key range, and the reader of one such range.

The partitioner never loads keys: one query finds the key's min, max and row count; then an
integer key is cut into equal-width ranges, each tightened by one min/max/count query (empty
ranges are dropped), while any other key is cut at quantiles, one ``ORDER BY key LIMIT 1 OFFSET n``
query per boundary. The reader pages through its range in key order (keyset pagination) and
restarts after the last key it handed out, so the key must be unique.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from batchline.errors import ConfigurationError
from batchline.model import ExecutionContext, StepExecution
from batchline.partitioners.ranges import BELOW, COUNT, LOWER, UPPER, split_integers
from batchline.repository.database import create_engine

Source = str | sa.Engine


def _connect(source: Source) -> tuple[sa.Engine, bool]:
    """The engine for ``source`` and whether this object made it (and must dispose of it)."""
    return (create_engine(source), True) if isinstance(source, str) else (source, False)


def _filter(where: str | sa.ColumnElement[bool] | None) -> sa.ColumnElement[bool]:
    if where is None:
        return sa.true()
    return sa.text(where) if isinstance(where, str) else where  # type: ignore[return-value]


class TablePartitioner:
    """Splits the rows of ``table`` into about ``grid_size`` ranges of the unique ``key``.

    Contexts: ``partition.min``/``partition.max`` (inclusive) and ``partition.count`` for an
    integer key; ``partition.min`` and ``partition.below`` (exclusive, None for the last) for
    any other key, whose values must be JSON (strings, numbers). ``where`` restricts the rows.
    """

    def __init__(
        self,
        source: Source,
        table: str,
        key: str,
        *,
        schema: str | None = None,
        where: str | sa.ColumnElement[bool] | None = None,
    ) -> None:
        self.source = source
        self.table = table
        self.key = key
        self.schema = schema
        self.where = where

    def __repr__(self) -> str:
        return f"TablePartitioner({self.table!r}, key={self.key!r})"

    def partition(self, grid_size: int) -> list[dict[str, Any]]:
        table = sa.table(self.table, sa.column(self.key), schema=self.schema)
        key = table.c[self.key]
        where = _filter(self.where)
        stats = sa.select(sa.func.min(key), sa.func.max(key), sa.func.count()).select_from(table)
        engine, own = _connect(self.source)
        try:
            with engine.connect() as conn:
                low, high, total = conn.execute(stats.where(where)).one()
                if not total:
                    return []
                if _is_int(low) and _is_int(high):
                    out = []
                    for lo, hi in split_integers(low, high, grid_size):
                        first, last, count = conn.execute(
                            stats.where(where, key >= lo, key <= hi)
                        ).one()
                        if count:
                            out.append({LOWER: first, UPPER: last, COUNT: count})
                    return out
                cuts = []
                for index in range(1, min(grid_size, total)):
                    query = sa.select(key).select_from(table).where(where).order_by(key)
                    cut = conn.execute(query.limit(1).offset(index * total // grid_size)).scalar()
                    if cut is not None and cut != low and cut not in cuts:
                        cuts.append(cut)
                edges = [low, *cuts, None]
                return [{LOWER: edges[i], BELOW: edges[i + 1]} for i in range(len(edges) - 1)]
        finally:
            if own:
                engine.dispose()


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class TableRangeReader:
    """Reads the rows of ``table`` with ``lower <= key`` and ``key <= upper`` / ``key < below``
    (None: unbounded) in key order, ``page_size`` rows per query, as dicts.

    ``for_partition`` takes the bounds from a partition's context. Each page is read on a
    connection of its own, released at once, so the reader holds no lock while the chunk writes.
    """

    def __init__(
        self,
        source: Source,
        table: str,
        key: str,
        *,
        lower: Any = None,
        upper: Any = None,
        below: Any = None,
        columns: Sequence[str] | None = None,
        schema: str | None = None,
        page_size: int = 500,
        name: str | None = None,
    ) -> None:
        if page_size < 1:
            raise ConfigurationError(f"TableRangeReader({table}): page_size must be >= 1")
        self.source = source
        self.table_name = table
        self.key_name = key
        self.bounds = (lower, upper, below)
        self.columns = list(columns) if columns else None
        self.schema = schema
        self.page_size = page_size
        self._state = f"{name or table}.last_key"
        self._engine: sa.Engine | None = None
        self._own = False
        self._query: sa.Select[Any] | None = None
        self._key: sa.ColumnElement[Any] | None = None
        self._last: Any = None
        self._buffer: deque[dict[str, Any]] = deque()

    @classmethod
    def for_partition(
        cls, step_execution: StepExecution, source: Source, table: str, key: str, **options: Any
    ) -> TableRangeReader:
        """A reader of the range that the step execution's partition context names."""
        ctx = step_execution.context
        return cls(
            source,
            table,
            key,
            lower=ctx.get(LOWER),
            upper=ctx.get(UPPER),
            below=ctx.get(BELOW),
            **options,
        )

    def open(self, context: ExecutionContext) -> None:
        self._engine, self._own = _connect(self.source)
        table: sa.TableClause
        if self.columns:
            names = list(dict.fromkeys([*self.columns, self.key_name]))  # the key is needed
            table = sa.table(self.table_name, *map(sa.column, names), schema=self.schema)
        else:
            table = sa.Table(
                self.table_name, sa.MetaData(), schema=self.schema, autoload_with=self._engine
            )
        chosen = list(table.c)
        key = table.c[self.key_name]
        lower, upper, below = self.bounds
        query = sa.select(*chosen).select_from(table).order_by(key).limit(self.page_size)
        if lower is not None:
            query = query.where(key >= lower)
        if upper is not None:
            query = query.where(key <= upper)
        if below is not None:
            query = query.where(key < below)
        self._query, self._key = query, key
        self._last = context.get(self._state)
        self._buffer.clear()

    def read(self) -> dict[str, Any] | None:
        if not self._buffer:
            self._fetch()
            if not self._buffer:
                return None
        row = self._buffer.popleft()
        self._last = row[self.key_name]
        return row

    def _fetch(self) -> None:
        if self._engine is None or self._query is None or self._key is None:
            raise ConfigurationError(f"TableRangeReader({self.table_name}) read before open")
        query = self._query
        if self._last is not None:
            query = query.where(self._key > self._last)
        with self._engine.connect() as conn:
            self._buffer.extend(dict(row) for row in conn.execute(query).mappings())

    def update(self, context: ExecutionContext) -> None:
        if self._last is not None:
            context[self._state] = self._last

    def close(self) -> None:
        self._buffer.clear()
        if self._own and self._engine is not None:
            self._engine.dispose()
        self._engine = None
