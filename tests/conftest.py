from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from batchline import Engine
from tests.backends import BACKENDS, fresh_database


@pytest.fixture(autouse=True)
def _signal_handlers() -> Iterator[None]:
    """The CLI run in-process keeps its signal handlers once a job ended (a real process is
    exiting then): put the test process's own back after each test."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    yield
    for sig, handler in saved.items():
        if handler is not None:
            signal.signal(sig, handler)


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database on each backend in turn."""
    with fresh_database(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'repository.db'}"


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """An Engine on each backend; closed after the test."""
    with Engine(db_url, heartbeat_interval=0.5, lease=5) as eng:
        yield eng


@pytest.fixture
def sqlite_engine(sqlite_url: str) -> Iterator[Engine]:
    with Engine(sqlite_url, heartbeat_interval=0.5, lease=5) as eng:
        yield eng
