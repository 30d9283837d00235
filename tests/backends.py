"""Real databases for tests: a fresh database per test on SQLite, PostgreSQL and MariaDB.

Server URLs come from BATCHLINE_TEST_POSTGRES / BATCHLINE_TEST_MYSQL (defaults: the servers this
project's machines run). A server that cannot be reached, or whose driver is not installed, skips
its tests with the reason, and so does a missing extra (``import_extra``), except under CI=true,
where they fail: CI must not pass by testing less.
"""

from __future__ import annotations

import importlib
import itertools
import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import NoReturn

import pytest
import sqlalchemy as sa

POSTGRES = os.environ.get(
    "BATCHLINE_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
MYSQL = os.environ.get("BATCHLINE_TEST_MYSQL", "mysql+pymysql://root@127.0.0.1:3306/test")
BACKENDS = ("sqlite", "postgresql", "mariadb")
BROKERS = {
    "redis": ("redis://127.0.0.1:6379/0", 6379),
    "rabbitmq": ("amqp://guest:guest@127.0.0.1:5672//", 5672),
}

_counter = itertools.count()
_run = uuid.uuid4().hex[:8]
_unreachable: dict[str, str] = {}


def _admin_url(backend: str) -> str:
    return POSTGRES if backend == "postgresql" else MYSQL


def skip_or_fail(message: str) -> NoReturn:
    """Skip the test (the whole module, when collecting it), or fail it under CI=true."""
    __tracebackhide__ = True  # the report names the test's line, not this one
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and {message}", pytrace=False)
    pytest.skip(message, allow_module_level=True)


def require_broker(name: str) -> str:
    """The URL of a broker that answers; skip the test (fail under CI=true) when it does not."""
    __tracebackhide__ = True
    url, port = BROKERS[name]
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except OSError as exc:
        skip_or_fail(f"{name} broker at 127.0.0.1:{port} unreachable ({exc})")
    return url


def import_extra(module: str, extra: str) -> ModuleType:
    """The module an extra installs; without it, its tests skip with the reason (fail on CI)."""
    __tracebackhide__ = True
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        skip_or_fail(f"{module} is not installed (the {extra!r} extra): {exc}")


def _unreachable_reason(backend: str) -> str:
    url = _admin_url(backend)
    try:
        sa.make_url(url).get_dialect().import_dbapi()
    except ImportError as exc:
        return f"{backend} driver for {url} is not installed: {exc}"
    try:
        engine = sa.create_engine(url)
        with engine.connect():
            pass
        engine.dispose()
    except Exception as exc:
        return f"{backend} server at {url} unreachable ({type(exc).__name__}: {first_line(exc)})"
    return ""


def first_line(exc: BaseException) -> str:
    lines = str(exc).splitlines()
    return lines[0] if lines else ""


def require_server(backend: str) -> None:
    """Skip (or under CI=true fail) when the backend's driver or server is missing."""
    if backend == "sqlite":
        return
    if backend not in _unreachable:
        _unreachable[backend] = _unreachable_reason(backend)
    if _unreachable[backend]:
        skip_or_fail(_unreachable[backend])


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
