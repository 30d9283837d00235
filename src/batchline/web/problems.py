"""Errors as RFC 9457 problem+json: the status says what kind, ``detail`` is the one line the
CLI prints for the same error."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from batchline.errors import (
    BatchlineError,
    ConfigurationError,
    IllegalTransition,
    JobExecutionNotRunning,
    LaunchRefused,
    NoSuchExecution,
    NoSuchJob,
    NoSuchSchedule,
    ParameterError,
    RepositoryError,
)

MEDIA_TYPE = "application/problem+json"
RETRY_AFTER = "5"  # seconds a client waits before asking a repository that did not answer


class Problem(BaseModel):
    type: str = "about:blank"
    title: str
    status: int
    detail: str


def problem(
    status: int, title: str, detail: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    body = Problem(title=title, status=status, detail=detail).model_dump()
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def status_of(err: BatchlineError) -> tuple[int, str]:
    if isinstance(err, NoSuchExecution | NoSuchJob | NoSuchSchedule):
        return 404, "Not Found"
    if isinstance(err, ParameterError | ConfigurationError):
        return 400, "Bad Request"
    if isinstance(err, LaunchRefused | JobExecutionNotRunning | IllegalTransition):
        return 409, "Conflict"
    if isinstance(err, RepositoryError):
        return 503, "Service Unavailable"
    return 500, "Internal Server Error"


def one_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return lines[0] if lines else type(err).__name__


async def batchline_error(request: Request, err: Exception) -> JSONResponse:
    assert isinstance(err, BatchlineError)
    status, title = status_of(err)
    headers = {"Retry-After": RETRY_AFTER} if status == 503 else None
    return problem(status, title, one_line(err), headers)


def database_status(err: BaseException) -> tuple[int, str, str]:
    """A database error that reached a request: 503 when the repository did not answer (down,
    cut, or silent past the timeouts), else 500; with the line the CLI would print."""
    from sqlalchemy import exc

    from batchline.repository.database import is_unreachable

    orig = getattr(err, "orig", None)
    line = one_line(orig if isinstance(orig, BaseException) else err)
    if isinstance(err, exc.TimeoutError) or is_unreachable(err):
        return 503, "Service Unavailable", f"the job repository did not answer: {line}"
    return 500, "Internal Server Error", f"the job repository failed: {line}"


async def database_error(request: Request, err: Exception) -> JSONResponse:
    status, title, detail = database_status(err)
    headers = {"Retry-After": RETRY_AFTER} if status == 503 else None
    return problem(status, title, detail, headers)


async def http_error(request: Request, err: Exception) -> JSONResponse:
    assert isinstance(err, HTTPException)
    return problem(err.status_code, _title(err.status_code), str(err.detail), err.headers)


def first_error(err: RequestValidationError) -> str:
    """The first thing wrong with a request, as one line: where, and what."""
    first: dict[str, Any] = err.errors()[0] if err.errors() else {}
    where = ".".join(str(part) for part in first.get("loc", ()))
    return f"{where}: {first.get('msg', 'invalid')}"


async def validation_error(request: Request, err: Exception) -> JSONResponse:
    assert isinstance(err, RequestValidationError)
    return problem(422, "Unprocessable Content", first_error(err))


def _title(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI declarations of the problems an operation may answer."""
    return {
        s: {"model": Problem, "content": {MEDIA_TYPE: {}}, "description": _title(s)}
        for s in statuses
    }
