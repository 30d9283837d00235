"""Partitioners over ranges computed from their bounds alone: integers and ordered keys.

Both produce the partitions' contexts arithmetically, without touching the data; a reader takes
its bounds from the context keys below (``LOWER`` inclusive; ``UPPER`` inclusive or ``BELOW``
exclusive; None means unbounded).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from batchline.errors import ConfigurationError

LOWER = "partition.min"
UPPER = "partition.max"
BELOW = "partition.below"
COUNT = "partition.count"


class IntegerRangePartitioner:
    """Splits the integers ``first..last`` (both included) into ``grid_size`` contiguous ranges.

    Ranges differ in size by one at most; an empty range (``last < first``) gives no partition,
    and a range shorter than the grid gives one partition per integer.
    """

    def __init__(self, first: int, last: int) -> None:
        self.first = first
        self.last = last

    def __repr__(self) -> str:
        return f"IntegerRangePartitioner({self.first}, {self.last})"

    def partition(self, grid_size: int) -> list[dict[str, Any]]:
        return [
            {LOWER: lo, UPPER: hi} for lo, hi in split_integers(self.first, self.last, grid_size)
        ]


def split_integers(first: int, last: int, parts: int) -> list[tuple[int, int]]:
    """``first..last`` as at most ``parts`` contiguous inclusive ranges of near-equal size."""
    if parts < 1:
        raise ConfigurationError(f"grid size must be >= 1, got {parts}")
    total = last - first + 1
    if total <= 0:
        return []
    parts = min(parts, total)
    size, extra = divmod(total, parts)
    ranges = []
    lo = first
    for index in range(parts):
        hi = lo + size - 1 + (1 if index < extra else 0)
        ranges.append((lo, hi))
        lo = hi + 1
    return ranges


class KeyRangePartitioner:
    """Splits any ordered key space (strings, ISO dates, numbers) at the given boundaries.

    ``boundaries`` ``[b1, ..., bn]`` give n + 1 half-open ranges: keys below b1, then
    ``b1 <= key < b2``, ..., and keys from bn on; ``grid_size`` is ignored, the boundaries decide.
    """

    def __init__(self, boundaries: Sequence[Any]) -> None:
        values = list(boundaries)
        if any(b is None for b in values) or values != sorted(values):
            raise ConfigurationError(f"key range boundaries must be sorted, not None: {values!r}")
        if len(set(values)) != len(values):
            raise ConfigurationError(f"key range boundaries repeat a value: {values!r}")
        self.boundaries = values

    def __repr__(self) -> str:
        return f"KeyRangePartitioner({self.boundaries!r})"

    def partition(self, grid_size: int) -> list[dict[str, Any]]:
        edges: list[Any] = [None, *self.boundaries, None]
        return [{LOWER: edges[i], BELOW: edges[i + 1]} for i in range(len(edges) - 1)]
