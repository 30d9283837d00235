"""Worker pools: bounded thread pools that run jobs (and, later, partitions)."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


class WorkerPool:
    """A bounded pool of named threads; work beyond ``size`` queues until a thread frees."""

    def __init__(self, name: str, size: int) -> None:
        if size < 1:
            raise ValueError(f"pool {name!r}: size must be >= 1, got {size}")
        self.name = name
        self.size = size
        self._executor = ThreadPoolExecutor(max_workers=size, thread_name_prefix=name)

    def submit(self, fn: Callable[[], T]) -> Future[T]:
        return self._executor.submit(fn)

    def shutdown(self, wait: bool = True) -> None:
        self._executor.shutdown(wait=wait)
