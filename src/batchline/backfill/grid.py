"""A backfill's grid: each value's instance and how its newest execution stands, read from the
repository (any process, any time), with counts, throughput and an ETA."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass

from batchline.backfill.ranges import BackfillRange
from batchline.backfill.store import BackfillRecord, BackfillStore
from batchline.model import utcnow
from batchline.parameters import JobParameters, ParamValue
from batchline.status import BatchStatus

PENDING = "PENDING"  # a value whose instance has no execution yet


def instance_parameters(
    parameters: JobParameters, values: BackfillRange, value: ParamValue
) -> JobParameters:
    """A value's instance: the backfill's parameters with the value as identifying NAME."""
    return parameters.merged(JobParameters({values.name: value}))


@dataclass(frozen=True)
class Cell:
    """One value of the grid: its instance's newest execution (None: not run yet)."""

    value: str
    status: str
    execution_id: int | None
    start_time: dt.datetime | None
    end_time: dt.datetime | None

    @property
    def finished(self) -> bool:
        return self.status not in (PENDING, "STARTING", "STARTED", "STOPPING")


@dataclass(frozen=True)
class BackfillState:
    """The grid of a backfill at one moment."""

    record: BackfillRecord
    status: str
    cells: tuple[Cell, ...]
    counts: dict[str, int]
    per_minute: float | None
    eta_seconds: float | None

    @property
    def id(self) -> int:
        return self.record.id

    @property
    def total(self) -> int:
        return len(self.cells)

    @property
    def finished(self) -> int:
        return sum(1 for c in self.cells if c.finished)

    def worst(self) -> BatchStatus | None:
        """The most severe outcome among the values (None: none ended yet)."""
        worst: BatchStatus | None = None
        for cell in self.cells:
            if cell.finished:
                status = BatchStatus(cell.status)
                worst = status if worst is None else worst.upgrade(status)
        if worst is not None and self.finished < self.total:
            # values never run (a stopped backfill) count as stopped, never as completed
            worst = worst.upgrade(BatchStatus.STOPPED)
        return worst


def read_state(store: BackfillStore, record: BackfillRecord, lease: float) -> BackfillState:
    values = record.values()
    keys = [instance_parameters(record.parameters, values, v).key for v in values.values]
    found = store.instances(record.job_name, keys)
    cells = []
    for value, key in zip(values.values, keys, strict=True):
        state = found.get(key)
        if state is None or state.status is None:
            cells.append(Cell(values.text(value), PENDING, None, None, None))
        else:
            cells.append(
                Cell(
                    values.text(value),
                    state.status.value,
                    state.execution_id,
                    state.start_time,
                    state.end_time,
                )
            )
    now = utcnow()
    counts = dict(Counter(c.status for c in cells))
    per_minute, eta = _pace(record, cells, now)
    return BackfillState(
        record, record.shown_status(lease, now), tuple(cells), counts, per_minute, eta
    )


def _pace(
    record: BackfillRecord, cells: list[Cell], now: dt.datetime
) -> tuple[float | None, float | None]:
    """Values ended since the backfill began, per minute; the time the rest would take at
    that pace while it runs."""
    since = record.create_time
    ended = [c for c in cells if c.finished and c.end_time is not None and c.end_time >= since]
    until = record.end_time or now
    seconds = (until - since).total_seconds()
    if not ended or seconds <= 0:
        return None, None
    rate = len(ended) / seconds
    left = sum(1 for c in cells if not c.finished)
    running = record.status in ("RUNNING", "STOPPING") and record.end_time is None
    return rate * 60, (left / rate if running and left else None)
