"""A psycopg connection that stops waiting for a server that sends nothing back.

The server's ``statement_timeout`` ends a statement that runs too long, but a frozen server,
or one lost behind a proxy that still holds the TCP connection, never sends that error: the
client would wait forever. psycopg (3.2 and later) can bound each wait; older versions keep the
server-side timeout only. Imported only for PostgreSQL repositories.
"""

from __future__ import annotations

import inspect
from typing import Any

import psycopg
from psycopg import errors
from psycopg.abc import RV, PQGen

_WaitTimeout: type[BaseException] | None = getattr(errors, "_WaitTimeout", None)
_BOUNDED_WAIT = (
    _WaitTimeout is not None and "interval" in inspect.signature(psycopg.Connection.wait).parameters
)


class DeadlineConnection(psycopg.Connection[Any]):
    """Every wait for the server (statements, commits, fetches) ends after ``answer_timeout``
    seconds with an OperationalError, and the connection is closed: in what state the server
    left it is unknown, so the pool must throw it away (SQLAlchemy does for a closed one)."""

    answer_timeout: float | None = None

    def wait(self, gen: PQGen[RV], interval: float = 0.1, timeout: float | None = None) -> RV:
        if timeout is not None or self.answer_timeout is None or _WaitTimeout is None:
            return super().wait(gen, interval, timeout)
        try:
            return super().wait(gen, interval, self.answer_timeout)
        except _WaitTimeout:
            self.pgconn.finish()
            raise psycopg.OperationalError(
                f"the server sent no answer within {self.answer_timeout:g}s "
                "(statement timeout); connection closed"
            ) from None


def connect(cargs: Any, cparams: dict[str, Any], answer_timeout: float | None) -> Any:
    if not _BOUNDED_WAIT or answer_timeout is None:
        return psycopg.connect(*cargs, **cparams)
    conn = DeadlineConnection.connect(*cargs, **cparams)
    conn.answer_timeout = answer_timeout
    return conn
