"""Connecting to a repository database: URL normalisation, SQLite set-up, migrations, retries."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event, exc
from sqlalchemy.engine import URL, Engine, make_url

from batchline.errors import ConfigurationError, RepositoryError
from batchline.repository import DEFAULT_URL as DEFAULT_URL
from batchline.repository.timeouts import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_STATEMENT_TIMEOUT,
    lock_wait_seconds,
    set_timeouts,
    sqlite_busy_seconds,
)

T = TypeVar("T")

# An execution option marking transactions that only read (SQLite begins them DEFERRED).
READ_ONLY = "batchline_read_only"
# Where Alembic records the schema's revision (migrations/env.py uses the same name).
VERSION_TABLE = "batchline_alembic_version"

# The driver batchline installs for each backend, used when a URL names none.
_DRIVERS = {
    "postgresql": "postgresql+psycopg",
    "mysql": "mysql+pymysql",
    "mariadb": "mariadb+pymysql",
}


def normalise_url(url: str | URL) -> URL:
    try:
        parsed = make_url(url)
    except exc.ArgumentError as err:
        raise ConfigurationError(f"invalid repository URL {str(url)!r}: {err}") from None
    if parsed.drivername in _DRIVERS:
        parsed = parsed.set(drivername=_DRIVERS[parsed.drivername])
    return parsed


def create_engine(
    url: str | URL,
    *,
    connect_timeout: float | None = DEFAULT_CONNECT_TIMEOUT,
    statement_timeout: float | None = DEFAULT_STATEMENT_TIMEOUT,
    **kwargs: Any,
) -> Engine:
    """An SQLAlchemy engine set up for batch work on SQLite, PostgreSQL or MySQL/MariaDB.

    ``connect_timeout`` bounds opening a connection, ``statement_timeout`` each statement and
    commit (None: no bound; on SQLite it is the wait for another connection's lock). They hold
    for every statement on this engine, a writer's that shares its connection included: a
    server that stops answering raises an OperationalError (a RepositoryError from the
    repository) instead of blocking the job forever. Options in the URL's query win.
    """
    parsed = normalise_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.database in (None, "", ":memory:"):
            raise ConfigurationError(
                "an in-memory SQLite repository cannot be shared between threads; "
                "use a file (batchline.testing.temporary_engine makes a temporary one)"
            )
        _make_folder(parsed)
        busy = sqlite_busy_seconds(statement_timeout)
        kwargs.setdefault("connect_args", {"timeout": busy, "check_same_thread": False})
        engine = sa.create_engine(parsed, **kwargs)
        _configure_sqlite(engine, busy)
        return engine
    if backend in ("mysql", "mariadb"):
        # READ COMMITTED so a locking insert that lost a race sees the winner's row.
        kwargs.setdefault("isolation_level", "READ COMMITTED")
    kwargs.setdefault("pool_pre_ping", True)
    shown = parsed.render_as_string(hide_password=True)
    try:
        engine = sa.create_engine(parsed, **kwargs)
    except exc.NoSuchModuleError:
        raise ConfigurationError(
            f"repository URL {shown!r}: unknown database {parsed.drivername!r} "
            "(batchline runs on sqlite, postgresql, mysql and mariadb)"
        ) from None
    except ModuleNotFoundError as err:
        extra = "postgres" if backend == "postgresql" else "mysql"
        raise ConfigurationError(
            f"repository URL {shown!r} needs the {err.name!r} driver: install batchline[{extra}]"
        ) from None
    set_timeouts(engine, connect_timeout, statement_timeout)
    return engine


def _make_folder(url: URL) -> None:
    folder = Path(str(url.database)).parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise RepositoryError(
            f"cannot reach the repository database {url.render_as_string(hide_password=True)}: "
            f"cannot create its folder {str(folder)!r}: {err.strerror or err}"
        ) from None


def _configure_sqlite(engine: Engine, busy_seconds: float) -> None:
    """WAL, a busy timeout, and BEGIN IMMEDIATE so writers queue instead of deadlocking."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # let the begin hook below issue BEGIN itself
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_seconds * 1000)}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        # A reader under WAL needs no lock at all; a writer takes the write lock up front.
        begin = "BEGIN" if conn.get_execution_options().get(READ_ONLY) else "BEGIN IMMEDIATE"
        try:
            conn.connection.dbapi_connection.execute(begin)  # type: ignore[union-attr]
        except sqlite3.OperationalError as err:
            # Raised in an event, SQLAlchemy would not wrap it: callers catch its errors only.
            raise exc.OperationalError(begin, None, err) from err


