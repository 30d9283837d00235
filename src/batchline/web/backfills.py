"""Backfills on the web: ``/api/backfills`` (list, start, read, stop, resume) and the pages
(``/backfills/{id}``: the grid, live while it runs; forms to stop and resume).

A backfill started or resumed here runs in the server's engine; one run by a CLI elsewhere is
stopped through the repository (its runner sees the request at its next heartbeat). The API
starts backfills on the server's engine only: a broker URL from a request would let a caller
make the server connect anywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from batchline.backfill.grid import BackfillState
from batchline.backfill.operations import MAX_CONCURRENCY, BackfillHandle
from batchline.backfill.ranges import BackfillRange, parse_range, parse_values
from batchline.backfill.store import ACTIVE, INTERRUPTED, STOPPED, BackfillRecord
from batchline.engine import Engine
from batchline.errors import NoSuchJob
from batchline.logging import log
from batchline.parameters import JobParameters
from batchline.repository.tokens import OPERATE, READ
from batchline.web import api, forms, models
from batchline.web.auth import Caller, Guard
from batchline.web.problems import responses

SHOWN = 20  # backfills listed on a job's page and the overview


class BackfillRequest(BaseModel):
    job: str = Field(min_length=1, max_length=100)
    range: str | None = Field(
        None,
        max_length=1000,
        description="NAME:TYPE=FIRST..LAST, e.g. day:date=2026-11-01..2026-11-30",
    )
    step: str | None = Field(None, max_length=32, description="1d, 1w, 1month; 15min, 6h; or 5")
    values: str | None = Field(None, max_length=60_000, description="NAME[:TYPE]=A,B,C instead")
    parameters: dict[str, api.StartParameter] = Field(default_factory=dict)
    concurrency: int = Field(4, ge=1, le=MAX_CONCURRENCY)
    restart_failed: bool = False


class Cell(BaseModel):
    value: str
    status: str = Field(description="its instance's newest execution's, or PENDING")
    execution_id: int | None


class Backfill(BaseModel):
    id: int
    job_name: str
    range: str
    status: str = Field(description="RUNNING, STOPPING, STOPPED, COMPLETED, FAILED, PENDING, "
                        "or INTERRUPTED (its runner stopped sending heartbeats)")  # fmt: skip
    parameters: dict[str, models.Parameter]
    concurrency: int
    restart_failed: bool
    started_by: str
    create_time: models.Time
    end_time: models.Time | None


class BackfillDetail(Backfill):
    total: int
    finished: int
    counts: dict[str, int]
    per_minute: float | None = Field(description="values ended per minute since it began")
    eta_seconds: float | None = Field(description="at that pace, while it runs")
    cells: list[Cell]
    actions: list[str]


def summary(record: BackfillRecord, lease: float) -> Backfill:
    return Backfill(
        id=record.id,
        job_name=record.job_name,
        range=record.describe_range(),
        status=record.shown_status(lease),
        parameters=models.parameters(record.parameters),
        concurrency=record.concurrency,
        restart_failed=record.restart_failed,
        started_by=record.started_by,
        create_time=record.create_time,
        end_time=record.end_time,
    )


def detail(state: BackfillState, lease: float, *, registered: bool) -> BackfillDetail:
    return BackfillDetail(
        **summary(state.record, lease).model_dump(),
        total=state.total,
        finished=state.finished,
        counts=state.counts,
        per_minute=state.per_minute,
        eta_seconds=state.eta_seconds,
        cells=[
            Cell(value=c.value, status=c.status, execution_id=c.execution_id) for c in state.cells
        ],
        actions=actions(state.status, registered=registered),
    )


def actions(status: str, *, registered: bool) -> list[str]:
    """Stop while it runs; resume what ended unfinished (or was interrupted) when the job is
    loaded here."""
    if status in ACTIVE:
        return ["stop"] if status == "RUNNING" else []
    if registered and status in (STOPPED, "FAILED", INTERRUPTED, "PENDING"):
        return ["resume"]
    return []


class Backfills:
    """The backfills this server runs, and the reads every page and route share."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.handles: list[BackfillHandle] = []

    def start(
        self, request: BackfillRequest, caller: Caller, given: JobParameters | None = None
    ) -> BackfillHandle:
        """Start it here; ``given``: parameters parsed from a page's box, else the request's."""
        if request.job not in self.engine.registry:
            raise NoSuchJob(f"no job named {request.job!r} is loaded (serve with --jobs MODULE)")
        params = given or forms.parameters_from_json(
            {k: (p.value, p.type, p.identifying) for k, p in request.parameters.items()}
        )
        handle = self.engine.backfill(
            request.job,
            _range(request.range, request.step, request.values),
            parameters=params,
            concurrency=request.concurrency,
            restart_failed=request.restart_failed,
            started_by=f"token {caller.token.name}",
        )
        return self._keep(handle)

    def resume(self, backfill_id: int) -> BackfillHandle:
        return self._keep(self.engine.resume_backfill(backfill_id))

    def stop_and_wait(self, timeout: float) -> None:
        """Shutting down: stop what runs here; its executions end STOPPED at their chunk
        boundary, and a resume goes on."""
        running = [h for h in self.handles if not h.done()]
        for handle in running:
            handle.stop()
        for handle in running:
            try:
                handle.wait(timeout)
            except Exception as err:  # its own outcome is recorded; shutting down goes on
                log.warning("backfill %d ended with %s", handle.id, err)

    def _keep(self, handle: BackfillHandle) -> BackfillHandle:
        self.handles = [h for h in self.handles if not h.done()] + [handle]
        return handle

    def detail(self, backfill_id: int) -> BackfillDetail:
        state = self.engine.backfill_state(backfill_id)
        registered = state.record.job_name in self.engine.registry
        return detail(state, self.engine.lease, registered=registered)

    def listed(self, job_name: str | None = None, *, running: bool = False) -> list[Backfill]:
        found = self.engine.backfills(job_name, statuses=ACTIVE if running else (), limit=SHOWN)
        shown = [summary(r, self.engine.lease) for r in found]
        return [b for b in shown if b.status in ACTIVE] if running else shown


