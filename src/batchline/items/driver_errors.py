"""The driver's own exceptions as SQLAlchemy's, for writers that talk to the driver directly.

A writer's fast path (PyMySQL cursors, psycopg's COPY, LOAD DATA) bypasses SQLAlchemy's
execution, so a duplicate key surfaced as ``pymysql.err.IntegrityError`` where the statement
path raises ``sqlalchemy.exc.IntegrityError``: ``.skip(sqlalchemy.exc.IntegrityError)`` then
worked on one backend and not another. Every SQL writer raises SQLAlchemy's classes (the
driver's error stays reachable as ``.orig``), on every backend and path. A CHECK constraint
that fails is an ``IntegrityError`` everywhere too: PyMySQL raises MariaDB's (4025) and
MySQL's (3819) as ``OperationalError``, PostgreSQL and SQLite as ``IntegrityError``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import sqlalchemy as sa

if TYPE_CHECKING:  # a typing name of recent SQLAlchemy only: never imported at run time
    from sqlalchemy.engine.interfaces import DBAPIModule


@contextmanager
def as_sqlalchemy(conn: sa.Connection, statement: str) -> Iterator[None]:
    """Re-raise a DB-API error of ``conn``'s driver as the matching ``sqlalchemy.exc`` class.

    A lost connection is invalidated here, as SQLAlchemy's own execution does: the chunk's
    rollback then leaves the dead connection alone instead of failing on it, and that second
    error ("the connection is lost", PyMySQL's "(0, '')") no longer hides this one; the step
    also sees ``connection_invalidated`` and knows the server rolled the chunk back."""
    dbapi = conn.dialect.loaded_dbapi
    try:
        yield
    except dbapi.Error as err:
        lost = _lost(conn, err)
        if lost:
            conn.invalidate(err)
        raise sa.exc.DBAPIError.instance(
            statement, None, err, dbapi.Error, connection_invalidated=lost, dialect=conn.dialect
        ) from err


def _lost(conn: sa.Connection, err: DBAPIModule.Error) -> bool:
    if conn.invalidated or conn.closed:
        return False
    try:
        driver = conn.connection.dbapi_connection
        return bool(conn.dialect.is_disconnect(err, driver, None))
    except Exception:  # asking must never replace the error being raised
        return False


# ER_CONSTRAINT_FAILED (MariaDB), ER_CHECK_CONSTRAINT_VIOLATED (MySQL).
_CHECK_FAILED = frozenset({4025, 3819})


@contextmanager
def checks_as_integrity() -> Iterator[None]:
    """Re-raise a MySQL/MariaDB CHECK failure as ``sqlalchemy.exc.IntegrityError``, the class
    PostgreSQL's and SQLite's take, so one ``.skip(IntegrityError)`` fits every backend."""
    try:
        yield
    except sa.exc.OperationalError as err:
        orig = err.orig
        if orig is None or (orig.args or (None,))[0] not in _CHECK_FAILED:
            raise
        raise sa.exc.IntegrityError(err.statement, err.params, orig) from orig
