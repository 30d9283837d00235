"""The demo's tables, its CSV reader, the validating processor and the summary.

Money is exact: SQLite has no decimal type (SQLAlchemy would store a float), so prices and
notionals are kept as integers of 1/10,000 and read back as ``Decimal``; SQL sums stay exact.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections import Counter
from collections.abc import Iterator, Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

from batchline.demo.data import (
    CURRENCIES,
    MALFORMED_PRICE,
    NEGATIVE_QUANTITY,
    UNKNOWN_CURRENCY,
)
from batchline.items.base import IterableReader
from batchline.model import ExecutionContext, StepExecution
from batchline.status import BatchStatus, ExitStatus


class FixedDecimal(sa.types.TypeDecorator[Decimal]):
    """A Decimal stored as a BIGINT count of 10**-scale units; refuses to round silently."""

    impl = sa.BigInteger
    cache_ok = True

    def __init__(self, scale: int = 4) -> None:
        super().__init__()
        self.scale = scale

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> int | None:
        if value is None:
            return None
        units = value.scaleb(self.scale)
        if units != units.to_integral_value():
            raise ValueError(f"{value} has more than {self.scale} decimal places")
        return int(units)

    def process_result_value(self, value: Any | None, dialect: Dialect) -> Decimal | None:
        return None if value is None else Decimal(int(value)).scaleb(-self.scale)


metadata = sa.MetaData()

trades = sa.Table(
    "trades",
    metadata,
    sa.Column("trade_id", sa.String(32), primary_key=True),
    sa.Column("trade_date", sa.Date, nullable=False, index=True),
    sa.Column("symbol", sa.String(12), nullable=False),
    sa.Column("side", sa.String(4), nullable=False),
    sa.Column("quantity", sa.BigInteger, nullable=False),
    sa.Column("price", FixedDecimal(), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("counterparty", sa.String(100), nullable=False),
    sa.Column("notional", FixedDecimal(), nullable=False),
)

symbol_summary = sa.Table(
    "symbol_summary",
    metadata,
    sa.Column("trade_date", sa.Date, primary_key=True),
    sa.Column("symbol", sa.String(12), primary_key=True),
    sa.Column("currency", sa.String(3), primary_key=True),
    sa.Column("trades", sa.BigInteger, nullable=False),
    sa.Column("quantity", sa.BigInteger, nullable=False),
    sa.Column("notional", FixedDecimal(), nullable=False),
)


def trade_date_of(se: StepExecution) -> dt.date:
    value = se.parameters.require("trade_date")
    if not isinstance(value, dt.date):
        raise TypeError(f"trade_date must be a date, got {value!r}")
    return value


def file_of(se: StepExecution) -> Path:
    return Path(str(se.parameters.require("file")))


# --- read ---------------------------------------------------------------------------------


def _rows(path: Path) -> Iterator[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as source:
        yield from csv.DictReader(source)


def read_trades(se: StepExecution) -> IterableReader[dict[str, str]]:
    """Reader factory: each execution opens the file afresh; a restart skips the rows committed."""
    return IterableReader(_rows(file_of(se)), name="csv")


# --- process --------------------------------------------------------------------------------


class Rejected(ValueError):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def parse_trade(row: Mapping[str, str]) -> dict[str, Any]:
    """A CSV row as a row of ``trades``: typed, normalised, with its notional; or Rejected."""
    try:
        quantity = int(row["quantity"])
    except ValueError:
        raise Rejected("malformed quantity") from None
    if quantity <= 0:
        raise Rejected(NEGATIVE_QUANTITY if quantity < 0 else "zero quantity")
    try:
        price = Decimal(row["price"].strip())
    except InvalidOperation:
        raise Rejected(MALFORMED_PRICE) from None
    exponent = price.as_tuple().exponent
    if not price.is_finite() or price <= 0 or not isinstance(exponent, int) or exponent < -4:
        raise Rejected(MALFORMED_PRICE)
    currency = row["currency"].strip().upper()
    if currency not in CURRENCIES:
        raise Rejected(UNKNOWN_CURRENCY)
    side = row["side"].strip().upper()
    if side not in ("BUY", "SELL"):
        raise Rejected("unknown side")
    symbol = row["symbol"].strip().upper()
    if not symbol:
        raise Rejected("missing symbol")
    try:
        trade_date = dt.date.fromisoformat(row["trade_date"])
    except ValueError:
        raise Rejected("malformed trade date") from None
    return {
        "trade_id": row["trade_id"].strip(),
        "trade_date": trade_date,
        "symbol": symbol,
        "side": side,
        "quantity": quantity,
        "price": price,
        "currency": currency,
        "counterparty": row["counterparty"].strip(),
        "notional": quantity * price,
    }


class TradeProcessor:
    """Validates and transforms a row; an invalid row is filtered (None) and counted by reason.

    Also an ItemStream: the counts by reason live in the step's context, so they commit with each
    chunk and survive a restart.
    """

    KEY = "rejected"

    def __init__(self) -> None:
        self.rejected: Counter[str] = Counter()

    def open(self, context: ExecutionContext) -> None:
        self.rejected = Counter(context.get(self.KEY, {}))

    def update(self, context: ExecutionContext) -> None:
        context[self.KEY] = dict(sorted(self.rejected.items()))

    def close(self) -> None:
        pass

    def process(self, row: Mapping[str, str]) -> dict[str, Any] | None:
        try:
            return parse_trade(row)
        except Rejected as why:
            self.rejected[why.reason] += 1
            return None

    def after_step(self, se: StepExecution) -> ExitStatus | None:
        """As a step listener: say in the exit status why rows were rejected."""
        if se.status is not BatchStatus.COMPLETED or not self.rejected:
            return None
        reasons = ", ".join(f"{why} {count:,}" for why, count in sorted(self.rejected.items()))
        total = sum(self.rejected.values())
        return ExitStatus(se.exit_status.code, f"{total:,} invalid rows rejected in all: {reasons}")


# --- summary --------------------------------------------------------------------------------


def summarise(conn: sa.Connection, trade_date: dt.date) -> tuple[int, int]:
    """Replace the day's summary per symbol and currency (count, quantity, notional).

    Returns how many summary rows and how many trades went into them. Idempotent (delete, then
    insert), so a rerun after a crash between its commit and the step's record does no harm.
    """
    conn.execute(symbol_summary.delete().where(symbol_summary.c.trade_date == trade_date))
    per_symbol = (
        sa.select(
            trades.c.trade_date,
            trades.c.symbol,
            trades.c.currency,
            sa.func.count(),
            sa.func.sum(trades.c.quantity),
            sa.func.sum(trades.c.notional),
        )
        .where(trades.c.trade_date == trade_date)
        .group_by(trades.c.trade_date, trades.c.symbol, trades.c.currency)
    )
    columns = ["trade_date", "symbol", "currency", "trades", "quantity", "notional"]
    symbols = conn.execute(symbol_summary.insert().from_select(columns, per_symbol)).rowcount
    counted = conn.execute(
        sa.select(sa.func.coalesce(sa.func.sum(symbol_summary.c.trades), 0)).where(
            symbol_summary.c.trade_date == trade_date
        )
    ).scalar_one()
    return int(symbols), int(counted)


def top_symbols(conn: sa.Connection, trade_date: dt.date, limit: int = 10) -> list[sa.Row[Any]]:
    return list(
        conn.execute(
            sa.select(symbol_summary)
            .where(symbol_summary.c.trade_date == trade_date)
            .order_by(symbol_summary.c.notional.desc(), symbol_summary.c.symbol)
            .limit(limit)
        )
    )
