"""PostgresCopyWriter formats typed rows with psycopg's own row formatter, a block at a time
(items/copy_rows.py): the bytes are those ``Copy.write_row`` sends, and awkward values arrive
in PostgreSQL as they left."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from batchline.items import copy_rows
from batchline.items.postgres_copy import PostgresCopyWriter
from batchline.testing.contract import check_writer
from batchline.transaction import SqlTransactionManager
from tests.backends import fresh_database, import_extra

psycopg = import_extra("psycopg", "postgres")

COLUMNS = ["id", "label", "amount", "day", "at", "flag", "ratio", "raw"]
DDL = """CREATE TABLE awkward (id bigint, label text, amount numeric, day date,
    at timestamptz, flag boolean, ratio float8, raw bytea)"""
UTC = dt.UTC


def awkward_rows(count: int) -> list[tuple[Any, ...]]:
    """Values COPY text must escape or spell exactly, repeated past a block boundary."""
    labels = ["tab\there", "new\nline", "back\\slash", "cr\rhere", "é € 😀", "", None, "\\N"]
    amounts = [Decimal("-0.0001"), Decimal("1E+3"), Decimal("12345678901234567890.5"), None]
    ratios = [1.5, float("inf"), float("-inf"), None, 1e-300]
    raws = [b"\x00\xff\\", b"", None, b"\t\n"]
    return [
        (
            i,
            labels[i % len(labels)],
            amounts[i % len(amounts)],
            dt.date(2024, 2, 29) + dt.timedelta(days=i),
            dt.datetime(2024, 3, 31, 1, 30, tzinfo=UTC) + dt.timedelta(seconds=i),
            [True, False, None][i % 3],
            ratios[i % len(ratios)],
            raws[i % len(raws)],
        )
        for i in range(count)
    ]


@dataclass
class Row:
    id: int
    label: str | None
    amount: Decimal | None
    day: dt.date
    at: dt.datetime
    flag: bool | None
    ratio: float | None
    raw: bytes | None


@pytest.fixture
def pg(tmp_path: Path) -> Iterator[str]:
    with fresh_database("postgresql", tmp_path) as url:
        yield url


def _dsn(url: str) -> str:
    return sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def test_this_psycopg_has_the_row_formatter() -> None:
    # Without it the writer falls back to write_row (slower, same rows): a psycopg upgrade
    # that moves it should be noticed here, not in the benchmarks.
    assert copy_rows.formatter() is not None


def test_blocks_hold_the_bytes_write_row_sends(pg: str) -> None:
    rows = awkward_rows(copy_rows.BLOCK * 2 + 7)
    fmt = copy_rows.formatter()
    assert fmt is not None
    with psycopg.connect(_dsn(pg)) as conn, conn.cursor() as cursor:
        blocks = list(copy_rows.blocks(rows, fmt, copy_rows.transformer(cursor)))
        # What write_row sends, taken from the copy's own formatter (flushed buffers + the end).
        with cursor.copy("COPY (SELECT 1) TO STDOUT") as copy:
            sent = [bytes(copy.formatter.write_row(row)) for row in rows]
            sent.append(bytes(copy.formatter.end()))
            list(copy)
    assert [len(b.splitlines()) for b in blocks] == [copy_rows.BLOCK, copy_rows.BLOCK, 7]
    assert b"".join(blocks) == b"".join(sent)


@pytest.mark.parametrize("shape", ["tuples", "dataclasses"])
def test_awkward_values_arrive_as_they_left(pg: str, shape: str) -> None:
    bind = sa.create_engine(pg)
    with bind.begin() as conn:
        conn.execute(sa.text(DDL))
    rows = awkward_rows(1100)
    items: list[Any] = rows if shape == "tuples" else [Row(*row) for row in rows]

    def stored() -> list[tuple[Any, ...]]:
        with bind.connect() as conn:
            found = conn.execute(sa.text(f"SELECT {', '.join(COLUMNS)} FROM awkward ORDER BY id"))
            return [_comparable(tuple(r)) for r in found]

    def reset() -> None:
        with bind.begin() as conn:
            conn.execute(sa.text("DELETE FROM awkward"))

    try:
        check_writer(
            lambda: PostgresCopyWriter("awkward", COLUMNS),
            items,
            stored,
            chunk_size=600,
            transaction_manager=SqlTransactionManager(bind),
            reset=reset,
            expected=[_comparable(row) for row in rows],
        )
    finally:
        bind.dispose()


def _comparable(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """bytea comes back as bytes (memoryview on some paths); floats compare as text (inf)."""
    return tuple(
        bytes(v)
        if isinstance(v, bytes | memoryview)
        else repr(v)
        if isinstance(v, float) and not math.isnan(v)
        else v
        for v in row
    )


def test_a_value_the_server_refuses_is_named_by_line_and_column(pg: str) -> None:
    """PostgreSQL names the COPY line and column of a refused value only on its CONTEXT line,
    below the one line a step failure keeps: the failure carries it."""
    from batchline import BatchStatus, Engine, JobBuilder, ListReader, StepBuilder

    with sa.create_engine(pg).begin() as conn:
        conn.execute(sa.text("CREATE TABLE small (id int, amount numeric(4, 1))"))
    rows = [(1, Decimal("1.5")), (2, Decimal("12.5")), (3, Decimal("99999.5"))]
    step = (
        StepBuilder("load")
        .chunk(10)
        .reader(ListReader(rows))
        .writer(PostgresCopyWriter("small", ["id", "amount"]))
    )
    with Engine(pg) as engine:
        execution = engine.start(JobBuilder("refused").step(step).build())
    assert execution.status is BatchStatus.FAILED
    description = execution.exit_status.description
    assert "numeric field overflow" in description, description
    first = description.splitlines()[0]
    assert "line 3, column amount" in first, description