def describe(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


def migrate(engine: Engine, revision: str = "head") -> None:
    """Create or upgrade the repository schema with the migrations shipped in the package."""
    if not revision.strip():  # Alembic asserts on an empty one: a traceback, not a message
        raise ConfigurationError("an empty revision names no migration; use 'head' or an id")
    try:
        if revision == "head" and _at_head_revision(engine):
            return  # nothing to do: no lock taken (on SQLite a running job holds the write lock)
    except exc.OperationalError as err:
        raise RepositoryError(
            f"cannot reach the repository database {describe(engine)}: {_first_line(err)}"
        ) from None
    except (exc.DatabaseError, sqlite3.DatabaseError):
        pass  # a file that is not a database, say: the full path below names what it is
    from alembic import command
    from alembic.config import Config
    from alembic.util import CommandError

    config = Config()
    config.set_main_option("script_location", "batchline.repository:migrations")
    try:
        if revision == "head" and _at_head(engine, config):
            return
        with engine.begin() as conn:
            mysql = _lock_for_migration(conn)
            try:
                config.attributes["connection"] = conn
                command.upgrade(config, revision)
            finally:
                if mysql:
                    conn.execute(sa.text("SELECT RELEASE_LOCK('batchline_migrate')"))
    except exc.OperationalError as err:
        raise RepositoryError(
            f"cannot reach the repository database {describe(engine)}: {_first_line(err)}"
        ) from None
    except (exc.DatabaseError, sqlite3.DatabaseError) as err:
        orig = getattr(err, "orig", err)
        if isinstance(orig, sqlite3.DatabaseError) and "not a database" in str(orig):
            raise ConfigurationError(
                f"{describe(engine)} is not an SQLite database (file is not a database)"
            ) from None
        raise
    except CommandError as err:  # an unknown revision, mostly
        raise ConfigurationError(
            f"cannot migrate {describe(engine)} to revision {revision!r}: {_first_line(err)}"
        ) from None


# The newest migration's revision (tests/test_migrations.py checks it against Alembic's head):
# a repository already there is recognised by one SELECT, without importing Alembic, which
# costs a job started as a process about 70 ms.
HEAD_REVISION = "0008"


def _at_head_revision(engine: Engine) -> bool:
    """Whether the version table holds HEAD_REVISION alone, in a transaction that only reads."""
    with engine.execution_options(**{READ_ONLY: True}).connect() as conn:  # out of reach: raises
        try:
            with conn.begin():
                found = set(conn.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")))
        except exc.DBAPIError:
            return False  # no version table yet (a new repository): Alembic decides
    return found == {(HEAD_REVISION,)}


def _at_head(engine: Engine, config: Any) -> bool:
    """Whether the schema is at Alembic's newest revision, asked in a transaction that only
    reads."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    heads = set(ScriptDirectory.from_config(config).get_heads())
    with engine.execution_options(**{READ_ONLY: True}).begin() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
        current = set(context.get_current_heads())
    return current == heads


def _lock_for_migration(conn: sa.Connection) -> bool:
    """Serialise migrations of one database: processes starting together on an empty
    repository would otherwise both create the tables, and one would fail. SQLite's
    BEGIN IMMEDIATE already does; PostgreSQL's lock ends with the transaction; MySQL's is the
    session's, and True tells the caller to release it."""
    backend = conn.dialect.name
    if backend == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(4242061)"))
    elif backend in ("mysql", "mariadb"):
        # Within the client's read timeout, so a busy lock is told apart from a dead server.
        wait = lock_wait_seconds(conn)
        got = conn.execute(sa.text(f"SELECT GET_LOCK('batchline_migrate', {wait})")).scalar()
        if got != 1:
            raise RepositoryError(
                f"repository {describe(conn.engine)}: another process held the migration lock "
                f"for more than {wait}s"
            )
        return True
    return False


def _first_line(err: BaseException) -> str:
    text = str(getattr(err, "orig", None) or err).strip()
    return text.splitlines()[0] if text else type(err).__name__


# PostgreSQL: serialization failure, deadlock; MySQL: lock wait timeout, deadlock; SQLite: busy.
_TRANSIENT_CODES = {"40001", "40P01", "1205", "1213"}


def is_transient(err: BaseException) -> bool:
    if not isinstance(err, exc.DBAPIError) or err.connection_invalidated:
        return False
    orig = err.orig
    code = getattr(orig, "sqlstate", None) or (orig.args[0] if orig and orig.args else None)
    if str(code) in _TRANSIENT_CODES:
        return True
    return "database is locked" in str(orig)


def retrying(fn: Callable[[], T], *, attempts: int = 5) -> T:
    """Run a repository transaction again when the database reports a deadlock or lock timeout."""
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except exc.DBAPIError as err:
            if attempt == attempts or not is_transient(err):
                raise
            time.sleep(0.05 * 2**attempt)
    raise AssertionError("unreachable")


def is_disconnect(err: BaseException) -> bool:
    """Whether an error (or what it wraps) is a connection the driver lost mid-use (SQLAlchemy
    invalidated it): a transaction on it was rolled back by the server."""
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, exc.DBAPIError) and current.connection_invalidated:
            return True
        current = current.__cause__ or current.__context__
    return False


def is_unreachable(err: BaseException) -> bool:
    """Whether an error (or what it wraps) is the database not answering: a refused or lost
    connection, a timeout, not the request's own fault."""
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, exc.OperationalError | exc.InterfaceError):
            return True
        if isinstance(current, RepositoryError) and "cannot reach" in str(current):
            return True
        current = current.__cause__ or current.__context__
    return False
