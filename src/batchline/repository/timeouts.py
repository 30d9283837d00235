"""Client-side timeouts on repository connections, so a server that stops answering fails the
call (an OperationalError; a RepositoryError from the repository) instead of blocking a job.

Per backend:

- PostgreSQL (psycopg): ``connect_timeout`` (whole seconds, at least 2: libpq's rule), the
  server's ``statement_timeout``, and a client deadline a little longer than it, because a
  frozen server (or a network that drops it behind a live proxy) never sends the error. On the
  deadline the connection is closed: its state is unknown, and the pool must not reuse it.
- MySQL/MariaDB (PyMySQL): ``connect_timeout``, ``read_timeout`` and ``write_timeout``.
- SQLite: the busy timeout, the wait for another connection's lock.

Options the URL's query sets (``?connect_timeout=5``) win over these.
"""

from __future__ import annotations

import math
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine

DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_STATEMENT_TIMEOUT = 60.0
# The client waits this much longer than the server's own statement timeout, so a server that
# still answers reports its error (and keeps the connection) before the client gives up on it.
_GRACE = 1.0
_MAX_SQLITE_BUSY = 2_000_000.0  # SQLite's busy timeout is an int of milliseconds
_MAX_LOCK_WAIT = 120
_INFO_KEY = "batchline.statement_timeout"


def sqlite_busy_seconds(statement_timeout: float | None) -> float:
    return min(statement_timeout, _MAX_SQLITE_BUSY) if statement_timeout else _MAX_SQLITE_BUSY


def lock_wait_seconds(conn: sa.Connection) -> int:
    """How long a server-side lock wait may last: less than the client waits for an answer."""
    timeout = conn.info.get(_INFO_KEY)
    return _MAX_LOCK_WAIT if not timeout else max(1, min(_MAX_LOCK_WAIT, int(timeout)))


def set_timeouts(
    engine: Engine, connect_timeout: float | None, statement_timeout: float | None
) -> None:
    """Give every new connection of a PostgreSQL or MySQL/MariaDB engine these timeouts."""
    backend = engine.dialect.name
    answer = statement_timeout + _GRACE if statement_timeout else None

    @event.listens_for(engine, "do_connect")
    def _on_connect(_dialect: Any, record: Any, cargs: Any, cparams: dict[str, Any]) -> Any:
        record.info[_INFO_KEY] = statement_timeout
        if backend == "postgresql":
            if connect_timeout:
                cparams.setdefault("connect_timeout", max(2, math.ceil(connect_timeout)))
            if statement_timeout:
                options = cparams.get("options") or ""
                if "statement_timeout" not in options:
                    ms = math.ceil(statement_timeout * 1000)
                    cparams["options"] = f"{options} -c statement_timeout={ms}".strip()
            return _connect_psycopg(cargs, cparams, answer)
        if backend in ("mysql", "mariadb"):
            if connect_timeout:
                cparams.setdefault("connect_timeout", connect_timeout)
            if answer:
                cparams.setdefault("read_timeout", answer)
                cparams.setdefault("write_timeout", answer)
        return None  # the dialect connects as usual


def _connect_psycopg(cargs: Any, cparams: dict[str, Any], answer: float | None) -> Any:
    from batchline.repository.psycopg_deadline import connect

    return connect(cargs, cparams, answer)
