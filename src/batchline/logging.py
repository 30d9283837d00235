"""Logging through the standard ``logging`` module, every record tagged with where it ran.

The running job and step execution ids live in context variables, so each thread (and each
partition) tags its own records; a filter copies them onto the record as ``job_execution_id``,
``step_execution_id``, ``job_name``, ``step_name`` and ``partition_of`` (the partitioned step
a partition belongs to). ``JsonFormatter`` writes them as one JSON object per line, for log
shippers; ``json_logging`` sets that up for an embedding application.

``capture(sink)`` sends the records of the job running in this context (batchline's and the
application's loggers alike, at the sink's level and up) to a sink, which keeps them with the
execution (``batchline.repository.logs.LogBuffer``). One handler on the root and ``batchline``
loggers does it, installed once per process; to let INFO records be made at all, it lowers a
logger whose level is above the sink's, and gives that logger's handlers the old level, so
what they print does not change.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any, Protocol

logger = logging.getLogger("batchline")

DEFAULT_CAP = 10_000  # log lines kept per execution (batchline.repository.logs)
# What `batchline --keep-logs/--log-cap` set, for the worker processes it starts.
KEEP_LOGS_ENV = "BATCHLINE_KEEP_LOGS"
LOG_CAP_ENV = "BATCHLINE_LOG_CAP"


def keep_logs_level() -> int | None:
    """The level of BATCHLINE_KEEP_LOGS (INFO when unset or unknown), None for OFF."""
    name = os.environ.get(KEEP_LOGS_ENV, "INFO").upper()
    if name == "OFF":
        return None
    level = logging.getLevelName(name)
    return level if isinstance(level, int) else logging.INFO


def log_cap() -> int:
    """BATCHLINE_LOG_CAP, or DEFAULT_CAP when unset or not a count."""
    text = os.environ.get(LOG_CAP_ENV, "")
    return int(text) if text.isdigit() else DEFAULT_CAP


_job: contextvars.ContextVar[tuple[str, int] | None] = contextvars.ContextVar(
    "batchline_job", default=None
)
# (step name, step execution id, the partitioned step's name when this step is a partition)
_step: contextvars.ContextVar[tuple[str, int, str | None] | None] = contextvars.ContextVar(
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
def step_scope(name: str, execution_id: int, partition_of: str | None = None) -> Iterator[None]:
    token = _step.set((name, execution_id, partition_of))
    try:
        yield
    finally:
        _step.reset(token)


class LogSink(Protocol):
    """Where ``capture`` sends a job's records: ``add`` must be quick (it runs in the thread
    that logs); ``flush`` writes what it holds."""

    level: int

    def add(self, record: logging.LogRecord, execution_id: int) -> None: ...

    def flush(self) -> None: ...


_sink: contextvars.ContextVar[LogSink | None] = contextvars.ContextVar(
    "batchline_log_sink", default=None
)


class _CaptureHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        sink, job = _sink.get(), _job.get()
        if sink is None or job is None or record.levelno < sink.level:
            return
        if getattr(record, "batchline_captured", False):  # seen on another logger already
            return
        record.batchline_captured = True
        if not hasattr(record, "step_execution_id"):
            step = _step.get()
            record.step_name, record.step_execution_id = (step[0], step[1]) if step else ("-", None)
        try:
            sink.add(record, job[1])
        except Exception:
            self.handleError(record)


# Stateless: it asks the context for the sink, so one per process serves every engine.
_CAPTURE = _CaptureHandler()


def _let_through(target: logging.Logger, level: int) -> None:
    if _CAPTURE not in target.handlers:
        target.addHandler(_CAPTURE)
    if target.level != logging.NOTSET and target.level > level:
        for handler in target.handlers:
            if handler is not _CAPTURE and handler.level == logging.NOTSET:
                handler.setLevel(target.level)
        target.setLevel(level)


@contextmanager
def capture(sink: LogSink | None) -> Iterator[None]:
    """Send the records of the job run inside to ``sink``; flush it at the end."""
    if sink is None:
        yield
        return
    _let_through(logging.getLogger(), sink.level)
    _let_through(logging.getLogger("batchline"), sink.level)
    token = _sink.set(sink)
    try:
        yield
    finally:
        _sink.reset(token)
        sink.flush()


def flush_captured() -> None:
    """Write what the current sink holds (a step has ended)."""
    sink = _sink.get()
    if sink is not None:
        sink.flush()


class ExecutionFilter(logging.Filter):
    """Adds job/step names and execution ids to every record that passes through."""

    def filter(self, record: logging.LogRecord) -> bool:
        job, step = _job.get(), _step.get()
        record.job_name, record.job_execution_id = job if job else ("-", None)
        record.step_name, record.step_execution_id, record.partition_of = (
            step if step else ("-", None, None)
        )
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
            "partition_of": step[2] if step else None,
        }
        kwargs["extra"] = {**extra, **dict(kwargs.get("extra") or {})}
        if not job:
            return msg, kwargs
        prefix = f"[{extra['job_name']}#{extra['job_execution_id']}"
        if step:
            prefix += f" {extra['step_name']}#{extra['step_execution_id']}"
        # The JSON formatter carries the ids as fields and leaves the prefix out.
        kwargs["extra"]["batchline_prefix"] = len(prefix) + 2
        if kwargs.pop("batchline_formatted", False):
            prefix = prefix.replace("%", "%%")  # a job named "50%": its % is not a format
        return f"{prefix}] {msg}", kwargs

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        if self.isEnabledFor(level):
            # Whether logging will %-format the message: then the prefix's % must be escaped.
            msg, processed = self.process(msg, {**kwargs, "batchline_formatted": bool(args)})
            processed.pop("batchline_formatted", None)
            self.logger.log(level, msg, *args, **processed)


def get_logger(name: str = "batchline") -> logging.LoggerAdapter[logging.Logger]:
    """A logger whose records carry the current job and step execution ids."""
    return _Adapter(logging.getLogger(name), {})


log = get_logger()


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line: time, level, logger, message, the job and step
    names and execution ids, and for a partition the partitioned step (``step``) and the
    partition (``partition``); the exception's traceback under ``exception``.

    Use it with ``ExecutionFilter`` on the same handler, so records from any logger carry ids.
    """

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()[getattr(record, "batchline_prefix", 0) :]
        step_name = getattr(record, "step_name", "-")
        partition_of = getattr(record, "partition_of", None)
        line: dict[str, object] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": message,
            "job": _field(getattr(record, "job_name", "-")),
            "job_execution_id": getattr(record, "job_execution_id", None),
            "step": partition_of or _field(step_name),
            "step_execution_id": getattr(record, "step_execution_id", None),
            "partition": step_name if partition_of else None,
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        # default=str: a value that is no JSON never loses the line; ASCII only: no control
        # character from data (C1 CSI included) reaches a terminal raw.
        return json.dumps(line, default=str)


def _field(value: object) -> object:
    return None if value == "-" else value


def json_logging(
    stream: object = None, *, level: int = logging.INFO, logger: str = "batchline"
) -> Callable[[], None]:
    """Write ``logger``'s records (batchline's by default) as JSON lines to ``stream`` (stderr).

    Returns what undoes it (the handler removed, the level and propagation restored).
    """
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)  # type: ignore[arg-type]
    handler.setFormatter(JsonFormatter())
    handler.addFilter(ExecutionFilter())
    return attach(handler, level, logger)


def attach(handler: logging.Handler, level: int, logger: str = "batchline") -> Callable[[], None]:
    """Send ``logger``'s records at ``level`` to ``handler`` alone (no propagation); returns
    what undoes it, so embedding code and in-process commands leave the logger as they found
    it."""
    target = logging.getLogger(logger)
    saved = (target.level, target.propagate)
    target.setLevel(level)
    target.addHandler(handler)
    target.propagate = False

    def restore() -> None:
        target.removeHandler(handler)
        target.setLevel(saved[0])
        target.propagate = saved[1]

    return restore