def _range(spec: str | None, step: str | None, values: str | None) -> BackfillRange:
    if (spec is None) == (values is None):
        from batchline.errors import ParameterError

        raise ParameterError("a backfill takes a range or values (one of them)")
    if spec is not None:
        return parse_range(forms.clean(spec, "range"), step and forms.clean(step, "step", 32))
    return parse_values(forms.clean(values or "", "values", 60_000))


def router(engine: Engine, guard: Guard, backfills: Backfills) -> APIRouter:
    def reader(request: Request) -> Caller:
        return guard.require(request, READ)

    def operator(request: Request) -> Caller:
        return guard.require(request, OPERATE)

    routes = APIRouter(responses=responses(401, 403, 422))
    read = [Depends(reader)]

    @routes.get("/api/backfills", dependencies=read, response_model=list[Backfill])
    def list_backfills(
        job: Annotated[str | None, Query(max_length=100)] = None,
        running: bool = False,
    ) -> list[Backfill]:
        """Backfills newest first (the last 20), of one job or all; ``running`` only."""
        return backfills.listed(forms.clean(job, "job name", 100) if job else None, running=running)

    @routes.post(
        "/api/backfills",
        dependencies=[Depends(operator)],  # solved before the body: 401, not 422
        status_code=202,
        response_model=BackfillDetail,
        responses=responses(400, 404, 409),
    )
    def start(request: Annotated[BackfillRequest, Body()], http: Request) -> BackfillDetail:
        """One instance of a loaded job per value, run in the server's engine."""
        caller: Caller = http.state.caller  # set by the operator dependency
        return backfills.detail(backfills.start(request, caller).id)

    @routes.get(
        "/api/backfills/{backfill_id}",
        dependencies=read,
        response_model=BackfillDetail,
        responses=responses(404),
    )
    def get(backfill_id: api.Id) -> BackfillDetail:
        """The grid: each value's status and execution, counts, pace and ETA."""
        return backfills.detail(backfill_id)

    @routes.post(
        "/api/backfills/{backfill_id}/stop",
        dependencies=[Depends(operator)],
        response_model=Backfill,
        responses=responses(404),
    )
    def stop(backfill_id: api.Id) -> Backfill:
        """Its runner stops its executions at their chunk boundary and launches nothing more."""
        return summary(engine.stop_backfill(backfill_id), engine.lease)

    @routes.post(
        "/api/backfills/{backfill_id}/resume",
        dependencies=[Depends(operator)],
        status_code=202,
        response_model=BackfillDetail,
        responses=responses(404, 409),
    )
    def resume(backfill_id: api.Id) -> BackfillDetail:
        """Run here what it has not finished; 409 while another runner's lease holds."""
        return backfills.detail(backfills.resume(backfill_id).id)

    return routes


def pages(guard: Guard, backfills: Backfills, render: Callable[..., Response]) -> APIRouter:
    """``render(request, caller, template, **context)``: pages.py's, with the CSRF token."""
    routes = APIRouter(include_in_schema=False)

    def done(backfill_id: int) -> Response:
        return RedirectResponse(f"/backfills/{backfill_id}", status_code=303)

    @routes.get("/backfills/{backfill_id}", response_class=HTMLResponse)
    def page(request: Request, backfill_id: api.Id) -> Response:
        caller = guard.require(request, READ)
        return render(request, caller, "backfill.html", b=backfills.detail(backfill_id))

    @routes.get("/backfills/{backfill_id}/live", response_class=HTMLResponse)
    def live(request: Request, backfill_id: api.Id) -> Response:
        caller = guard.require(request, READ)
        return render(request, caller, "_backfill_live.html", b=backfills.detail(backfill_id))

    @routes.post("/backfills/{backfill_id}/{action}")
    def act(
        request: Request,
        backfill_id: api.Id,
        action: str,
        csrf_token: Annotated[str, Form()] = "",
    ) -> Response:
        guard.require(request, OPERATE, csrf=csrf_token)
        if action == "stop":
            backfills.engine.stop_backfill(backfill_id)
        elif action == "resume":
            backfills.resume(backfill_id)
        else:
            raise HTTPException(404, f"no action {action!r}")
        return done(backfill_id)

    @routes.post("/jobs/{name}/backfill")
    def start(
        request: Request,
        name: api.Name,
        csrf_token: Annotated[str, Form()] = "",
        range: Annotated[str, Form(max_length=1000)] = "",
        step: Annotated[str, Form(max_length=32)] = "",
        parameters: Annotated[str, Form(max_length=10_000)] = "",
        concurrency: Annotated[int, Form(ge=1, le=MAX_CONCURRENCY)] = 4,
        restart_failed: Annotated[bool, Form()] = False,
    ) -> Response:
        caller = guard.require(request, OPERATE, csrf=csrf_token)
        wanted = BackfillRequest(
            job=name,
            range=range.strip() or None,
            step=step.strip() or None,
            values=None,
            concurrency=concurrency,
            restart_failed=restart_failed,
        )
        given = forms.parameters_from_lines(parameters)
        return done(backfills.start(wanted, caller, given).id)

    return routes
