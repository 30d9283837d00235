"""Execution logs in the repository: every process that works on an execution adds its lines.

    logs = ExecutionLogs(sa_engine, cap=10_000)
    buffer = LogBuffer(logs)            # a batchline.logging capture sink
    ...
    logs.page(execution_id, after=last_id, level=logging.WARNING)

Lines are written by batches: ``LogBuffer`` keeps what the running jobs log in memory and a
thread of its own writes it every ``interval`` seconds (and at each step's end, and when a job
or partition ends), one transaction per flush, never one INSERT per line on a chunk's path.

Each execution keeps at most ``cap`` lines (``DEFAULT_CAP``). What comes after is counted, not
kept: ``batch_execution_log_dropped`` holds the count, and every page says it. Writers check
the cap at each flush, so several processes flushing at once may pass it by at most one batch
each. A flush that fails (the database away, the execution purged) counts its lines as dropped
when it can and never fails the job. The lines go with their execution when it is purged.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from batchline.logging import DEFAULT_CAP, capture, job_scope, keep_logs_level, log_cap
from batchline.repository.columns import fit_chars, fit_text
from batchline.repository.database import READ_ONLY, retrying
from batchline.repository.schema import execution_log, execution_log_dropped

DEFAULT_INTERVAL = 1.0  # seconds between flushes
MESSAGE_LIMIT = 8_000  # characters of one line (traceback included)
BUFFER_LIMIT = 20_000  # lines held in memory between flushes; beyond, counted as dropped


@dataclass(frozen=True)
class LogLine:
    id: int
    job_execution_id: int
    step_execution_id: int | None
    step_name: str | None
    log_time: dt.datetime
    level: int
    logger: str
    source: str
    message: str

    @property
    def level_name(self) -> str:
        return logging.getLevelName(self.level)

    def text(self) -> str:
        """One line as ``batchline logs`` prints it and the download holds it."""
        step = f" [{self.step_name}]" if self.step_name else ""
        return (
            f"{self.log_time:%Y-%m-%d %H:%M:%S.%f}"[:-3]
            + f" {self.level_name:<8} {self.source}{step} {self.logger}: {self.message}"
        )


@dataclass(frozen=True)
class LogPage:
    items: list[LogLine]
    next_after: int | None  # the last line's id: pass it as ``after`` for what comes next
    dropped: int  # lines the execution's cap turned away so far
    cap: int


class ExecutionLogs:
    """Reads and writes execution logs on one SQLAlchemy engine."""

    def __init__(self, engine: Engine, *, cap: int = DEFAULT_CAP) -> None:
        if cap < 0:
            raise ValueError(f"log cap must be >= 0, not {cap}")
        self.engine = engine
        self.cap = cap
        self._reader = engine.execution_options(**{READ_ONLY: True})

    def write(self, rows: list[dict[str, object]]) -> None:
        """Add rows (``execution_log`` columns), the cap applied per execution."""
        by_execution: dict[int, list[dict[str, object]]] = {}
        for row in rows:
            by_execution.setdefault(int(row["job_execution_id"]), []).append(row)  # type: ignore[call-overload]

        def flush() -> None:
            with self.engine.begin() as conn:
                for execution_id, lines in by_execution.items():
                    self._write_one(conn, execution_id, lines)

        retrying(flush)

    def _write_one(
        self, conn: Connection, execution_id: int, lines: list[dict[str, object]]
    ) -> None:
        have = conn.execute(
            sa.select(sa.func.count())
            .select_from(execution_log)
            .where(execution_log.c.job_execution_id == execution_id)
        ).scalar_one()
        room = max(0, self.cap - int(have))
        if room:
            conn.execute(execution_log.insert(), lines[:room])
        if len(lines) > room:
            self.count_dropped(conn, execution_id, len(lines) - room)

    @staticmethod
    def count_dropped(conn: Connection, execution_id: int, n: int) -> None:
        table = execution_log_dropped
        where = table.c.job_execution_id == execution_id
        if conn.execute(table.update().where(where).values(dropped=table.c.dropped + n)).rowcount:
            return
        try:
            with conn.begin_nested():
                conn.execute(table.insert().values(job_execution_id=execution_id, dropped=n))
        except sa.exc.IntegrityError:  # another writer made the row meanwhile
            conn.execute(table.update().where(where).values(dropped=table.c.dropped + n))

    def page(
        self,
        execution_id: int,
        *,
        after: int | None = None,
        level: int = logging.NOTSET,
        limit: int = 500,
    ) -> LogPage:
        """Lines in the order they were written, from ``after`` on, at ``level`` or above."""
        query = (
            sa.select(execution_log)
            .where(execution_log.c.job_execution_id == execution_id)
            .order_by(execution_log.c.id)
            .limit(limit)
        )
        if after is not None:
            query = query.where(execution_log.c.id > after)
        if level > logging.NOTSET:
            query = query.where(execution_log.c.level >= level)
        dropped = sa.select(execution_log_dropped.c.dropped).where(
            execution_log_dropped.c.job_execution_id == execution_id
        )
        with self._reader.connect() as conn:
            rows = conn.execute(query).mappings().all()
            lost = conn.execute(dropped).scalar()
        items = [LogLine(**dict(r)) for r in rows]
        return LogPage(items, items[-1].id if items else after, int(lost or 0), self.cap)


def row_of(record: logging.LogRecord, execution_id: int, source: str) -> dict[str, object]:
    """The ``execution_log`` row of a record: its message without the adapter's prefix (the
    columns carry the ids), its traceback appended."""
    message = record.getMessage()[getattr(record, "batchline_prefix", 0) :]
    if record.exc_info:
        message += "\n" + logging.Formatter().formatException(record.exc_info)
    step_name = getattr(record, "step_name", None)
    return {
        "job_execution_id": execution_id,
        "step_execution_id": getattr(record, "step_execution_id", None),
        "step_name": None if step_name in (None, "-") else fit_chars(str(step_name), 100),
        "log_time": dt.datetime.fromtimestamp(record.created, dt.UTC).replace(tzinfo=None),
        "level": record.levelno,
        "logger": fit_chars(record.name, 200),
        "source": source,
        "message": fit_text(message[:MESSAGE_LIMIT]),
    }


class LogBuffer:
    """Holds captured lines and writes them by batches from a thread of its own.

    ``add`` only appends under a lock; the thread starts with the first line and flushes every
    ``interval`` seconds; ``flush`` writes at once (a step's or a job's end).
    """

    def __init__(
        self,
        logs: ExecutionLogs,
        *,
        level: int = logging.INFO,
        interval: float = DEFAULT_INTERVAL,
    ) -> None:
        self.logs = logs
        self.level = level
        self.interval = interval
        self.source = fit_chars(f"{socket.gethostname()}:{os.getpid()}", 200)
        self._rows: list[dict[str, object]] = []
        self._lost: dict[int, int] = {}
        self._lock = threading.Lock()
        self._flushing = threading.Lock()
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, record: logging.LogRecord, execution_id: int) -> None:
        row = row_of(record, execution_id, self.source)
        with self._lock:
            if len(self._rows) >= BUFFER_LIMIT:
                self._lost[execution_id] = self._lost.get(execution_id, 0) + 1
                return
            self._rows.append(row)
            if self._thread is None and not self._closed.is_set():
                self._thread = threading.Thread(
                    target=self._run, name="batchline-log-flush", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while not self._closed.wait(self.interval):
            self.flush()

    def flush(self) -> None:
        with self._flushing:  # one writer at a time keeps the lines in order
            with self._lock:
                rows, self._rows = self._rows, []
                lost, self._lost = self._lost, {}
            if not rows and not lost:
                return
            try:
                if rows:
                    self.logs.write(rows)
                if lost:
                    with self.logs.engine.begin() as conn:
                        for execution_id, n in lost.items():
                            self.logs.count_dropped(conn, execution_id, n)
            except Exception as exc:  # never fail a job for its logs; say so where it shows
                print(
                    f"batchline: {len(rows)} log lines not stored: {type(exc).__name__}: {exc}",
                    file=sys.stderr,
                )

    def close(self) -> None:
        self._closed.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.flush()


@contextmanager
def kept_logs(bind: Engine, job_name: str, execution_id: int) -> Iterator[None]:
    """In a worker (a pool process, a Celery worker) running part of an execution: its log
    lines inside go to the execution's, written when it ends or every interval before (at the
    level and cap of BATCHLINE_KEEP_LOGS and BATCHLINE_LOG_CAP, as `batchline` sets them)."""
    level = keep_logs_level()
    if level is None:
        with job_scope(job_name, execution_id):
            yield
        return
    buffer = LogBuffer(ExecutionLogs(bind, cap=log_cap()), level=level)
    try:
        with job_scope(job_name, execution_id), capture(buffer):
            yield
    finally:
        buffer.close()
