"""Option types the commands share.

Click's ``FloatRange`` lets ``nan`` through (every comparison with it is false) and takes
``inf``: a duration given as either made a loop spin or a timer never fire.
"""

from __future__ import annotations

import math
from typing import Any

import click


class Seconds(click.ParamType[float, Any]):
    """A finite number of seconds, above ``minimum`` (or at least it, with ``inclusive``)."""

    name = "seconds"

    def __init__(self, minimum: float = 0.0, *, inclusive: bool = False) -> None:
        self.minimum = minimum
        self.inclusive = inclusive

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        if isinstance(value, float | int) and not isinstance(value, bool):
            number = float(value)
        else:
            try:
                number = float(str(value))
            except ValueError:
                self.fail(f"{value!r} is not a number of seconds", param, ctx)
        low_ok = number >= self.minimum if self.inclusive else number > self.minimum
        if not math.isfinite(number) or not low_ok:
            bound = f">= {self.minimum:g}" if self.inclusive else f"> {self.minimum:g}"
            self.fail(f"{value!r} is not a finite number of seconds {bound}", param, ctx)
        return number


SECONDS = Seconds()  # strictly positive
SECONDS_OR_ZERO = Seconds(inclusive=True)  # 0 means "no limit" where the help says so
