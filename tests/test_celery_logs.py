"""Execution logs from Celery workers: a partition's lines are kept with its job's execution."""

from __future__ import annotations

import os

from batchline import BatchStatus, Engine, SqlJobRepository
from batchline.repository.logs import ExecutionLogs
from tests.test_celery import Workers, _job, setup

__all__ = ["setup"]  # the fixture, used by name


def test_worker_partitions_log_into_the_execution(setup: tuple[str, Workers]) -> None:
    """The partitions' lines logged in the workers' processes are read with the execution."""
    url, workers = setup
    workers.start()
    with Engine(SqlJobRepository(url)) as engine:
        execution = engine.start(_job("celery_job", workers.env), {"db": url})  # type: ignore[arg-type]
        assert execution.status is BatchStatus.COMPLETED, execution.exit_status.description
        logs = ExecutionLogs(engine.repository.engine).page(execution.id)  # type: ignore[attr-defined]
    here = f":{os.getpid()}"
    remote = [x for x in logs.items if not x.source.endswith(here)]
    started = {x.step_name for x in remote if x.message.startswith("step ")}
    assert started and all(name and ":" in name for name in started), started
    assert any(x.source.endswith(here) and x.message.startswith("job ") for x in logs.items)
