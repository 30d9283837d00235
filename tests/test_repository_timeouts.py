"""A repository that stops answering fails the call with a clear error, never blocks a job.

Servers are real; a TCP proxy in front of them stands in for a frozen one (it accepts, then
forwards nothing). Timeouts are small; pytest-timeout guards against a hang (the old failure).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from batchline import JobParameters, SqlJobRepository
from batchline.cli import main
from batchline.cli.output import EXIT_UNREACHABLE
from batchline.errors import RepositoryError
from batchline.repository import create_engine
from tests.backends import MYSQL, POSTGRES, fresh_database
from tests.frozen_proxy import FrozenProxy, proxy_to

SERVERS = {"postgresql": POSTGRES, "mariadb": MYSQL}
pytestmark = pytest.mark.timeout(90)


@pytest.fixture(params=sorted(SERVERS))
def through_proxy(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[str, FrozenProxy]]:
    """A fresh database on a real server, and its URL through a proxy that can freeze."""
    with fresh_database(request.param, tmp_path) as url, proxy_to(SERVERS[request.param]) as proxy:
        yield proxy.url(url), proxy


class TestFrozenServer:
    def test_connect_to_a_server_that_never_answers(
        self, through_proxy: tuple[str, FrozenProxy]
    ) -> None:
        """Connecting to a socket that accepts and says nothing: RepositoryError, cannot reach."""
        url, proxy = through_proxy
        proxy.freeze()
        with pytest.raises(RepositoryError, match="cannot reach"):
            SqlJobRepository(url, connect_timeout=1, statement_timeout=1)

    def test_server_freezes_mid_transaction(self, through_proxy: tuple[str, FrozenProxy]) -> None:
        """A statement on an open connection to a server gone silent raises OperationalError,
        and the pool drops that connection."""
        url, proxy = through_proxy
        engine = create_engine(url, connect_timeout=1, statement_timeout=1)
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT 1")).scalar() == 1
            proxy.freeze()
            with pytest.raises(sa.exc.OperationalError) as caught:
                conn.execute(sa.text("SELECT 2"))
            assert caught.value.connection_invalidated
        engine.dispose()

    def test_repository_call_after_the_server_froze(
        self, through_proxy: tuple[str, FrozenProxy]
    ) -> None:
        """The repository's own calls end with RepositoryError once its server goes silent."""
        url, proxy = through_proxy
        repo = SqlJobRepository(url, connect_timeout=1, statement_timeout=1)
        execution = repo.create_job_execution("frozen", JobParameters({"n": 1}))
        proxy.freeze()
        with pytest.raises(RepositoryError):
            repo.get_job_execution(execution.id)
        repo.dispose()

    def test_cli_exits_5(self, through_proxy: tuple[str, FrozenProxy]) -> None:
        """`batchline executions` against a frozen server: one line, exit 5."""
        url, proxy = through_proxy
        proxy.freeze()
        args = ["-r", url, "--connect-timeout", "1", "--statement-timeout", "1", "executions"]
        result = CliRunner().invoke(main, args)
        assert result.exit_code == EXIT_UNREACHABLE, result.output
        [line] = result.stderr.strip().splitlines()
        assert line.startswith("batchline: error: cannot reach"), line


class TestSqliteLocked:
    def test_lock_held_past_the_timeout(self, sqlite_url: str) -> None:
        """SQLite's wait for another connection's lock ends after the statement timeout."""
        SqlJobRepository(sqlite_url).dispose()
        holder = sa.create_engine(sqlite_url)
        with holder.connect() as conn:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            repo = SqlJobRepository(sqlite_url, upgrade=False, statement_timeout=0.2)
            with pytest.raises(RepositoryError, match="locked"):
                repo.create_job_execution("locked", JobParameters({"n": 1}))
            repo.dispose()
            conn.exec_driver_sql("ROLLBACK")
        holder.dispose()

    def test_cli_exits_5_through_the_environment(self, sqlite_url: str) -> None:
        """BATCHLINE_STATEMENT_TIMEOUT sets it for the CLI; a lock held too long is exit 5."""
        SqlJobRepository(sqlite_url).dispose()
        holder = sa.create_engine(sqlite_url)
        with holder.connect() as conn:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            result = CliRunner(env={"BATCHLINE_STATEMENT_TIMEOUT": "0.2"}).invoke(
                main, ["-r", sqlite_url, "start", "tests.jobs.cli_jobs:make_job"]
            )
            conn.exec_driver_sql("ROLLBACK")
        holder.dispose()
        assert result.exit_code == EXIT_UNREACHABLE, result.output
        assert "locked" in result.stderr


def test_defaults() -> None:
    """Ten seconds to connect and a minute per statement unless told otherwise."""
    import inspect

    params = inspect.signature(create_engine).parameters
    assert params["connect_timeout"].default == 10.0
    assert params["statement_timeout"].default == 60.0
