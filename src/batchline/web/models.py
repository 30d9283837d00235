"""The REST API's response schemas (published in /api/openapi.json) and their conversions."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel

from batchline.model import JobExecution, JobInstance, SkippedItem, StepExecution
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


class ExecutionDetail(Execution):
    context: dict[str, Any]
    steps: list[Step]
    skip_counts: dict[str, int]
    actions: list[str]


class ExecutionPage(BaseModel):
    items: list[Execution]
    next_after: int | None


class Instance(BaseModel):
    id: int
    job_name: str
    job_key: str


class InstancePage(BaseModel):
    items: list[Instance]
    next_after: int | None
    total: int


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


class Recovered(BaseModel):
    items: list[Execution]


def execution(e: JobExecution) -> Execution:
    return Execution(
        id=e.id,
        job_name=e.job_name,
        instance_id=e.instance.id,
        status=e.status.value,
        exit_code=e.exit_status.code,
        exit_message=e.exit_status.description,
        parameters={
            name: Parameter(**e.parameters.parameter(name).to_json()) for name in e.parameters
        },
        create_time=e.create_time,
        start_time=e.start_time,
        end_time=e.end_time,
        last_updated=e.last_updated,
    )


# A partition runs as a step execution named "<partitioned step>:<index, 4 digits or more>".
_PARTITION = re.compile(r"^(.+):\d{4,}$")


def step(s: StepExecution) -> Step:
    partition = _PARTITION.match(s.step_name)
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
    )


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
