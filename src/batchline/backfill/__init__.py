"""Backfills: one job over a range of parameter values, one instance per value, resumable.

``engine.backfill(job, "date:date=2026-11-01..2026-11-30", concurrency=4)`` records the
backfill in the repository (``store.py``) and runs it (``runner.py``) in a thread; the handle
reads the grid (``grid.py``) from the job's instances. ``batchline backfill`` is the command.
"""

from __future__ import annotations

import typing as _typing

from batchline import _lazy

_EXPORTS = {
    "BackfillHandle": "batchline.backfill.operations",
    "BackfillRange": "batchline.backfill.ranges",
    "BackfillRecord": "batchline.backfill.store",
    "BackfillState": "batchline.backfill.grid",
    "Cell": "batchline.backfill.grid",
    "parse_range": "batchline.backfill.ranges",
    "parse_values": "batchline.backfill.ranges",
}

__all__ = [
    "BackfillHandle",
    "BackfillRange",
    "BackfillRecord",
    "BackfillState",
    "Cell",
    "parse_range",
    "parse_values",
]

if _typing.TYPE_CHECKING:
    from batchline.backfill.grid import BackfillState, Cell
    from batchline.backfill.operations import BackfillHandle
    from batchline.backfill.ranges import BackfillRange, parse_range, parse_values
    from batchline.backfill.store import BackfillRecord
else:
    __getattr__, __dir__ = _lazy.exports(__name__, _EXPORTS, __all__)
