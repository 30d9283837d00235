"""The audit of operator actions: every change asked of this server, by whom, and its outcome.

A middleware sees every POST an authenticated caller makes (the API's and the pages' alike, so
an action added later is recorded too), and after the answer writes one row: the token's name,
the action and what it acted on, done or refused with the reason, and the execution it made
(a start, a restart). ``GET /api/audit`` and the ``/audit`` page list them, newest first.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import BaseModel

from batchline.repository.audit import DONE, REFUSED, AuditEntry, AuditLog
from batchline.repository.tokens import READ
from batchline.web import api
from batchline.web.auth import Caller, Guard
from batchline.web.models import Time
from batchline.web.problems import responses

log = logging.getLogger("batchline.web")
UNAUDITED = ("/login", "/logout")
_EXECUTION = re.compile(r"^/(?:api/)?executions/(\d+)/([a-z-]+)$")
_JOB = re.compile(r"^/(?:api/)?jobs/(.+)/([a-z-]+)$")
_SCHEDULE = re.compile(r"^/(?:api/)?schedules/(.+)/([a-z-]+)$")
_BACKFILL = re.compile(r"^/(?:api/)?backfills/(\d+)/([a-z-]+)$")
_MADE = re.compile(r"/executions/(\d+)$")
_MADE_BACKFILL = re.compile(r"/backfills/(\d+)$")
_ERROR = re.compile(r'id="error-message">([^<]*)<')


@dataclass(frozen=True)
class Action:
    name: str
    target: str
    execution_id: int | None = None
    makes: str = "execution"  # what the id of a created thing in the answer names


def action_of(path: str) -> Action:
    """What a POST to ``path`` does, named for the audit."""
    if found := _EXECUTION.match(path):
        return Action(found[2], f"execution {found[1]}", int(found[1]))
    if found := _JOB.match(path):
        return Action(
            found[2], f"job {found[1]}", makes="backfill" if found[2] == "backfill" else "execution"
        )
    if found := _BACKFILL.match(path):
        return Action(f"backfill-{found[2]}", f"backfill {found[1]}", makes="backfill")
    if path.rstrip("/") == "/api/backfills":
        return Action("backfill", "backfills", makes="backfill")
    if found := _SCHEDULE.match(path):
        return Action(f"schedule-{found[2]}", f"schedule {found[1]}")
    name = path.rstrip("/").rsplit("/", 1)[-1] or path
    return Action(name, path)


class AuditRecord(BaseModel):
    id: int
    time: Time
    token_name: str
    action: str
    target: str
    job_execution_id: int | None
    outcome: str
    detail: str


class AuditPage(BaseModel):
    items: list[AuditRecord]
    next_after: int | None


def record(e: AuditEntry) -> AuditRecord:
    return AuditRecord(
        id=e.id,
        time=e.action_time,
        token_name=e.token_name,
        action=e.action,
        target=e.target,
        job_execution_id=e.job_execution_id,
        outcome=e.outcome,
        detail=e.detail,
    )


def _outcome(
    status: int, body: bytes, media_type: str, location: str
) -> tuple[str, str, int | None]:
    """(done or refused, the detail, the execution it made) from the answer."""
    outcome, detail, made = _answer(status, body, media_type, location, _MADE)
    return outcome, (f"execution {made}" if made is not None else detail), made


def _backfill_outcome(
    status: int, body: bytes, media_type: str, location: str, target: str
) -> tuple[str, str, str]:
    """(done or refused, the detail, the target) of a backfill's start, stop or resume: the
    id in the answer is the backfill's, never an execution's."""
    outcome, detail, made = _answer(status, body, media_type, location, _MADE_BACKFILL)
    if target == "backfills" and "json" in media_type and outcome == DONE:
        try:
            target = f"job {json.loads(body)['job_name']}"
        except (ValueError, TypeError, KeyError):
            target = "job ?"
    return outcome, (f"backfill {made}" if made is not None else detail), target


def _answer(
    status: int, body: bytes, media_type: str, location: str, made_at: re.Pattern[str]
) -> tuple[str, str, int | None]:
    text = body.decode("utf-8", "replace")
    if status >= 400:
        if "json" in media_type:
            try:
                return REFUSED, str(json.loads(text).get("detail", "")), None
            except (ValueError, AttributeError):
                return REFUSED, text[:500], None
        found = _ERROR.search(text)
        return REFUSED, (found[1] if found else f"HTTP {status}"), None
    made = None
    if found := made_at.search(location):
        made = int(found[1])
    elif "json" in media_type:
        try:
            value = json.loads(text)
            made = int(value["id"]) if isinstance(value, dict) and "id" in value else None
        except (ValueError, TypeError):
            made = None
    return DONE, "", made


def install(app: FastAPI, audit: AuditLog) -> None:
    """The middleware that records every authenticated POST."""

    @app.middleware("http")
    async def audited(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        caller: Caller | None = getattr(request.state, "caller", None)
        if request.method != "POST" or caller is None or request.url.path in UNAUDITED:
            return response
        body = b"".join([chunk async for chunk in response.body_iterator])  # type: ignore[attr-defined]
        action = action_of(request.url.path)
        answer_of = (
            response.status_code,
            body,
            response.headers.get("content-type", ""),
            response.headers.get("location", ""),
        )
        target = action.target
        if action.makes == "backfill":
            outcome, detail, target = _backfill_outcome(*answer_of, target)
            made = None
        else:
            outcome, detail, made = _outcome(*answer_of)
        if made is not None and action.execution_id is not None and made != action.execution_id:
            detail = f"new execution {made}"
        try:
            audit.record(
                caller.token.name,
                action.name,
                target,
                job_execution_id=action.execution_id or made,
                outcome=outcome,
                detail=detail,
            )
        except Exception:  # the action happened: say that its record failed, answer anyway
            log.exception("audit record of %s %s failed", action.name, action.target)
        answer = Response(body, status_code=response.status_code)
        answer.raw_headers = response.raw_headers  # every header kept, Set-Cookie twice too
        return answer


def router(audit: AuditLog, guard: Guard) -> APIRouter:
    from batchline.web.pages import templates

    def reader(request: Request) -> Caller:
        return guard.require(request, READ)

    routes = APIRouter()

    @routes.get(
        "/api/audit",
        dependencies=[Depends(reader)],
        response_model=AuditPage,
        responses=responses(401, 403, 422),
    )
    def list_audit(after: api.After = None, limit: api.Limit = 50) -> AuditPage:
        """Operator actions newest first: who (the token's name), what, when, and the outcome."""
        page = audit.page(after=after, limit=limit)
        return AuditPage(items=[record(e) for e in page.items], next_after=page.next_after)

    @routes.get("/audit", response_class=HTMLResponse, include_in_schema=False)
    def audit_page(
        request: Request, after: Annotated[int | None, Query(ge=1, le=api.MAX_ID)] = None
    ) -> Response:
        caller = guard.require(request, READ)
        page = audit.page(after=after, limit=50)
        return templates.TemplateResponse(
            request,
            "audit.html",
            {"page": page, "caller": caller, "csrf": guard.csrf_token(caller)},
        )

    return routes
