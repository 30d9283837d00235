"""Waiting in tests for something another thread or process makes true.

A job started with ``start_async``, a trigger, a worker process: a test must wait until they
have done something (committed a chunk, started a file's job) without a fixed sleep, which is
either too short on a busy machine or wastes time on an idle one::

    committed = eventually(lambda: engine.step_executions(handle.execution_id),
                           message="no step committed")
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def eventually(
    predicate: Callable[[], T | None],
    *,
    timeout: float = 30.0,
    interval: float = 0.05,
    message: str | Callable[[], str] = "the condition never held",
) -> T:
    """Call ``predicate`` every ``interval`` seconds until it returns something true; return that.

    After ``timeout`` seconds raises AssertionError with ``message`` (a callable is asked only
    then, so it can describe the state at the moment of giving up). An exception the predicate
    raises, an assertion for instance, ends the wait at once.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            text = message() if callable(message) else message
            raise AssertionError(f"{text} (waited {timeout:g} s)")
        time.sleep(interval)
