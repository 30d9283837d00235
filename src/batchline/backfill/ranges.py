"""The values a backfill runs over: a range of dates, datetimes or integers, or a list.

``date:date=2026-11-01..2026-11-30`` (both ends included) with a step (``1d``, ``2w``,
``1month``; datetimes ``90s``, ``15min``, ``6h``, ``1d``; integers a plain number), or
``--values region=eu,us,ap`` (``NAME[:TYPE]=a,b,c``). Each value becomes the identifying
parameter ``NAME`` of one job instance. The spec is kept as text in the repository and parsed
again on resume, so what a backfill covers never depends on the process that runs it.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from batchline.errors import ParameterError
from batchline.parameters import JobParameter, ParamValue, parse_parameter

MAX_VALUES = 100_000  # a typo in a step ("1s" over a year) must not plan millions of instances
_STEP = re.compile(r"^\s*(\d+)\s*([a-z]*)\s*$")
_DATE_UNITS = {"": "d", "d": "d", "day": "d", "days": "d", "w": "w", "week": "w", "weeks": "w"}
_MONTHS = {"mo", "month", "months"}
_SECONDS = {
    "s": 1, "sec": 1, "second": 1, "seconds": 1,
    "min": 60, "minute": 60, "minutes": 60,
    "h": 3600, "hour": 3600, "hours": 3600,
    "d": 86400, "day": 86400, "days": 86400,
    "w": 604800, "week": 604800, "weeks": 604800,
}  # fmt: skip


@dataclass(frozen=True)
class BackfillRange:
    """The parameter a backfill varies, its type, and its values in order.

    ``spec`` and ``step`` are the text given (``kind`` says which: "range" or "values"), so the
    repository can store them and a resume parse them again.
    """

    name: str
    type: str
    values: tuple[ParamValue, ...]
    kind: str
    spec: str
    step: str | None = None

    def __len__(self) -> int:
        return len(self.values)

    def text(self, value: ParamValue) -> str:
        """A value as the grid and the command line show it."""
        return value.isoformat() if isinstance(value, dt.date) else str(value)

    def describe(self) -> str:
        what = f"{self.name}:{self.type}={self.spec}"
        return f"{what} step {self.step}" if self.step else what


def parse_range(spec: str, step: str | None = None) -> BackfillRange:
    """``NAME[:TYPE]=FIRST..LAST`` with ``step``; TYPE date (the default step 1d), datetime
    (a step required) or int (default 1)."""
    head, sep, body = spec.partition("=")
    first_text, dots, last_text = body.partition("..")
    if not sep or not dots:
        raise ParameterError(f"--range {spec!r}: expected NAME:TYPE=FIRST..LAST")
    name, first = parse_parameter(f"{head}={first_text.strip()}")
    _, last = parse_parameter(f"{head}={last_text.strip()}")
    kind = first.type_name
    if kind not in ("date", "datetime", "int"):
        raise ParameterError(
            f"--range {spec!r}: a range is of dates, datetimes or integers (NAME:date=, "
            "NAME:datetime=, NAME:int=); use --values for a list"
        )
    if last.value < first.value:  # type: ignore[operator]
        raise ParameterError(f"--range {spec!r}: its last value comes before its first")
    values = tuple(_walk(spec, first, last, step))
    return BackfillRange(name, kind, values, "range", spec, step)


def parse_values(spec: str) -> BackfillRange:
    """``NAME[:TYPE]=a,b,c``: each value parsed as TYPE (str by default), in the order given."""
    head, sep, body = spec.partition("=")
    if not sep or not body.strip():
        raise ParameterError(f"--values {spec!r}: expected NAME[:TYPE]=A,B,C")
    values: list[ParamValue] = []
    name = ""
    type_name = "str"
    for text in body.split(","):
        name, param = parse_parameter(f"{head}={text.strip()}")
        type_name = param.type_name
        if param.value in values:
            raise ParameterError(f"--values {spec!r}: {text.strip()!r} is given twice")
        values.append(param.value)
    if len(values) > MAX_VALUES:
        raise ParameterError(f"--values: {len(values)} values; at most {MAX_VALUES}")
    return BackfillRange(name, type_name, tuple(values), "values", spec)


def parse(kind: str, spec: str, step: str | None) -> BackfillRange:
    """What the repository stored, read back."""
    return parse_range(spec, step) if kind == "range" else parse_values(spec)


def _walk(
    spec: str, first: JobParameter, last: JobParameter, step: str | None
) -> Iterator[ParamValue]:
    nth = _nth(spec, first.type_name, step, first.value)
    for count in range(MAX_VALUES + 1):
        value = nth(count)
        if value > last.value:  # type: ignore[operator]
            return
        if count == MAX_VALUES:
            raise ParameterError(
                f"--range {spec!r}: more than {MAX_VALUES} values; use a longer --step"
            )
        yield value


def _nth(spec: str, kind: str, step: str | None, first: ParamValue) -> Callable[[int], ParamValue]:
    """The n-th value from the first: months count from the first (Jan 31 + 1 month is Feb 28,
    + 2 months Mar 31), so a month end is never lost on the way."""
    where = f"--range {spec!r}: --step {step!r}"
    if kind == "int":
        try:
            by = int(step) if step is not None else 1
        except ValueError:
            raise ParameterError(f"{where} is not an integer") from None
        if by <= 0:
            raise ParameterError(f"{where} must be positive")
        assert isinstance(first, int)
        return lambda n: first + n * by
    if step is None and kind == "datetime":
        raise ParameterError(f"--range {spec!r}: a range of datetimes needs --step (e.g. 1h)")
    match = _STEP.match((step or "1d").lower())
    if match is None or int(match.group(1)) <= 0:
        raise ParameterError(f"{where}: expected a positive count and a unit, e.g. 1d")
    count, unit = int(match.group(1)), match.group(2)
    assert isinstance(first, dt.date)
    if kind == "date":
        if unit in _MONTHS:
            return lambda n: _add_months(first, n * count)
        if unit not in _DATE_UNITS:
            raise ParameterError(f"{where}: dates step by d (days), w (weeks) or month")
        delta = dt.timedelta(days=count * (7 if _DATE_UNITS[unit] == "w" else 1))
    elif unit in _SECONDS:
        delta = dt.timedelta(seconds=count * _SECONDS[unit])
    else:
        raise ParameterError(f"{where}: datetimes step by s, min, h, d or w")
    return lambda n: first + n * delta


def _add_months(first: dt.date, months: int) -> dt.date:
    year, month = divmod(first.month - 1 + months, 12)
    year += first.year
    day = min(first.day, calendar.monthrange(year, month + 1)[1])
    return first.replace(year=year, month=month + 1, day=day)
