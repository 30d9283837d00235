"""The cyclic GC's view of a long chunk step: what lived before it is not traversed again.

A chunk holds thousands of items at once (dataclasses, lists: objects the cyclic GC tracks).
They survive the young collections while the chunk is gathered and reach the oldest
generation, and every few chunks that makes CPython run a full collection, which walks every
object of the process: the modules, SQLAlchemy's and the driver's structures, the user's own.
On the typed import benchmark that was a fifth of the step's CPU (0.42-0.48 s of 2.3 s per
200,000 rows). ``gc.freeze()`` moves what exists to the permanent generation, which collections
skip; the step's own objects are collected as before, and ``gc.unfreeze()`` at its end hands
the rest back. Nothing is freed later than the step's end: cycles that existed, or that older
objects form while it runs, are collected by the first full collection after it.

Unfreezing has a price: CPython decides when to run a full collection from the size of the old
generation it last saw, which the frozen objects were not part of, so the first collection
after the step walks everything again. That is one collection a step; a long step saves one
every few chunks, a small one (a test's, a short partition's) would only lose. So a step
freezes at a chunk boundary once it has read ``after`` items (50,000 by default), not at its
start.

The freeze belongs to the process, so a step freezes only when nothing is frozen: when the
application froze objects itself (before forking workers, say), or another step of the process
already did, it leaves the GC alone, and it never unfreezes what it did not freeze.
"""

from __future__ import annotations

import gc

# Items a chunk step reads before it freezes (None in ChunkStep: never).
FREEZE_AFTER = 50_000


class GcFreeze:
    """One chunk step execution's freeze: taken at most once, released at the step's end."""

    def __init__(self, after: int | None) -> None:
        self._after = after
        self.frozen = False  # whether this step froze (and so unfreezes)

    def at_boundary(self, items_read: int) -> None:
        """Between chunks: freeze once ``items_read`` (this run's) reaches the threshold."""
        if self._after is None or items_read < self._after:
            return
        self._after = None  # decided, whatever the outcome
        if gc.get_freeze_count() == 0:
            gc.freeze()
            self.frozen = True

    def release(self) -> None:
        if self.frozen:
            self.frozen = False
            gc.unfreeze()
