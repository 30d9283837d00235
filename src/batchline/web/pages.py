"""The dashboard's pages, rendered on the server with Jinja2 (autoescaped: every value from
data is text, never markup). Changes are POSTed forms carrying the CSRF token; the execution
page refreshes its live part from ``/executions/{id}/live`` (static/app.js) while it runs."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import jinja2
from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from batchline.engine import Engine
from batchline.errors import NoSuchExecution, NoSuchJob
from batchline.model import utcnow
from batchline.repository.filters import SEARCH_WINDOW
from batchline.repository.tokens import OPERATE, READ
from batchline.status import BatchStatus
from batchline.web import api, backfills, bulk, charts, display, flowsvg, forms, models
from batchline.web.auth import CSRF_FIELD, Caller, Guard
from batchline.web.launched import Launched

if TYPE_CHECKING:
    from batchline.triggers.schedule import JobScheduler

# Autoescape everything (every template is HTML): data is text, never markup.
templates = Jinja2Templates(
    env=jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"), autoescape=True
    )
)
MAX_ID = api.MAX_ID
PAGE_SIZES = (20, 50, 100, 200)
RECENT = 30  # executions in a job page's duration chart


def _duration(start: dt.datetime | None, end: dt.datetime | None) -> str:
    """From start to end, or to now while it runs; times naive UTC (the repository's) or aware
    (the API models')."""
    if start is None:
        return "-"
    now = dt.datetime.now(dt.UTC)
    end = end or (now if start.tzinfo else now.replace(tzinfo=None))
    return _seconds((end - start).total_seconds())


def _seconds(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m {secs:02d}s" if hours else f"{minutes}m {secs:02d}s"


def _pretty(value: object) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str)


templates.env.filters.update(
    when=display.when,
    name=display.name,
    text=display.isolated,
    visible=display.visible,
    path=display.in_path,
    seconds=_seconds,
    pretty=_pretty,
)
templates.env.globals.update(duration=_duration, statuses=[s.value for s in BatchStatus])


def error_page(request: Request, status: int, title: str, message: str) -> Response:
    return templates.TemplateResponse(
        request, "error.html", {"title": title, "message": message}, status_code=status
    )


def router(
    engine: Engine,
    guard: Guard,
    launched: Launched,
    scheduler: JobScheduler | None = None,
    running_backfills: backfills.Backfills | None = None,
) -> APIRouter:
    pages = APIRouter(include_in_schema=False)
    backfilled = running_backfills or backfills.Backfills(engine)

    def render(request: Request, caller: Caller, name: str, **context: Any) -> Response:
        context.update(
            caller=caller,
            csrf=guard.csrf_token(caller),
            can_operate=caller.token.allows(OPERATE),
        )
        return templates.TemplateResponse(request, name, context)

    def live_context(execution_id: int) -> dict[str, Any]:
        """The execution with its pictures: its timeline and its throughput."""
        e = api.detail(engine, execution_id)
        e = e.model_copy(update={"steps": charts.ordered(e.steps)})
        now = utcnow()
        samples = engine.progress_samples(execution_id)
        return {
            "e": e,
            "timeline": charts.timeline(e.steps, now),
            "throughput": charts.throughput(e.steps, samples, now),
        }

    def done(execution_id: int) -> Response:
        return RedirectResponse(f"/executions/{execution_id}", status_code=303)

    @pages.get("/", response_class=HTMLResponse)
    def overview(request: Request) -> Response:
        caller = guard.require(request, READ)
        return render(
            request,
            caller,
            "overview.html",
            jobs=api.jobs(engine),
            backfills=backfilled.listed(running=True),
        )

    @pages.get("/executions", response_class=HTMLResponse)
    def executions(
        request: Request,
        job: Annotated[str, Query(max_length=100)] = "",
        prefix: Annotated[str, Query(max_length=100)] = "",
        status: Annotated[list[str] | None, Query(max_length=20)] = None,
        running: Annotated[str, Query(max_length=3)] = "",
        message: Annotated[str, Query(max_length=200)] = "",
        since: Annotated[str, Query(max_length=40)] = "",
        until: Annotated[str, Query(max_length=40)] = "",
        param: Annotated[str, Query(max_length=1000)] = "",
        after: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
        before: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
        size: Annotated[int, Query(ge=1, le=1000)] = 50,
    ) -> Response:
        caller = guard.require(request, READ)
        chosen = [s for s in status or [] if s]
        query = forms.execution_query(
            job or None,
            chosen,
            _moment(since, "since"),
            _moment(until, "until"),
            [param] if param else [],
            job_prefix=prefix or None,
            message=message or None,
            running=bool(running),
        )
        page = api.execution_page(engine, query, after=after, before=before, limit=size)
        filters = {
            "job": job,
            "prefix": prefix,
            "status": chosen,
            "running": running,
            "message": message,
            "since": since,
            "until": until,
            "param": param,
            "size": size,
        }
        return render(
            request,
            caller,
            "executions.html",
            page=page,
            filters=filters,
            sizes=PAGE_SIZES,
            window=SEARCH_WINDOW,
        )

    @pages.post("/executions/bulk", response_class=HTMLResponse)
    def act_on_many(
        request: Request,
        csrf_token: Annotated[str, Form()] = "",
        action: Annotated[str, Form(max_length=10)] = "",
        ids: Annotated[list[int] | None, Form(max_length=bulk.MAX_IDS)] = None,
    ) -> Response:
        caller = guard.require(request, OPERATE, csrf=csrf_token)
        if action not in bulk.ACTIONS:
            return error_page(request, 400, "Bad Request", f"no action {action[:20]!r}")
        if not ids:
            return error_page(request, 400, "Bad Request", "no execution was selected")
        outcomes = bulk.act(engine, launched, action, ids)
        return render(request, caller, "bulk.html", action=action, outcomes=outcomes)

    @pages.get("/instances/{instance_id}", response_class=HTMLResponse)
    def instance(request: Request, instance_id: api.Id) -> Response:
        caller = guard.require(request, READ)
        attempts = engine.instance_executions(instance_id)
        if not attempts:
            raise NoSuchExecution(f"no job instance with id {instance_id} has executions")
        return render(request, caller, "instance.html", attempts=attempts, first=attempts[-1])

    @pages.get("/executions/{execution_id}", response_class=HTMLResponse)
    def execution(
        request: Request,
        execution_id: api.Id,
        skipped_after: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    ) -> Response:
        caller = guard.require(request, READ)
        skipped = engine.skipped_page(execution_id, after=skipped_after, limit=50)
        context = live_context(execution_id)
        return render(
            request,
            caller,
            "execution.html",
            skipped=skipped,
            attempt=_attempt(engine, context["e"].instance_id, execution_id),
            flow=_execution_flow(engine, context["e"]),
            **context,
        )

    @pages.get("/executions/{execution_id}/live", response_class=HTMLResponse)
    def live(request: Request, execution_id: api.Id) -> Response:
        caller = guard.require(request, READ)
        return render(request, caller, "_live.html", **live_context(execution_id))

    @pages.get("/schedules", response_class=HTMLResponse)
    def schedules(request: Request) -> Response:
        caller = guard.require(request, READ)
        return render(
            request,
            caller,
            "schedules.html",
            schedules=api.schedules(engine, scheduler),
            running=scheduler is not None,
        )

    @pages.get("/jobs/{name:path}", response_class=HTMLResponse)
    def job(request: Request, name: api.Name) -> Response:
        caller = guard.require(request, READ)
        forms.clean(name, "job name", 100)
        recent = engine.find_executions(
            forms.execution_query(name, [], None, None, []), limit=RECENT
        ).items
        found = api.jobs(engine, name)
        if not found:
            raise NoSuchJob(f"no job named {name!r} has run or is loaded")
        return render(
            request,
            caller,
            "job.html",
            job=found[0],
            flow=flowsvg.job_diagram(engine.registry.get(name))
            if name in engine.registry
            else None,
            executions=recent,
            skipped=engine.with_skips([e.id for e in recent]),
            durations=charts.durations(recent, utcnow()),
            backfills=backfilled.listed(name),
        )

    @pages.post("/jobs/{name:path}/start")
    def start(
        request: Request,
        name: api.Name,
        csrf_token: Annotated[str, Form()] = "",
        parameters: Annotated[str, Form(max_length=10_000)] = "",
    ) -> Response:
        guard.require(request, OPERATE, csrf=csrf_token)
        if name not in engine.registry:
            raise NoSuchJob(f"no job named {name!r} is loaded (serve with --jobs MODULE)")
        handle = launched.add(engine.start_async(name, forms.parameters_from_lines(parameters)))
        return done(handle.execution_id)

    @pages.post("/executions/{execution_id}/{action}")
    def act(
        request: Request,
        execution_id: api.Id,
        action: str,
        csrf_token: Annotated[str, Form()] = "",
    ) -> Response:
        guard.require(request, OPERATE, csrf=csrf_token)
        if action == "stop":
            engine.stop(execution_id)
        elif action == "abandon":
            engine.abandon(execution_id)
        elif action == "restart":
            return done(launched.add(engine.restart_async(execution_id)).execution_id)
        else:
            return error_page(request, 404, "Not Found", f"no action {action!r}")
        return done(execution_id)

    pages.include_router(backfills.pages(guard, backfilled, render))
    return pages


def _execution_flow(engine: Engine, e: models.ExecutionDetail) -> flowsvg.Diagram | None:
    """The job's flow (as loaded now) with the path this execution took."""
    if e.job_name not in engine.registry:
        return None
    steps = {s.name: s.status for s in e.steps if s.partition_of is None}
    job = engine.registry.get(e.job_name)
    return flowsvg.execution_diagram(job, e.status, e.context, e.id, steps)


def _attempt(engine: Engine, instance_id: int, execution_id: int) -> dict[str, int | None]:
    """Which attempt of its instance an execution is, and its neighbours'."""
    ids = [e.id for e in reversed(engine.instance_executions(instance_id))]  # oldest first
    at = ids.index(execution_id)
    return {
        "number": at + 1,
        "count": len(ids),
        "previous": ids[at - 1] if at > 0 else None,
        "next": ids[at + 1] if at + 1 < len(ids) else None,
    }


def _moment(text: str, what: str) -> dt.datetime | None:
    if not text:
        return None
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        from batchline.errors import ParameterError

        raise ParameterError(f"{what}: {text[:40]!r} is not a date or time (ISO 8601)") from None


__all__ = ["CSRF_FIELD", "error_page", "router"]
