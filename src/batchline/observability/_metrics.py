"""What both metric backends share: observer events turned into durations, gauges and counts."""

from __future__ import annotations

import operator
import time
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from batchline.model import JobExecution, StepExecution

# The step execution counters the item metrics are taken from, in this order.
_COUNTED = (
    "read_count",
    "write_count",
    "filter_count",
    "read_skip_count",
    "process_skip_count",
    "write_skip_count",
)


class ItemCounts(NamedTuple):
    """What one committed chunk added to a step execution."""

    read: int
    written: int
    filtered: int
    read_skips: int
    process_skips: int
    write_skips: int

    @property
    def processed(self) -> int:
        # Every item read reaches the processor, except those it failed on and skipped.
        return self.read - self.process_skips

    @property
    def skips(self) -> dict[str, int]:
        return {"read": self.read_skips, "process": self.process_skips, "write": self.write_skips}


def job_of(se: StepExecution) -> str:
    return se.job_execution.job_name if se.job_execution is not None else "?"


# The counters as a tuple, in one C call: this runs at every chunk.
_snapshot = operator.attrgetter(*_COUNTED)
_ZERO = (0,) * len(_COUNTED)


class MetricsObserver:
    """Keeps start times and the counters last seen per execution, and calls the recording
    methods a backend implements. Each execution's events come from one thread, so the dicts
    (keyed by execution) need no lock."""

    # Whether partitions that ran in other processes are counted here when their manager ends,
    # from the counters the manager read back: yes for a backend whose workers cannot export
    # (Prometheus, scraped in the manager's process); OpenTelemetry's workers export their own.
    counts_remote_partitions = False

    def __init__(self) -> None:
        self._started: dict[tuple[str, int], float] = {}
        self._seen: dict[int, tuple[int, ...]] = {}
        # The partitions this process ran, by (job execution, manager step).
        self._local: dict[tuple[int, str], set[int]] = {}

    # --- what a backend records -------------------------------------------------------------

    def record_job_active(self, job: str, change: int) -> None:
        raise NotImplementedError

    def record_job(self, job: str, status: str, seconds: float) -> None:
        raise NotImplementedError

    def record_step_active(self, job: str, step: str, change: int) -> None:
        raise NotImplementedError

    def record_step(self, job: str, step: str, status: str, seconds: float) -> None:
        raise NotImplementedError

    def record_items(self, job: str, step: str, counts: ItemCounts) -> None:
        raise NotImplementedError

    def record_chunk_write(self, job: str, step: str, status: str, seconds: float) -> None:
        raise NotImplementedError

    # --- observer events --------------------------------------------------------------------

    def job_started(self, execution: JobExecution) -> None:
        self._started["job", execution.id] = time.perf_counter()
        self.record_job_active(execution.job_name, 1)

    def job_ended(self, execution: JobExecution) -> None:
        started = self._started.pop(("job", execution.id), None)
        self.record_job_active(execution.job_name, -1)
        if started is not None:
            seconds = time.perf_counter() - started
            self.record_job(execution.job_name, execution.status.value, seconds)

    def step_started(self, se: StepExecution, partition_of: str | None) -> None:
        self._started["step", se.id] = time.perf_counter()
        self._seen[se.id] = _snapshot(se)
        if partition_of is not None:
            self._local.setdefault((se.job_execution_id, partition_of), set()).add(se.id)
        self.record_step_active(job_of(se), se.step_name, 1)

    def step_ended(self, se: StepExecution, partition_of: str | None) -> None:
        started = self._started.pop(("step", se.id), None)
        self._seen.pop(se.id, None)
        job = job_of(se)
        self.record_step_active(job, se.step_name, -1)
        if started is not None:
            self.record_step(job, se.step_name, se.status.value, time.perf_counter() - started)
        if partition_of is None:
            local = self._local.pop((se.job_execution_id, se.step_name), set())
            if self.counts_remote_partitions:
                self._count_remote(se, local)

    def _count_remote(self, manager: StepExecution, local: set[int]) -> None:
        """The partitions of ``manager`` that ran elsewhere, as the repository recorded them."""
        execution = manager.job_execution
        prefix = f"{manager.step_name}:"
        for other in list(execution.step_executions) if execution is not None else []:
            name = other.step_name
            if (
                other.id in local
                or other.job_execution_id != manager.job_execution_id
                or not (name.startswith(prefix) and name[len(prefix) :].isdigit())
            ):
                continue
            job = job_of(manager)
            counts: tuple[int, ...] = _snapshot(other)
            if any(counts):
                self.record_items(job, name, ItemCounts(*counts))
            if other.start_time is not None and other.end_time is not None:
                seconds = (other.end_time - other.start_time).total_seconds()
                self.record_step(job, name, other.status.value, seconds)

    def chunk_ended(
        self,
        se: StepExecution,
        number: int,
        write_seconds: float | None,
        error: BaseException | None,
    ) -> None:
        job = job_of(se)
        if write_seconds is not None:
            status = "SUCCESS" if error is None else "FAILURE"
            self.record_chunk_write(job, se.step_name, status, write_seconds)
        if error is not None:
            return
        now: tuple[int, ...] = _snapshot(se)
        before = self._seen.get(se.id, _ZERO)
        self._seen[se.id] = now
        if now != before:
            self.record_items(job, se.step_name, ItemCounts(*map(operator.sub, now, before)))
