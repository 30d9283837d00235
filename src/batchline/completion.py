"""When a chunk is complete: after N items, after T seconds, or whichever comes first.

The check runs after each read, so a slow reader's items are committed within the time bound
plus one read.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from batchline.errors import ConfigurationError


class CompletionPolicy(Protocol):
    """Decides when the chunk being read is complete.

    ``start()`` is called before a chunk's first read; ``is_complete(count)`` after each read
    with the number of items read into the chunk so far.
    """

    def start(self) -> None: ...

    def is_complete(self, count: int) -> bool: ...


class CountOrTimeCompletion:
    """Complete at ``size`` items or ``seconds`` after the chunk started, whichever comes first."""

    def __init__(
        self,
        size: int | None = None,
        seconds: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if size is None and seconds is None:
            raise ConfigurationError("a completion policy needs a size, a time, or both")
        if size is not None and size < 1:
            raise ConfigurationError(f"chunk size must be >= 1, got {size}")
        if seconds is not None and seconds <= 0:
            raise ConfigurationError(f"chunk time bound must be > 0 seconds, got {seconds}")
        self.size = size
        self.seconds = seconds
        self._clock = clock
        self._deadline = 0.0

    def __repr__(self) -> str:
        return f"CountOrTimeCompletion(size={self.size}, seconds={self.seconds})"

    def start(self) -> None:
        if self.seconds is not None:
            self._deadline = self._clock() + self.seconds

    def is_complete(self, count: int) -> bool:
        if self.size is not None and count >= self.size:
            return True
        return self.seconds is not None and self._clock() >= self._deadline
