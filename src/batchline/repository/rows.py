"""Repository rows to model objects: shared by the repository's writes and its queries."""

from __future__ import annotations

import json

from sqlalchemy.engine import RowMapping

from batchline.model import COUNTERS, ExecutionContext, JobExecution, JobInstance, StepExecution
from batchline.parameters import JobParameters
from batchline.status import BatchStatus, ExitStatus


def to_job_execution(row: RowMapping) -> JobExecution:
    return JobExecution(
        id=row["id"],
        instance=JobInstance(row["job_instance_id"], row["job_name"], row["job_key"]),
        parameters=JobParameters.from_json(json.loads(row["parameters"])),
        status=BatchStatus(row["status"]),
        exit_status=ExitStatus(row["exit_code"], row["exit_message"]),
        context=ExecutionContext.from_json(row["context"]),
        create_time=row["create_time"],
        start_time=row["start_time"],
        end_time=row["end_time"],
        last_updated=row["last_updated"],
        version=row["version"],
    )


def to_step_execution(row: RowMapping) -> StepExecution:
    se = StepExecution(
        id=row["id"],
        job_execution_id=row["job_execution_id"],
        step_name=row["step_name"],
        status=BatchStatus(row["status"]),
        exit_status=ExitStatus(row["exit_code"], row["exit_message"]),
        context=ExecutionContext.from_json(row["context"]),
        start_time=row["start_time"],
        end_time=row["end_time"],
        last_updated=row["last_updated"],
        version=row["version"],
    )
    se.restore_counters({name: int(row[name]) for name in COUNTERS})
    return se
