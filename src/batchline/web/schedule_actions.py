"""Pausing, resuming and triggering a schedule, from the API and the schedules page.

The paused state lives in the repository (``batchline.repository.schedule_state``), so every
replica's scheduler skips a paused schedule; a trigger launches the job on this server now.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel

from batchline.errors import ConfigurationError, NoSuchSchedule
from batchline.repository.tokens import OPERATE
from batchline.web.auth import Guard
from batchline.web.launched import Launched
from batchline.web.problems import responses

if TYPE_CHECKING:
    from batchline.triggers.schedule import JobScheduler

ScheduleId = Annotated[str, Path(min_length=1, max_length=200)]
ACTIONS = ("pause", "resume", "trigger")


class ScheduleAction(BaseModel):
    id: str
    action: str
    paused: bool
    execution_id: int | None = None


def router(guard: Guard, launched: Launched, scheduler: JobScheduler | None) -> APIRouter:
    routes = APIRouter()

    def act(schedule_id: str, action: str, who: str) -> ScheduleAction:
        if scheduler is None:
            raise NoSuchSchedule(f"no schedule {schedule_id!r}: this server runs no schedules")
        if action not in ACTIONS:
            raise ConfigurationError(f"no schedule action {action!r}; use {', '.join(ACTIONS)}")
        made = None
        if action == "pause":
            scheduler.pause(schedule_id, by=who)
        elif action == "resume":
            scheduler.resume(schedule_id, by=who)
        else:
            handle = scheduler.trigger(schedule_id)
            if handle is not None:
                made = launched.add(handle).execution_id
        paused = scheduler.states is not None and scheduler.states.is_paused(schedule_id)
        return ScheduleAction(id=schedule_id, action=action, paused=paused, execution_id=made)

    @routes.post(
        "/api/schedules/{schedule_id}/{action}",
        response_model=ScheduleAction,
        responses=responses(400, 401, 403, 404, 422),
    )
    def api_action(request: Request, schedule_id: ScheduleId, action: str) -> ScheduleAction:
        """pause, resume (every replica agrees: the state is in the repository) or trigger
        (launch the job now on this server) a schedule."""
        caller = guard.require(request, OPERATE)
        return act(schedule_id, action, caller.token.name)

    @routes.post("/schedules/{schedule_id}/{action}", include_in_schema=False)
    def page_action(
        request: Request,
        schedule_id: ScheduleId,
        action: str,
        csrf_token: Annotated[str, Form()] = "",
    ) -> Response:
        caller = guard.require(request, OPERATE, csrf=csrf_token)
        done = act(schedule_id, action, caller.token.name)
        if done.execution_id is not None:
            return RedirectResponse(f"/executions/{done.execution_id}", status_code=303)
        return RedirectResponse("/schedules", status_code=303)

    return routes
