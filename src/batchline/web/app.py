"""``create_app``: the FastAPI application `batchline serve` runs."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import importlib.util
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException

from batchline.engine import Engine
from batchline.errors import BatchlineError
from batchline.repository.audit import AuditLog
from batchline.repository.tokens import READ, TokenStore
from batchline.web import api, audit, backfills, login, logs, pages, problems, schedule_actions
from batchline.web.auth import Guard, is_https
from batchline.web.launched import Launched

if TYPE_CHECKING:
    from batchline.alerts import AlertWatcher
    from batchline.triggers.schedule import JobScheduler

log = logging.getLogger("batchline.web")
HERE = Path(__file__).parent
SHUTDOWN_WAIT = 60.0  # seconds a launched execution may take to reach its chunk boundary
METRICS_MODULE = "batchline.observability.prometheus"
# Scripts only from this origin and no inline script or style: data that slipped through
# escaping still could not run.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
HSTS = "max-age=31536000"


def create_app(
    engine: Engine,
    tokens: TokenStore,
    scheduler: JobScheduler | None = None,
    alerts: AlertWatcher | None = None,
) -> FastAPI:
    """The application; with ``scheduler``, it runs (started with the app, shut down with it)
    and its schedules are listed under /schedules and /api/schedules; with ``alerts``, the
    alert watcher runs with the app."""
    guard = Guard(tokens)
    launched = Launched(engine)
    running_backfills = backfills.Backfills(engine)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if scheduler is not None:
            scheduler.start()
        if alerts is not None:
            alerts.start()
        yield
        if alerts is not None:
            await asyncio.to_thread(alerts.stop)
        if scheduler is not None:
            await asyncio.to_thread(scheduler.shutdown)
            for handle in scheduler.running():
                launched.add(handle)
        # Shutting down (SIGTERM, Ctrl-C): what this server started ends STOPPED at its next
        # chunk boundary, restartable, before uvicorn lets the process go.
        await asyncio.to_thread(launched.stop_and_wait, SHUTDOWN_WAIT)
        await asyncio.to_thread(running_backfills.stop_and_wait, SHUTDOWN_WAIT)

    app = FastAPI(
        lifespan=lifespan,
        title="batchline",
        summary="Jobs, executions and their operation, on one job repository.",
        openapi_url="/api/openapi.json",
        docs_url=None,  # Swagger UI would load scripts from a CDN
        redoc_url=None,
    )
    app.include_router(api.router(engine, guard, launched, scheduler))
    app.include_router(backfills.router(engine, guard, running_backfills))
    app.include_router(logs.router(engine, guard))
    app.include_router(login.router(guard))
    app.include_router(schedule_actions.router(guard, launched, scheduler))
    audit_log = AuditLog(tokens.engine)
    app.include_router(audit.router(audit_log, guard))
    app.include_router(pages.router(engine, guard, launched, scheduler, running_backfills))
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    _errors(app, guard)
    _metrics_hook(app, engine, guard)
    _problem_schema_for_validation(app)
    audit.install(app, audit_log)

    @app.middleware("http")
    async def secure_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        if is_https(request):  # only over HTTPS: HSTS on plain HTTP would mean nothing (RFC 6797)
            response.headers["Strict-Transport-Security"] = HSTS
        if not request.url.path.startswith("/static"):
            response.headers["Cache-Control"] = "no-store"
        return response

    return app


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api") or request.url.path == "/metrics"


def _errors(app: FastAPI, guard: Guard) -> None:
    async def on_batchline(request: Request, err: Exception) -> Response:
        if _is_api(request):
            return await problems.batchline_error(request, err)
        assert isinstance(err, BatchlineError)
        status, title = problems.status_of(err)
        return pages.error_page(request, status, title, problems.one_line(err))

    async def on_http(request: Request, err: Exception) -> Response:
        assert isinstance(err, HTTPException)
        if _is_api(request):
            return await problems.http_error(request, err)
        if err.status_code == 401:
            return RedirectResponse("/login", status_code=303)
        return pages.error_page(request, err.status_code, "Refused", str(err.detail))

    async def on_validation(request: Request, err: Exception) -> Response:
        if _is_api(request):
            return await problems.validation_error(request, err)
        assert isinstance(err, RequestValidationError)
        return pages.error_page(request, 422, "Invalid input", problems.first_error(err))

    async def on_database(request: Request, err: Exception) -> Response:
        status, title, detail = problems.database_status(err)
        if status == 500:
            log.error("%s %s: %s", request.method, request.url.path, detail, exc_info=err)
        if _is_api(request):
            return await problems.database_error(request, err)
        page = pages.error_page(request, status, title, detail)
        if status == 503:
            page.headers["Retry-After"] = problems.RETRY_AFTER
        return page

    app.add_exception_handler(BatchlineError, on_batchline)
    # The repository down, cut, or silent past the timeouts: a request's own 503, never a
    # traceback (SQLAlchemy's errors and its pool's timeout; none of them is batchline's).
    app.add_exception_handler(sa_exc.DBAPIError, on_database)
    app.add_exception_handler(sa_exc.TimeoutError, on_database)
    app.add_exception_handler(HTTPException, on_http)
    app.add_exception_handler(RequestValidationError, on_validation)


def _metrics_hook(app: FastAPI, engine: Engine, guard: Guard) -> None:
    """/metrics, when the ``prometheus`` extra is installed: the jobs this server runs, counted
    by a PrometheusObserver on a registry of the app's own."""
    try:
        module: Any = importlib.import_module(METRICS_MODULE)
        from prometheus_client import CollectorRegistry
    except ImportError:
        return
    if hasattr(module, "PrometheusObserver"):
        registry = CollectorRegistry()
        engine.observe(module.PrometheusObserver(registry))

        def render() -> tuple[bytes, str]:
            body, media_type = module.exposition(registry)
            return body, str(media_type)

    else:  # a stand-in module that renders for an engine (tests/jobs/metrics_stub.py)

        def render() -> tuple[bytes, str]:
            body, media_type = module.exposition(engine)
            return body, str(media_type)

    def metrics(request: Request) -> Response:
        guard.require(request, READ)
        body, media_type = render()
        return Response(body, media_type=media_type)

    app.add_api_route("/metrics", metrics, methods=["GET"], include_in_schema=False)


def _problem_schema_for_validation(app: FastAPI) -> None:
    """Every error is problem+json (FastAPI would document 422 as its own error list, and
    the others as application/json)."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = original()
        problem = {"$ref": "#/components/schemas/Problem"}
        for path in schema.get("paths", {}).values():
            for operation in path.values():
                for status, answer in operation.get("responses", {}).items():
                    if status.startswith(("4", "5")):
                        answer["content"] = {problems.MEDIA_TYPE: {"schema": problem}}
        for name in ("HTTPValidationError", "ValidationError"):
            schema.get("components", {}).get("schemas", {}).pop(name, None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
