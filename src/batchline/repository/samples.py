"""Progress samples: a step execution's counters now and then, for throughput over a run.

There is no other history of counts (a step execution's row holds only its latest), so the SQL
repository adds a row to ``batch_step_sample`` when a chunk commits and the step's last sample
is ``interval`` seconds old or more, inside that chunk's transaction: a sample costs one INSERT
every few seconds per running step, nothing on the other chunks, and it commits (or rolls back)
with the chunk's data. A step's final save adds one more, so every ended step has its totals.

A ``Sampler`` belongs to one repository object and remembers, per step execution it saw, when it
last sampled. Only the thread running a step saves its chunks (the design's rule), so each key is
read and written by one thread and needs no lock. A rolled-back chunk loses its sample; the next
one comes an interval later.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from batchline.repository.filters import ProgressSample
from batchline.repository.schema import step_execution, step_sample

DEFAULT_SAMPLE_INTERVAL = 5.0  # seconds between two samples of one step execution

_INSERT = step_sample.insert()
_SKIPS = ("read_skip_count", "process_skip_count", "write_skip_count")


class Sampler:
    """When a step execution is due a sample; ``interval`` None samples nothing, not even at the
    end; 0 samples every chunk."""

    def __init__(self, interval: float | None, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self.clock = clock
        self._last: dict[int, float] = {}

    def started(self, step_execution_id: int) -> None:
        """The step execution starts here: its first sample is due an interval from now."""
        if self.interval is not None:
            self._last[step_execution_id] = self.clock()

    def due(self, step_execution_id: int) -> bool:
        """Whether the chunk committing now carries a sample (and, if so, counts it as taken).
        A step first seen here (created by another process) starts counting now."""
        if self.interval is None:
            return False
        now = self.clock()
        last = self._last.setdefault(step_execution_id, now)
        if now - last < self.interval:
            return False
        self._last[step_execution_id] = now
        return True

    def ended(self, step_execution_id: int) -> bool:
        """The step's final save: forget it; whether that save carries a sample."""
        self._last.pop(step_execution_id, None)
        return self.interval is not None

    def write(
        self,
        conn: Connection,
        step_execution_id: int,
        job_execution_id: int,
        moment: dt.datetime,
        counters: Mapping[str, int],
    ) -> None:
        conn.execute(
            _INSERT,
            {
                "step_execution_id": step_execution_id,
                "job_execution_id": job_execution_id,
                "sample_time": moment,
                "read_count": counters["read_count"],
                "write_count": counters["write_count"],
                "filter_count": counters["filter_count"],
                "skip_count": sum(counters[name] for name in _SKIPS),
            },
        )


def read_samples(conn: Connection, job_execution_id: int, limit: int) -> list[ProgressSample]:
    """A job execution's samples in the order they were taken (at most ``limit``, the newest
    when there are more)."""
    query: Any = (
        sa.select(step_sample, step_execution.c.step_name)
        .join(step_execution, step_execution.c.id == step_sample.c.step_execution_id)
        .where(step_sample.c.job_execution_id == job_execution_id)
        .order_by(step_sample.c.id.desc())
        .limit(limit)
    )
    rows = conn.execute(query).mappings().all()
    return [
        ProgressSample(
            step_execution_id=int(row["step_execution_id"]),
            step_name=str(row["step_name"]),
            time=row["sample_time"],
            read_count=int(row["read_count"]),
            write_count=int(row["write_count"]),
            filter_count=int(row["filter_count"]),
            skip_count=int(row["skip_count"]),
        )
        for row in reversed(rows)
    ]
