"""The driver's own exceptions as SQLAlchemy's, for writers that talk to the driver directly.

A writer's fast path (PyMySQL cursors, psycopg's COPY, LOAD DATA) bypasses SQLAlchemy's
execution, so a duplicate key surfaced as ``pymysql.err.IntegrityError`` where the statement
path raises ``sqlalchemy.exc.IntegrityError``: ``.skip(sqlalchemy.exc.IntegrityError)`` then
worked on one backend and not another. Every SQL writer raises SQLAlchemy's classes (the
driver's error stays reachable as ``.orig``), on every backend and path.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa


@contextmanager
def as_sqlalchemy(conn: sa.Connection, statement: str) -> Iterator[None]:
    """Re-raise a DB-API error of ``conn``'s driver as the matching ``sqlalchemy.exc`` class."""
    dbapi = conn.dialect.loaded_dbapi
    try:
        yield
    except dbapi.Error as err:
        raise sa.exc.DBAPIError.instance(
            statement, None, err, dbapi.Error, dialect=conn.dialect
        ) from err
