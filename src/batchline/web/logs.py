"""An execution's log lines: ``GET /api/executions/{id}/logs`` (a page, for following: pass
``next_after`` back as ``after``) and ``/api/executions/{id}/logs.txt`` (all of them, as text).

The execution page shows them through static/logs.js, which follows this API while the
execution runs (the page's cookie is a read session like any other)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from batchline.engine import Engine
from batchline.errors import ParameterError
from batchline.repository.logs import ExecutionLogs, LogLine
from batchline.repository.tokens import READ
from batchline.web import api
from batchline.web.auth import Caller, Guard
from batchline.web.models import Time
from batchline.web.problems import responses

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
Level = Annotated[str | None, Query(description="this level and above: " + ", ".join(LEVELS))]


class Line(BaseModel):
    id: int
    time: Time
    level: str
    logger: str
    step_name: str | None
    step_execution_id: int | None
    source: str = Field(description="host:pid of the process that logged it")
    message: str


class LinePage(BaseModel):
    items: list[Line]
    next_after: int | None = Field(description="pass as after= for the lines after these")
    dropped: int = Field(description="lines the execution's cap turned away (not kept)")
    cap: int = Field(description="lines kept per execution at most")
    running: bool = Field(description="the execution still runs: more lines may come")


def level_of(name: str | None) -> int:
    if not name:
        return logging.NOTSET
    if name.upper() not in LEVELS:
        raise ParameterError(f"level: {name[:20]!r} is not one of {', '.join(LEVELS)}")
    return int(logging.getLevelName(name.upper()))


def line(x: LogLine) -> Line:
    return Line(
        id=x.id,
        time=x.log_time,
        level=x.level_name,
        logger=x.logger,
        step_name=x.step_name,
        step_execution_id=x.step_execution_id,
        source=x.source,
        message=x.message,
    )


def store(engine: Engine) -> ExecutionLogs:
    bind = getattr(engine.repository, "engine", None)
    if bind is None:
        raise ParameterError("this repository keeps no logs (not an SQL repository)")
    cap = engine.log_buffer.logs.cap if engine.log_buffer is not None else None
    return ExecutionLogs(bind) if cap is None else ExecutionLogs(bind, cap=cap)


def router(engine: Engine, guard: Guard) -> APIRouter:
    def reader(request: Request) -> Caller:
        return guard.require(request, READ)

    routes = APIRouter(prefix="/api", responses=responses(401, 403, 422))

    @routes.get(
        "/executions/{execution_id}/logs",
        dependencies=[Depends(reader)],
        response_model=LinePage,
        responses=responses(400, 404),
    )
    def logs(
        execution_id: api.Id,
        after: api.After = None,
        level: Level = None,
        limit: api.Limit = 500,
    ) -> LinePage:
        """The execution's log lines in the order they were written, from every process."""
        execution = engine.repository.get_job_execution(execution_id)  # 404 when unknown
        page = store(engine).page(execution_id, after=after, level=level_of(level), limit=limit)
        return LinePage(
            items=[line(x) for x in page.items],
            next_after=page.next_after,
            dropped=page.dropped,
            cap=page.cap,
            running=execution.status.is_running,
        )

    @routes.get(
        "/executions/{execution_id}/logs.txt",
        dependencies=[Depends(reader)],
        response_class=StreamingResponse,
        responses={**responses(400, 404), 200: {"content": {"text/plain": {}}}},
    )
    def download(execution_id: api.Id, level: Level = None) -> StreamingResponse:
        """Every kept line as text, one per line (a traceback on the lines that follow)."""
        engine.repository.get_job_execution(execution_id)
        logs, threshold = store(engine), level_of(level)

        def text() -> Iterator[str]:
            after = None
            while True:
                page = logs.page(execution_id, after=after, level=threshold, limit=1000)
                for x in page.items:
                    yield x.text() + "\n"
                if len(page.items) < 1000:
                    if page.dropped:
                        yield f"... {page.dropped} more lines dropped (cap {page.cap})\n"
                    return
                after = page.next_after

        name = f"execution-{execution_id}.log"
        return StreamingResponse(
            text(),
            media_type="text/plain; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    return routes
