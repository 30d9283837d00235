"""A chunk whose repository connection is cut mid-write is written again, by default: the
transaction rolled back with the connection, so the second try copies each item once.

The connection is cut for real: the writer asks the server (from a connection of its own) to
kill the chunk's connection, then writes on it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from batchline import BatchStatus, Chunk, Engine, JobBuilder, StepBuilder
from tests.backends import fresh_database

rows = sa.Table("written", sa.MetaData(), sa.Column("n", sa.Integer, nullable=False))


@pytest.fixture(params=["postgresql", "mariadb"])
def network_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with fresh_database(request.param, tmp_path) as url:
        yield url


class CuttingWriter:
    """Inserts through the chunk's connection; at chunk ``cut_at`` it kills that connection
    first, ``times`` times in a row."""

    def __init__(self, url: str, cut_at: int, times: int) -> None:
        self.admin = sa.create_engine(url)
        self.cut_at, self.left = cut_at, times

    def write(self, items: Sequence[int], chunk: Chunk) -> None:
        conn: Any = chunk.connection
        if chunk.number == self.cut_at and self.left:
            self.left -= 1
            self._kill(conn)
        conn.execute(rows.insert(), [{"n": n} for n in items])

    def _kill(self, conn: Any) -> None:
        with self.admin.begin() as admin:
            if conn.dialect.name == "postgresql":
                pid = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar()
                admin.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": pid})
            else:
                pid = conn.execute(sa.text("SELECT CONNECTION_ID()")).scalar()
                admin.execute(sa.text(f"KILL {int(pid)}"))


def _job(writer: CuttingWriter) -> Any:
    step = StepBuilder("copy").chunk(10).reader(list(range(50))).writer(writer)
    return JobBuilder("cut").step(step).build()


def written(url: str) -> list[int]:
    bind = sa.create_engine(url)
    with bind.connect() as conn:
        found = sorted(conn.execute(sa.select(rows.c.n)).scalars())
    bind.dispose()
    return found


def test_a_chunk_whose_connection_is_cut_is_written_again(
    network_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The chunk's connection killed by the server mid-chunk, twice: the step completes with no
    .retry(), every item written once, and the log says what happened."""
    rows.metadata.create_all(sa.create_engine(network_url))
    writer = CuttingWriter(network_url, cut_at=2, times=2)
    with Engine(network_url) as engine:
        execution = engine.start(_job(writer))
    assert execution.status is BatchStatus.COMPLETED, execution.exit_status.description
    assert written(network_url) == list(range(50))
    assert caplog.text.count("connection was lost") == 2
    writer.admin.dispose()


def test_a_connection_cut_again_and_again_fails_the_step(network_url: str) -> None:
    """The retries are bounded: cut on every try, the step fails with the connection's error
    and writes nothing of that chunk."""
    rows.metadata.create_all(sa.create_engine(network_url))
    writer = CuttingWriter(network_url, cut_at=2, times=10)
    with Engine(network_url) as engine:
        execution = engine.start(_job(writer))
    assert execution.status is BatchStatus.FAILED
    assert written(network_url) == list(range(10))
    assert writer.left == 10 - 4  # the first try and three more
    writer.admin.dispose()
