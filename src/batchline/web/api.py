"""The REST API under /api: read with a read token, change with an operate token."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Body, Depends, Path, Query, Request
from pydantic import BaseModel, Field

from batchline.engine import Engine
from batchline.errors import NoSuchJob
from batchline.repository.filters import ExecutionQuery
from batchline.repository.tokens import OPERATE, READ
from batchline.status import BatchStatus
from batchline.web import forms, models
from batchline.web.auth import Caller, Guard
from batchline.web.launched import Launched
from batchline.web.problems import responses

if TYPE_CHECKING:
    from batchline.triggers.schedule import JobScheduler

MAX_ID = 2**63 - 1
RECENT_LAUNCHES = 5  # a schedule's last executions shown
SCANNED = 200  # a job's newest executions searched for them
Id = Annotated[int, Path(ge=1, le=MAX_ID)]
After = Annotated[int | None, Query(ge=1, le=MAX_ID, description="next_after of the last page")]
Limit = Annotated[int, Query(ge=1, le=1000)]
Name = Annotated[str, Path(min_length=1, max_length=100)]
STATUSES = [s.value for s in BatchStatus]


class StartParameter(BaseModel):
    value: str = Field(max_length=1000, description="the value as text, as on the CLI")
    type: str = Field("str", description="str, int, float, bool, date or datetime")
    identifying: bool = True


class StartRequest(BaseModel):
    parameters: dict[str, StartParameter] = Field(default_factory=dict)


class RecoverRequest(BaseModel):
    execution_id: int | None = Field(None, ge=1, le=MAX_ID)
    force: bool = False


def detail(engine: Engine, execution_id: int) -> models.ExecutionDetail:
    e = engine.get_execution(execution_id)
    newest = engine.find_executions(ExecutionQuery(instance_id=e.instance.id), limit=1)
    is_last = bool(newest.items) and newest.items[0].id == e.id
    return models.ExecutionDetail(
        **models.execution(e).model_dump(),
        context=dict(e.context),
        steps=models.steps(e.step_executions),
        skip_counts=engine.count_skipped(e.id),
        actions=models.actions(e, is_last=is_last, registered=e.job_name in engine.registry),
    )


def jobs(engine: Engine) -> list[models.Job]:
    summaries = {s.job_name: s for s in engine.job_summaries()}
    registered = {
        name: [s.name for s in engine.registry.get(name).steps] for name in engine.registry.names()
    }
    return [
        models.job(name, summaries.get(name), registered.get(name))
        for name in sorted(set(summaries) | set(registered))
    ]


def schedules(engine: Engine, scheduler: JobScheduler | None) -> list[models.Schedule]:
    """The schedules this server runs, each with its next fire time and last launches."""
    if scheduler is None:
        return []
    found = []
    for s in scheduler.schedules():
        query = forms.execution_query(s.job_name, [], None, None, [])
        newest = engine.find_executions(query, limit=SCANNED).items
        recent = scheduler.launched_by(s, newest)[:RECENT_LAUNCHES]
        found.append(
            models.Schedule(
                id=s.id,
                job_name=s.job_name,
                cron=s.cron,
                timezone=s.timezone,
                parameters=models.parameters(s.parameters),
                next_fire_time=s.next_fire_time,
                recent=[models.execution(e) for e in recent],
                paused=s.paused,
            )
        )
    return found


def router(
    engine: Engine, guard: Guard, launched: Launched, scheduler: JobScheduler | None = None
) -> APIRouter:
    def reader(request: Request) -> Caller:
        return guard.require(request, READ)

    def operator(request: Request) -> Caller:
        return guard.require(request, OPERATE)

    read = [Depends(reader)]
    operate = [Depends(operator)]
    api = APIRouter(prefix="/api", responses=responses(401, 403, 422))

    @api.get("/jobs", dependencies=read, response_model=list[models.Job])
    def list_jobs() -> list[models.Job]:
        """Every job, loaded or run: last execution, executions by status, average duration."""
        return jobs(engine)

    @api.get(
        "/jobs/{name}/instances",
        dependencies=read,
        response_model=models.InstancePage,
        responses=responses(400),
    )
    def job_instances(name: Name, after: After = None, limit: Limit = 50) -> models.InstancePage:
        forms.clean(name, "job name", 100)
        page = engine.job_instances(name, after=after, limit=limit)
        return models.InstancePage(
            items=[models.instance(i) for i in page.items],
            next_after=page.next_after,
            total=engine.count_job_instances(name),
        )

    @api.get(
        "/executions",
        dependencies=read,
        response_model=models.ExecutionPage,
        responses=responses(400),
    )
    def list_executions(
        job: Annotated[str | None, Query(max_length=100)] = None,
        status: Annotated[list[BatchStatus] | None, Query()] = None,
        since: Annotated[dt.datetime | None, Query(description="created at or after")] = None,
        until: Annotated[dt.datetime | None, Query(description="created before")] = None,
        param: Annotated[
            list[str] | None, Query(description="NAME[:TYPE]=VALUE, all must match")
        ] = None,
        after: After = None,
        limit: Limit = 50,
    ) -> models.ExecutionPage:
        """Executions newest first, filtered; pass next_after as after for the next page."""
        query = forms.execution_query(
            job, [s.value for s in status or []], since, until, param or []
        )
        page = engine.find_executions(query, after=after, limit=limit)
        return models.ExecutionPage(
            items=[models.execution(e) for e in page.items], next_after=page.next_after
        )

    @api.get(
        "/executions/{execution_id}",
        dependencies=read,
        response_model=models.ExecutionDetail,
        responses=responses(404),
    )
    def get_execution(execution_id: Id) -> models.ExecutionDetail:
        """One execution with its steps (partitions included), contexts and skip counts."""
        return detail(engine, execution_id)

    @api.get(
        "/executions/{execution_id}/skipped",
        dependencies=read,
        response_model=models.SkippedPage,
        responses=responses(404),
    )
    def skipped(execution_id: Id, after: After = None, limit: Limit = 50) -> models.SkippedPage:
        engine.get_execution(execution_id)  # 404 for an unknown execution, not an empty page
        page = engine.skipped_page(execution_id, after=after, limit=limit)
        return models.SkippedPage(
            items=[models.skipped(s) for s in page.items], next_after=page.next_after
        )

    @api.get(
        "/step-executions/{step_execution_id}",
        dependencies=read,
        response_model=models.Step,
        responses=responses(404),
    )
    def get_step(step_execution_id: Id) -> models.Step:
        return models.step(engine.get_step_execution(step_execution_id))

    @api.get("/schedules", dependencies=read, response_model=list[models.Schedule])
    def list_schedules() -> list[models.Schedule]:
        """The cron schedules this server runs (serve --schedules), with their next fire times
        and the executions they launched last; empty when it runs none."""
        return schedules(engine, scheduler)

    @api.post(
        "/jobs/{name}/start",
        dependencies=operate,
        status_code=202,
        response_model=models.Execution,
        responses=responses(400, 404, 409),
    )
    def start(name: Name, request: Annotated[StartRequest, Body()]) -> models.Execution:
        """Launch a job loaded with --jobs; it runs in the server's engine."""
        if name not in engine.registry:
            raise NoSuchJob(f"no job named {name!r} is loaded (serve with --jobs MODULE)")
        params = forms.parameters_from_json(
            {k: (p.value, p.type, p.identifying) for k, p in request.parameters.items()}
        )
        handle = launched.add(engine.start_async(name, params))
        return models.execution(engine.get_execution(handle.execution_id))

    @api.post(
        "/executions/{execution_id}/stop",
        dependencies=operate,
        response_model=models.Execution,
        responses=responses(404, 409),
    )
    def stop(execution_id: Id) -> models.Execution:
        return models.execution(engine.stop(execution_id))

    @api.post(
        "/executions/{execution_id}/restart",
        dependencies=operate,
        status_code=202,
        response_model=models.Execution,
        responses=responses(400, 404, 409),
    )
    def restart(execution_id: Id) -> models.Execution:
        """A new execution of a FAILED or STOPPED execution's instance, where it ended."""
        handle = launched.add(engine.restart_async(execution_id))
        return models.execution(engine.get_execution(handle.execution_id))

    @api.post(
        "/executions/{execution_id}/abandon",
        dependencies=operate,
        response_model=models.Execution,
        responses=responses(404, 409),
    )
    def abandon(execution_id: Id) -> models.Execution:
        return models.execution(engine.abandon(execution_id))

    @api.post(
        "/recover",
        dependencies=operate,
        response_model=models.Recovered,
        responses=responses(404, 409),
    )
    def recover(request: Annotated[RecoverRequest, Body()]) -> models.Recovered:
        """Mark dead executions FAILED (one, or every one whose heartbeat lease ran out)."""
        found = engine.recover(request.execution_id, force=request.force)
        return models.Recovered(items=[models.execution(e) for e in found])

    return api
