"""The REST API under /api: read with a read token, change with an operate token."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Body, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from batchline.engine import Engine
from batchline.errors import NoSuchJob
from batchline.repository.filters import COUNT_BOUND, SEARCH_WINDOW, ExecutionQuery
from batchline.repository.tokens import OPERATE, READ
from batchline.status import BatchStatus
from batchline.web import bulk, forms, models
from batchline.web.auth import Caller, Guard
from batchline.web.launched import Launched
from batchline.web.problems import responses

if TYPE_CHECKING:
    from batchline.triggers.schedule import JobScheduler

MAX_ID = bulk.MAX_ID
RECENT_LAUNCHES = 5  # a schedule's last executions shown
SCANNED = 200  # a job's newest executions searched for them
Id = Annotated[int, Path(ge=1, le=MAX_ID)]
After = Annotated[int | None, Query(ge=1, le=MAX_ID, description="next_after of the last page")]
Limit = Annotated[int, Query(ge=1, le=1000)]
Name = Annotated[str, Path(min_length=1, max_length=100)]
STATUSES = [s.value for s in BatchStatus]


# Request bodies are taken as typed: "yes" is no boolean and "5" no id (pydantic's lax mode
# would read {"force": "yes"} as force=True), and a misspelt field is refused, not ignored.
STRICT = ConfigDict(strict=True, extra="forbid")


class StartParameter(BaseModel):
    model_config = STRICT

    value: str = Field(max_length=1000, description="the value as text, as on the CLI")
    type: str = Field("str", description="str, int, float, bool, date or datetime")
    identifying: bool = True


class StartRequest(BaseModel):
    model_config = STRICT

    parameters: dict[str, StartParameter] = Field(default_factory=dict)


class RecoverRequest(BaseModel):
    model_config = STRICT

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


def jobs(engine: Engine, name: str | None = None) -> list[models.Job]:
    """Every job (or the one named), loaded or run, from the per-job summary rows."""
    summaries = {s.job_name: s for s in engine.job_summaries(name)}
    names = engine.registry.names() if name is None else [n for n in [name] if n in engine.registry]
    registered = {n: [s.name for s in engine.registry.get(n).steps] for n in names}
    return [
        models.job(n, summaries.get(n), registered.get(n))
        for n in sorted(set(summaries) | set(registered))
    ]


def execution_page(
    engine: Engine,
    query: ExecutionQuery,
    *,
    after: int | None,
    before: int | None,
    limit: int,
) -> models.ExecutionPage:
    """A page of executions with its bounded total and which of them skipped items."""
    page = engine.find_executions(query, after=after, before=before, limit=limit)
    skipped = engine.with_skips([e.id for e in page.items])
    total = engine.count_bounded(query)
    items = []
    for e in page.items:
        item = models.execution(e)
        item.with_skips = e.id in skipped
        items.append(item)
    return models.ExecutionPage(
        items=items,
        next_after=page.next_after,
        previous_before=page.previous_before,
        total=total.value,
        total_exact=total.exact,
    )


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
        "/jobs/{name:path}/instances",
        dependencies=read,
        response_model=models.InstancePage,
        responses=responses(400),
    )
    def job_instances(name: Name, after: After = None, limit: Limit = 50) -> models.InstancePage:
        forms.clean(name, "job name", 100)
        page = engine.job_instances(name, after=after, limit=limit)
        total = engine.count_job_instances(name, bound=COUNT_BOUND)
        return models.InstancePage(
            items=[models.instance(i) for i in page.items],
            next_after=page.next_after,
            total=min(total, COUNT_BOUND),
            total_exact=total <= COUNT_BOUND,
        )

    @api.get(
        "/executions",
        dependencies=read,
        response_model=models.ExecutionPage,
        responses=responses(400),
    )
    def list_executions(
        job: Annotated[str | None, Query(max_length=100)] = None,
        job_prefix: Annotated[
            str | None, Query(max_length=100, description="job names starting with this")
        ] = None,
        status: Annotated[list[BatchStatus] | None, Query(description="any of these")] = None,
        running: Annotated[
            bool, Query(description="running now: STARTING, STARTED or STOPPING")
        ] = False,
        message: Annotated[
            str | None,
            Query(
                max_length=200,
                description="text in the exit message, any case; each page searches the "
                f"next {SEARCH_WINDOW:,} candidates (next_after goes on below them)",
            ),
        ] = None,
        since: Annotated[dt.datetime | None, Query(description="created at or after")] = None,
        until: Annotated[dt.datetime | None, Query(description="created before")] = None,
        param: Annotated[
            list[str] | None, Query(description="NAME[:TYPE]=VALUE, all must match")
        ] = None,
        after: After = None,
        before: Annotated[
            int | None, Query(ge=1, le=MAX_ID, description="previous_before of the last page")
        ] = None,
        limit: Limit = 50,
    ) -> models.ExecutionPage:
        """Executions newest first, filtered; pass next_after as after for the older page,
        previous_before as before for the newer one. ``total`` is exact when the filter is
        only jobs and statuses (the per-job summary), else counted up to 1,000
        (``total_exact`` false past it)."""
        query = forms.execution_query(
            job,
            [s.value for s in status or []],
            since,
            until,
            param or [],
            job_prefix=job_prefix,
            message=message,
            running=running,
        )
        return execution_page(engine, query, after=after, before=before, limit=limit)

    @api.post(
        "/executions/bulk",
        dependencies=operate,
        response_model=bulk.BulkResult,
        responses=responses(400),
    )
    def act_on_many(request: Annotated[bulk.BulkRequest, Body()]) -> bulk.BulkResult:
        """Stop, restart or abandon several executions: each is done or refused on its own,
        with its reason and the status the single action would have answered."""
        return bulk.BulkResult(
            items=bulk.act(engine, launched, request.action, request.execution_ids)
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
        "/jobs/{name:path}/start",
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
