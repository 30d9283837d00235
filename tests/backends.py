"""Real databases for tests: a fresh database per test on SQLite, PostgreSQL and MariaDB.

Server URLs come from BATCHLINE_TEST_POSTGRES / BATCHLINE_TEST_MYSQL (defaults: the servers this
project's machines run). A server that cannot be reached skips its tests with the reason, except
under CI=true, where it fails them: CI must not pass by testing less.
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa

POSTGRES = os.environ.get(
    "BATCHLINE_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
MYSQL = os.environ.get("BATCHLINE_TEST_MYSQL", "mysql+pymysql://root@127.0.0.1:3306/test")
BACKENDS = ("sqlite", "postgresql", "mariadb")

_counter = itertools.count()
_run = uuid.uuid4().hex[:8]
_unreachable: dict[str, str] = {}


def _admin_url(backend: str) -> str:
    return POSTGRES if backend == "postgresql" else MYSQL


def require_server(backend: str) -> None:
    """Skip (or under CI=true fail) when the backend's server cannot be reached."""
    if backend == "sqlite":
        return
    if backend not in _unreachable:
        try:
            engine = sa.create_engine(_admin_url(backend))
            with engine.connect():
                pass
            engine.dispose()
            _unreachable[backend] = ""
        except Exception as exc:
            _unreachable[backend] = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
    reason = _unreachable[backend]
    if reason:
        message = f"{backend} server at {_admin_url(backend)} unreachable ({reason})"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and {message}", pytrace=False)
        pytest.skip(message)


@contextmanager
def fresh_database(backend: str, tmp_path: Path) -> Iterator[str]:
    """A URL to an empty database of this backend, dropped afterwards."""
    require_server(backend)
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'repository.db'}"
        return
    name = f"bl_{_run}_{os.getpid()}_{next(_counter)}"
    admin = sa.create_engine(_admin_url(backend), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    url = sa.make_url(_admin_url(backend)).set(database=name)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            if backend == "postgresql":
                conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            else:
                conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name}"))
        admin.dispose()
