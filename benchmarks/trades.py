"""The typed trade file the import benchmarks share: its dataclass, its validation, its rows.

1M rows x 10 columns by default (``BATCHLINE_BENCH_ROWS`` sets another count, ``--quick`` a
small one). The conversions (int, date, Decimal) and the validation are written once here and
used by the batchline job and by the hand-written loops alike.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import random
from decimal import Decimal
from pathlib import Path
from typing import Any

ROWS, QUICK_ROWS = 1_000_000, 50_000
COMMIT_INTERVAL = 10_000
COLUMNS = [
    "trade_id",
    "trade_date",
    "symbol",
    "side",
    "quantity",
    "price",
    "currency",
    "counterparty",
    "settle_date",
    "notional",
]
SIDES = frozenset({"BUY", "SELL"})
CURRENCIES = frozenset({"EUR", "USD", "GBP", "JPY", "CHF"})


def rows_for(quick: bool, default: int = ROWS) -> int:
    """The row count of a run: ``BATCHLINE_BENCH_ROWS`` if set, else quick or full size."""
    if os.environ.get("BATCHLINE_BENCH_ROWS"):
        return int(os.environ["BATCHLINE_BENCH_ROWS"])
    return QUICK_ROWS if quick else default


@dataclasses.dataclass(slots=True)
class Trade:
    trade_id: int
    trade_date: dt.date
    symbol: str
    side: str
    quantity: int
    price: Decimal
    currency: str
    counterparty: str
    settle_date: dt.date
    notional: Decimal


class InvalidTrade(ValueError):
    pass


def validate(trade: Trade) -> Trade:
    """The batchline job's processor: refuse what a bank's import would refuse."""
    if trade.quantity <= 0:
        raise InvalidTrade(f"trade {trade.trade_id}: quantity {trade.quantity}")
    if trade.side not in SIDES:
        raise InvalidTrade(f"trade {trade.trade_id}: side {trade.side!r}")
    if trade.currency not in CURRENCIES:
        raise InvalidTrade(f"trade {trade.trade_id}: currency {trade.currency!r}")
    if trade.settle_date < trade.trade_date:
        raise InvalidTrade(f"trade {trade.trade_id}: settles before it trades")
    return trade


def convert_and_validate(row: list[str]) -> tuple[Any, ...]:
    """The hand-written loop's version: the same conversions and checks, on a tuple."""
    t = (
        int(row[0]),
        dt.date.fromisoformat(row[1]),
        row[2],
        row[3],
        int(row[4]),
        Decimal(row[5]),
        row[6],
        row[7],
        dt.date.fromisoformat(row[8]),
        Decimal(row[9]),
    )
    if t[4] <= 0:
        raise InvalidTrade(f"trade {t[0]}: quantity {t[4]}")
    if t[3] not in SIDES:
        raise InvalidTrade(f"trade {t[0]}: side {t[3]!r}")
    if t[6] not in CURRENCIES:
        raise InvalidTrade(f"trade {t[0]}: currency {t[6]!r}")
    if t[8] < t[1]:
        raise InvalidTrade(f"trade {t[0]}: settles before it trades")
    return t


def make_trades(path: Path, rows: int) -> None:
    """A CSV file with a header and ``rows`` trades; some counterparties are quoted."""
    rng = random.Random(11)
    symbols = [f"SYM{i:03d}" for i in range(300)]
    parties = ["Bank of Somewhere", '"Smith, Jones & Co"', "ACME Capital", "Northwind"]
    currencies = sorted(CURRENCIES)
    base = dt.date(2024, 1, 1).toordinal()
    with path.open("w", encoding="utf-8", newline="") as f:
        f.write(",".join(COLUMNS) + "\n")
        lines = []
        for i in range(rows):
            day = dt.date.fromordinal(base + i % 300)
            settle = dt.date.fromordinal(base + i % 300 + 2)
            quantity = rng.randrange(1, 10_000)
            price = rng.randrange(100, 1_000_000)
            notional = quantity * price
            lines.append(
                f"{i + 1},{day},{symbols[i % 300]},{'BUY' if i % 2 else 'SELL'},{quantity},"
                f"{price // 10_000}.{price % 10_000:04d},{currencies[i % 5]},"
                f"{parties[i % 4]},{settle},{notional // 10_000}.{notional % 10_000:04d}\n"
            )
            if len(lines) == 10_000:
                f.write("".join(lines))
                lines.clear()
        f.write("".join(lines))
