"""The demo's input: a deterministic CSV of trades for one day, with some invalid rows on purpose.

The same trade date and row count always give the same file (the seed is the date), so a run can
be checked against what was generated. About 1% of the rows are invalid, in the three ways the
load step rejects: a negative quantity, an unknown currency, a malformed price.
"""

from __future__ import annotations

import csv
import datetime as dt
import os
import random
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

COLUMNS = (
    "trade_id",
    "trade_date",
    "symbol",
    "side",
    "quantity",
    "price",
    "currency",
    "counterparty",
)

# symbol -> (currency, reference price)
SYMBOLS: dict[str, tuple[str, Decimal]] = {
    "AAPL": ("USD", Decimal("190.00")),
    "MSFT": ("USD", Decimal("410.00")),
    "NVDA": ("USD", Decimal("480.00")),
    "AMZN": ("USD", Decimal("150.00")),
    "GOOGL": ("USD", Decimal("140.00")),
    "JPM": ("USD", Decimal("170.00")),
    "XOM": ("USD", Decimal("105.00")),
    "KO": ("USD", Decimal("60.00")),
    "SAP": ("EUR", Decimal("145.00")),
    "ASML": ("EUR", Decimal("680.00")),
    "SIE": ("EUR", Decimal("165.00")),
    "AIR": ("EUR", Decimal("140.00")),
    "MC": ("EUR", Decimal("780.00")),
    "AZN": ("GBP", Decimal("105.00")),
    "SHEL": ("GBP", Decimal("26.00")),
    "ULVR": ("GBP", Decimal("40.00")),
    "NESN": ("CHF", Decimal("95.00")),
    "NOVN": ("CHF", Decimal("88.00")),
    "ROG": ("CHF", Decimal("250.00")),
}
CURRENCIES = frozenset(currency for currency, _ in SYMBOLS.values())
COUNTERPARTIES = (
    "Alder Capital",
    "Birch Securities",
    "Cedar Markets",
    "Dogwood Asset Management",
    "Elm Partners",
    "Fir Brokerage",
    "Hazel Bank",
    "Juniper Funds",
)

# The reasons the load step gives for a rejected row; the generator uses the same names.
NEGATIVE_QUANTITY = "negative quantity"
UNKNOWN_CURRENCY = "unknown currency"
MALFORMED_PRICE = "malformed price"

_BAD_CURRENCIES = ("XXX", "USX", "EURO", "")
_BAD_PRICES = ("12,50", "N/A", "1.2.3", "", "abc", "$101.10")


@dataclass
class Generated:
    """What the generator wrote: the row count and the invalid rows by reason."""

    rows: int
    invalid: dict[str, int] = field(default_factory=dict)

    @property
    def invalid_total(self) -> int:
        return sum(self.invalid.values())


def seed_for(trade_date: dt.date) -> int:
    return trade_date.year * 10_000 + trade_date.month * 100 + trade_date.day


def generate_trades(path: Path, trade_date: dt.date, rows: int) -> Generated:
    """Write ``rows`` trades to ``path`` atomically (a temporary file renamed into place).

    Atomic because the generate step skips a file that exists: a half-written one must never be
    taken for the input.
    """
    rng = random.Random(seed_for(trade_date))
    symbols = sorted(SYMBOLS)
    cents = {symbol: int(reference * 100) for symbol, (_, reference) in SYMBOLS.items()}
    invalid: Counter[str] = Counter()
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    with partial.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(COLUMNS)
        for number in range(1, rows + 1):
            symbol = rng.choice(symbols)
            currency = SYMBOLS[symbol][0]
            price_cents = round(cents[symbol] * (1 + rng.gauss(0, 0.01)))
            price = f"{price_cents // 100}.{price_cents % 100:02d}"
            quantity = str(rng.randint(1, 5_000))
            side = rng.choice(("BUY", "SELL"))
            if rng.random() < 0.1:  # feeds that need normalising, still valid
                symbol, side = f" {symbol.lower()} ", side.lower()
            roll = rng.random()
            if roll < 0.004:
                quantity, reason = f"-{quantity}", NEGATIVE_QUANTITY
            elif roll < 0.007:
                currency, reason = rng.choice(_BAD_CURRENCIES), UNKNOWN_CURRENCY
            elif roll < 0.010:
                price, reason = rng.choice(_BAD_PRICES), MALFORMED_PRICE
            else:
                reason = ""
            if reason:
                invalid[reason] += 1
            writer.writerow(
                (
                    f"T{trade_date:%Y%m%d}-{number:07d}",
                    trade_date.isoformat(),
                    symbol,
                    side,
                    quantity,
                    price,
                    currency,
                    rng.choice(COUNTERPARTIES),
                )
            )
    os.replace(partial, path)
    return Generated(rows, dict(sorted(invalid.items())))
