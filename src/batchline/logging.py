"""Logging through the standard ``logging`` module, every record tagged with where it ran.

The running job and step execution ids live in context variables, so each thread (and each
partition) tags its own records; a filter copies them onto the record as ``job_execution_id``,
``step_execution_id``, ``job_name`` and ``step_name``.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any

logger = logging.getLogger("batchline")

_job: contextvars.ContextVar[tuple[str, int] | None] = contextvars.ContextVar(
    "batchline_job", default=None
)
_step: contextvars.ContextVar[tuple[str, int] | None] = contextvars.ContextVar(
    "batchline_step", default=None
)


@contextmanager
def job_scope(name: str, execution_id: int) -> Iterator[None]:
    token = _job.set((name, execution_id))
    try:
        yield
    finally:
        _job.reset(token)


@contextmanager
def step_scope(name: str, execution_id: int) -> Iterator[None]:
    token = _step.set((name, execution_id))
    try:
        yield
    finally:
        _step.reset(token)


class ExecutionFilter(logging.Filter):
    """Adds job/step names and execution ids to every record that passes through."""

    def filter(self, record: logging.LogRecord) -> bool:
        job, step = _job.get(), _step.get()
        record.job_name, record.job_execution_id = job if job else ("-", None)
        record.step_name, record.step_execution_id = step if step else ("-", None)
        return True


class _Adapter(logging.LoggerAdapter[logging.Logger]):
    def process(
        self, msg: object, kwargs: MutableMapping[str, Any]
    ) -> tuple[object, MutableMapping[str, Any]]:
        job, step = _job.get(), _step.get()
        extra = {
            "job_name": job[0] if job else "-",
            "job_execution_id": job[1] if job else None,
            "step_name": step[0] if step else "-",
            "step_execution_id": step[1] if step else None,
        }
        kwargs["extra"] = {**extra, **dict(kwargs.get("extra") or {})}
        if not job:
            return msg, kwargs
        prefix = f"[{extra['job_name']}#{extra['job_execution_id']}"
        if step:
            prefix += f" {extra['step_name']}#{extra['step_execution_id']}"
        return f"{prefix}] {msg}", kwargs


def get_logger(name: str = "batchline") -> logging.LoggerAdapter[logging.Logger]:
    """A logger whose records carry the current job and step execution ids."""
    return _Adapter(logging.getLogger(name), {})


log = get_logger()
