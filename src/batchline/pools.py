"""Worker pools: bounded thread pools that run jobs, split flows and partitions.

Work that waits for other work on the same pool (a split flow waiting for its steps' partitions,
a split inside a split) could deadlock a bounded pool. ``run_all`` prevents it: a pool thread
that waits runs the tasks it waits for that have not started yet itself, so every thread of the
pool is always either working or waiting on a task that another thread is running.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Outcome(Generic[T]):
    """What one task of ``run_all`` returned, or what it raised."""

    value: T | None = None
    error: BaseException | None = None


class WorkerPool:
    """A bounded pool of named threads; work beyond ``size`` queues until a thread frees."""

    def __init__(self, name: str, size: int) -> None:
        if size < 1:
            raise ValueError(f"pool {name!r}: size must be >= 1, got {size}")
        self.name = name
        self.size = size
        self._threads: set[int] = set()
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(
            max_workers=size, thread_name_prefix=name, initializer=self._enrol
        )

    def __repr__(self) -> str:
        return f"WorkerPool({self.name!r}, size={self.size})"

    def _enrol(self) -> None:
        with self._lock:
            self._threads.add(threading.get_ident())

    def in_pool(self) -> bool:
        """Whether the calling thread is one of this pool's threads."""
        with self._lock:
            return threading.get_ident() in self._threads

    def submit(self, fn: Callable[[], T]) -> Future[T]:
        return self._executor.submit(fn)

    def run_all(self, tasks: Sequence[Callable[[], T]]) -> list[Outcome[T]]:
        """Run every task on the pool and wait for all; outcomes in the order of the tasks.

        Called from one of the pool's own threads, the caller runs the tasks still queued
        itself instead of blocking a thread the queued tasks need.
        """
        helping = self.in_pool()
        futures = [self._executor.submit(task) for task in tasks]
        outcomes: list[Outcome[T]] = []
        for task, future in zip(tasks, futures, strict=True):
            if helping and future.cancel():
                outcomes.append(_call(task))
                continue
            try:
                outcomes.append(Outcome(value=future.result()))
            except BaseException as exc:
                outcomes.append(Outcome(error=exc))
        return outcomes

    def shutdown(self, wait: bool = True) -> None:
        self._executor.shutdown(wait=wait)


def _call(task: Callable[[], T]) -> Outcome[T]:
    try:
        return Outcome(value=task())
    except BaseException as exc:
        return Outcome(error=exc)
