"""The REST API's response schemas (published in /api/openapi.json) and their conversions."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field

from batchline.model import JobExecution, JobInstance, SkippedItem, StepExecution, utcnow
from batchline.parameters import JobParameters
from batchline.repository.filters import JobSummary
from batchline.status import BatchStatus

Scalar = str | int | float | bool


def _utc(moment: dt.datetime) -> dt.datetime:
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment


# The repository keeps naive UTC times; the API says so (RFC 3339 needs the offset).
Time = Annotated[dt.datetime, AfterValidator(_utc)]


class Parameter(BaseModel):
    type: str
    value: Scalar
    identifying: bool


class Execution(BaseModel):
    id: int
    job_name: str
    instance_id: int
    status: str
    exit_code: str
    exit_message: str
    parameters: dict[str, Parameter]
    create_time: Time
    start_time: Time | None
    end_time: Time | None
    last_updated: Time | None
    with_skips: bool | None = Field(
        default=None, description="it skipped items (in lists; None where not looked up)"
    )


class Step(BaseModel):
    id: int
    name: str
    partition_of: str | None
    status: str
    exit_code: str
    exit_message: str
    counters: dict[str, int]
    context: dict[str, Any]
    start_time: Time | None
    end_time: Time | None
    last_updated: Time | None
    rate: float | None = Field(
        None, description="items read per second, from its start to its end (or to now)"
    )
    expected: int | None = Field(
        None,
        description="items its partition holds, when the partitioner says (integer and table "
        "ranges); for a partitioned step, the sum of its partitions'",
    )
    progress: float | None = Field(None, description="read / expected, 0 to 1")
    eta_seconds: float | None = Field(None, description="seconds left at this rate, while it runs")


class ExecutionDetail(Execution):
    context: dict[str, Any]
    steps: list[Step]
    skip_counts: dict[str, int]
    actions: list[str]


class ExecutionPage(BaseModel):
    items: list[Execution]
    next_after: int | None = Field(description="pass as after for the older page")
    previous_before: int | None = Field(None, description="pass as before for the newer page")
    total: int | None = Field(None, description="how many match (a lower bound if not exact)")
    total_exact: bool = True


class Instance(BaseModel):
    id: int
    job_name: str
    job_key: str


class InstancePage(BaseModel):
    items: list[Instance]
    next_after: int | None
    total: int = Field(description="the job's instances, counted up to 1,000")
    total_exact: bool = Field(default=True, description="false: there are more than total")


class Skipped(BaseModel):
    id: int
    step_name: str | None
    phase: str
    position: str | None
    item: str | None
    error_type: str
    error_message: str
    create_time: Time


class SkippedPage(BaseModel):
    items: list[Skipped]
    next_after: int | None


class Job(BaseModel):
    name: str
    registered: bool
    steps: list[str]
    last: Execution | None
    counts: dict[str, int]
    average_seconds: float | None


class Schedule(BaseModel):
    id: str
    job_name: str
    cron: str = Field(description="the cron expression: 5 fields, or 6 with seconds first")
    timezone: str
    parameters: dict[str, Parameter] = Field(description="besides the fire time's")
    next_fire_time: Time | None
    recent: list[Execution] = Field(description="the last executions it launched, newest first")
    paused: bool = Field(False, description="paused by an operator (every replica skips it)")


class Recovered(BaseModel):
    items: list[Execution]


def parameters(given: JobParameters) -> dict[str, Parameter]:
    return {name: Parameter(**given.parameter(name).to_json()) for name in given}


def execution(e: JobExecution) -> Execution:
    return Execution(
        id=e.id,
        job_name=e.job_name,
        instance_id=e.instance.id,
        status=e.status.value,
        exit_code=e.exit_status.code,
        exit_message=e.exit_status.description,
        parameters=parameters(e.parameters),
        create_time=e.create_time,
        start_time=e.start_time,
        end_time=e.end_time,
        last_updated=e.last_updated,
    )


# A partition runs as a step execution named "<partitioned step>:<index, 4 digits or more>".
_PARTITION = re.compile(r"^(.+):\d{4,}$")


# What a table partitioner writes in a partition's first context: the rows it holds
# (batchline.partitioners.table). Its key range (partition.min/max) is not used: keys are not
# items (a sparse key range holds fewer, a key may yield several), and a guess from it showed
# a partition at 100% with "ETA 0.0 s" when it was a third done.
_COUNT = "partition.count"
# What a chunk step whose reader has estimated_size() stores (batchline.steps.chunk).
_EXPECTED = "batchline.expected"


def _expected(context: dict[str, Any]) -> int | None:
    estimate = context.get(_EXPECTED)
    if isinstance(estimate, int) and not isinstance(estimate, bool):
        return estimate
    count = context.get(_COUNT)
    if isinstance(count, int) and not isinstance(count, bool):
        return count
    return None


def _progress(
    read: int, expected: int | None, rate: float | None, running: bool, completed: bool
) -> tuple[float | None, float | None]:
    """(fraction done, seconds left) from what is known; a completed step is done (a task
    step given a range reads nothing it counts). A running step that has read more than was
    expected has a wrong estimate: its progress is unknown, not 100%."""
    if expected is None:
        return None, None
    if running and read > expected:
        return None, None
    done = 1.0 if completed or expected <= 0 else min(read / expected, 1.0)
    left = None
    if running and rate:
        left = max(expected - read, 0) / rate
    return round(done, 4), None if left is None else round(left, 1)


def step(s: StepExecution, now: dt.datetime | None = None) -> Step:
    partition = _PARTITION.match(s.step_name)
    read = s.read_count
    rate = None
    if s.start_time is not None:
        elapsed = ((s.end_time or now or utcnow()) - s.start_time).total_seconds()
        rate = round(read / elapsed, 3) if elapsed > 0 else None
    expected = _expected(dict(s.context))
    completed = s.status is BatchStatus.COMPLETED
    progress, eta = _progress(read, expected, rate, s.status.is_running, completed)
    return Step(
        id=s.id,
        name=s.step_name,
        partition_of=partition[1] if partition else None,
        status=s.status.value,
        exit_code=s.exit_status.code,
        exit_message=s.exit_status.description,
        counters=s.counters(),
        context=dict(s.context),
        start_time=s.start_time,
        end_time=s.end_time,
        last_updated=s.last_updated,
        rate=rate,
        expected=expected,
        progress=progress,
        eta_seconds=eta,
    )


def steps(found: list[StepExecution], now: dt.datetime | None = None) -> list[Step]:
    """The steps of an execution; a partitioned step's progress is its partitions' (while it
    runs its own counters are still zero: they are summed when it ends)."""
    made = [step(s, now) for s in found]
    for manager in made:
        parts = [p for p in made if p.partition_of == manager.name]
        if not parts or any(p.expected is None for p in parts):
            continue
        manager.expected = sum(p.expected or 0 for p in parts)
        read = sum(p.counters.get("read_count", 0) for p in parts)
        running = manager.status in ("STARTING", "STARTED", "STOPPING")
        if running:
            manager.rate = round(sum(p.rate or 0.0 for p in parts if p.end_time is None), 3)
        manager.progress, manager.eta_seconds = _progress(
            read, manager.expected, manager.rate, running, manager.status == "COMPLETED"
        )
    return made


def actions(e: JobExecution, *, is_last: bool, registered: bool) -> list[str]:
    """What the execution's state allows: stop while it runs (not already stopping); restart a
    FAILED or STOPPED instance's last execution of a loaded job; abandon what has ended without
    completing."""
    found = []
    if e.status in (BatchStatus.STARTING, BatchStatus.STARTED):
        found.append("stop")
    if e.status in (BatchStatus.FAILED, BatchStatus.STOPPED) and is_last and registered:
        found.append("restart")
    if e.status in (BatchStatus.FAILED, BatchStatus.STOPPED, BatchStatus.UNKNOWN):
        found.append("abandon")
    return found


def skipped(s: SkippedItem) -> Skipped:
    return Skipped(
        id=s.id or 0,
        step_name=s.step_name,
        phase=s.phase,
        position=s.position,
        item=s.item,
        error_type=s.error_type,
        error_message=s.error_message,
        create_time=s.create_time,
    )


def instance(i: JobInstance) -> Instance:
    return Instance(id=i.id, job_name=i.job_name, job_key=i.job_key)


def job(name: str, summary: JobSummary | None, steps: list[str] | None) -> Job:
    return Job(
        name=name,
        registered=steps is not None,
        steps=steps or [],
        last=execution(summary.last) if summary and summary.last else None,
        counts={s.value: n for s, n in summary.counts.items()} if summary else {},
        average_seconds=summary.average_seconds if summary else None,
    )
