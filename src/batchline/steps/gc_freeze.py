"""The cyclic GC's view of a chunk step: what lived before the step is not traversed again.

A chunk holds thousands of items at once (dataclasses, dicts: objects the cyclic GC tracks).
They survive the young collections while the chunk is gathered and reach the oldest
generation, and every few chunks that makes CPython run a full collection, which walks every
object of the process: the modules, SQLAlchemy's and the driver's structures, the user's own.
On the typed import benchmark that was a fifth of the step's CPU (0.42-0.48 s of 2.3 s per
200,000 rows). ``gc.freeze()`` at the step's start moves what exists then to the permanent
generation, which collections skip; the step's own objects are collected as before, and
``gc.unfreeze()`` at its end hands the rest back. Nothing is freed later than the step's end:
cycles that existed, or that objects older than the step form while it runs, are collected by
the first full collection after it.

The freeze belongs to the process, so a step freezes only when nothing is frozen at its start:
when the application froze objects itself (before forking workers, say), or another step of
the process already did, it leaves the GC alone, and it never unfreezes what it did not freeze.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def frozen_gc(enabled: bool = True) -> Iterator[bool]:
    """Freeze the process's objects for the block when ``enabled`` and nothing is frozen yet;
    yields whether it did."""
    owner = enabled and gc.get_freeze_count() == 0
    if owner:
        gc.freeze()
    try:
        yield owner
    finally:
        if owner:
            gc.unfreeze()
