from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from batchline import Engine
from tests.backends import BACKENDS, fresh_database


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
