"""Inputs the API and the pages share: execution filters and job parameters from text.

Filters and parameters are parsed with the CLI's syntax (``NAME[:TYPE]=VALUE``), never
evaluated. Text with NUL or other characters a database refuses in a string is refused here,
so user input can fail a request (400) but never the server (500).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping

from batchline.errors import ParameterError
from batchline.parameters import JobParameter, JobParameters, ParamValue, parse_parameter
from batchline.repository.filters import RUNNING, ExecutionQuery


def clean(text: str, what: str, limit: int = 1000) -> str:
    if len(text) > limit:
        raise ParameterError(f"{what} is over {limit} characters")
    if any(c == "\x00" or 0xD800 <= ord(c) <= 0xDFFF for c in text):
        raise ParameterError(f"{what} {text[:40]!r} holds a NUL or a lone surrogate")
    return text


def utc(moment: dt.datetime | None, what: str = "time") -> dt.datetime | None:
    """The repository keeps naive UTC times: an aware time is converted, a naive one is UTC."""
    if moment is None or moment.tzinfo is None:
        return moment
    try:
        return moment.astimezone(dt.UTC).replace(tzinfo=None)
    except OverflowError:  # 0001-01-01T00:00+14:00 is in year 0 in UTC
        raise ParameterError(
            f"{what} {moment.isoformat()} is outside the years 1 to 9999 in UTC"
        ) from None


def execution_query(
    job: str | None,
    statuses: Iterable[str],
    since: dt.datetime | None,
    until: dt.datetime | None,
    params: Iterable[str],
    *,
    job_prefix: str | None = None,
    message: str | None = None,
    running: bool = False,
) -> ExecutionQuery:
    """A filter from request values; ``running`` adds STARTING, STARTED and STOPPING to the
    statuses ("running now")."""
    values: dict[str, ParamValue] = {}
    for text in params:
        name, parameter = parse_parameter(clean(text, "parameter filter"))
        values[name] = parameter.value
    chosen = [clean(s, "status", 20) for s in statuses]
    if running:
        chosen += [s.value for s in RUNNING]
    return ExecutionQuery.of(
        job_name=clean(job, "job name", 100) if job else None,
        job_prefix=clean(job_prefix, "job name prefix", 100) if job_prefix else None,
        message=clean(message, "exit message search", 200) if message else None,
        statuses=chosen,
        created_from=utc(since, "since"),
        created_to=utc(until, "until"),
        parameters=values,
    )


def parameters_from_lines(text: str) -> JobParameters:
    """A page's parameter box: one NAME[:TYPE]=VALUE per line."""
    lines = [line.strip() for line in clean(text, "parameters", 10_000).splitlines()]
    return JobParameters.parse([line for line in lines if line])


def parameters_from_json(given: Mapping[str, tuple[str, str, bool]]) -> JobParameters:
    """The API's parameters: name -> (value as text, type, identifying)."""
    params: dict[str, ParamValue | JobParameter] = {}
    for name, (value, type_name, identifying) in given.items():
        text = f"{clean(name, 'parameter name', 100)}:{type_name}={clean(value, 'value')}"
        _, params[name] = parse_parameter(text, identifying=identifying)
    return JobParameters(params)
