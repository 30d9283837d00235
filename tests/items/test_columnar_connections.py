"""The columnar bulk writers (binary COPY, LOAD DATA through a pipe) when the connection to the
server is cut, or the server goes silent, in the middle of a chunk's write.

Servers are real; a TCP proxy in front of them (tests/frozen_proxy.py) cuts or freezes the
chunk's connection at a chosen moment of the second chunk's write: its COPY begun, its first
slice not sent yet; its LOAD DATA file half read, the feed's thread still rendering it. After
each, the table must hold every row once, the step's counts must add up, and no feed thread
or pipe folder may be left.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from batchline import BatchStatus, Engine, JobBuilder, SqlJobRepository, StepBuilder
from batchline.items.mysql_load import MySqlLoadDataWriter
from batchline.items.postgres_copy import PostgresCopyWriter
from batchline.model import JobExecution
from batchline.repository import create_engine
from batchline.transaction import SqlTransactionManager
from tests.backends import MYSQL, POSTGRES, fresh_database, import_extra
from tests.frozen_proxy import FrozenProxy, proxy_to

pa = import_extra("pyarrow", "arrow")
arrow = import_extra("batchline.items.arrow", "arrow")

pytestmark = pytest.mark.timeout(60)

ROWS = 20_000  # two chunks of 10,000: one COPY slice, three LOAD DATA pieces each
SCHEMA = {"id": pa.int64(), "name": pa.string(), "qty": pa.int32()}
DDL = "CREATE TABLE t (id bigint PRIMARY KEY, name varchar(40), qty integer)"


class Fault:
    """Cuts or freezes the proxy once, at the ``at``-th slice or piece the writer encodes."""

    def __init__(self, proxy: FrozenProxy, at: int, *, freeze: bool = False) -> None:
        self.proxy, self.at, self.freeze, self.seen = proxy, at, freeze, 0

    def tick(self) -> None:
        self.seen += 1
        if self.seen == self.at:
            self.proxy.freeze() if self.freeze else self.proxy.drop()


def copy_writer(fault: Fault) -> Any:
    class Cut(PostgresCopyWriter):
        def _binary_encoder(self, driver: Any, names: list[str], schema: Any) -> Any:
            encode = super()._binary_encoder(driver, names, schema)

            def ticking(piece: Any) -> Any:
                fault.tick()  # the COPY has begun: this slice goes on a dead connection
                return encode(piece)

            return ticking

    return Cut("t", ["id", "name", "qty"])


def load_writer(fault: Fault, folder: Path) -> Any:
    class Cut(MySqlLoadDataWriter):
        def _arrow_pieces(self, batches: Any, hexed: set[str]) -> Iterator[bytes]:
            for piece in super()._arrow_pieces(batches, hexed):
                fault.tick()  # on the feed's thread, while the server reads the pipe
                yield piece

    return Cut("t", ["id", "name", "qty"], folder=str(folder))


@pytest.fixture(params=["postgresql", "mariadb"])
def server(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[str, str, FrozenProxy]]:
    """(backend, the database's URL through a proxy, the proxy)."""
    backend = request.param
    with fresh_database(backend, tmp_path) as url:
        if backend == "mariadb":
            url = sa.make_url(url).update_query_dict({"local_infile": "1"})
            url = url.render_as_string(hide_password=False)
        with proxy_to(POSTGRES if backend == "postgresql" else MYSQL) as proxy:
            yield backend, proxy.url(url), proxy


def run(
    server: tuple[str, str, FrozenProxy],
    tmp_path: Path,
    *,
    at: int,
    freeze: bool = False,
    shared: bool = False,
    retry: bool = False,
) -> tuple[Engine, JobExecution, sa.Engine]:
    """A columnar step of ``ROWS`` rows into ``t``, the fault at the ``at``-th slice/piece;
    the repository in the same database (``shared``) or in SQLite beside it."""
    backend, url, proxy = server
    feed = tmp_path / "feed"
    feed.mkdir()
    if shared:
        repository = SqlJobRepository(url, connect_timeout=2, statement_timeout=1)
        target = repository.engine
    else:
        repository = SqlJobRepository(f"sqlite:///{tmp_path / 'repository.db'}")
        target = create_engine(url, connect_timeout=2, statement_timeout=1)
    with target.begin() as conn:
        conn.exec_driver_sql(DDL)
    source = tmp_path / "in.csv"
    lines = (f"{i},n{i},{i % 100}\n" for i in range(1, ROWS + 1))
    source.write_text("id,name,qty\n" + "".join(lines))
    fault = Fault(proxy, at, freeze=freeze)
    writer = copy_writer(fault) if backend == "postgresql" else load_writer(fault, feed)
    step = (
        StepBuilder("load")
        .columnar(10_000)
        .reader(arrow.ArrowCsvReader(str(source), schema=SCHEMA))
        .writer(writer)
    )
    if not shared:
        step = step.transaction_manager(SqlTransactionManager(target))
    if retry:
        step = step.retry(sa.exc.OperationalError, limit=2)
    job = JobBuilder("columnar_cut").step(step).build()
    engine = Engine(repository)
    engine.register(job)
    return engine, engine.start(job), target


def assert_whole(
    engine: Engine, executions: list[JobExecution], target: sa.Engine, tmp_path: Path
) -> None:
    """The last execution completed, every row is in once, the executions' write counts add
    up to the rows, nothing of the feed is left behind."""
    steps = [engine.get_execution(e.id).step_executions[0] for e in executions]
    assert steps[-1].status is BatchStatus.COMPLETED, steps[-1].exit_status.description
    assert sum(s.write_count for s in steps) == ROWS
    assert sum(s.read_count for s in steps) == ROWS
    with target.connect() as conn:
        ids = [row[0] for row in conn.exec_driver_sql("SELECT id FROM t ORDER BY id")]
    assert ids == list(range(1, ROWS + 1))
    assert_nothing_left(tmp_path)


def assert_nothing_left(tmp_path: Path) -> None:
    assert [t for t in threading.enumerate() if t.name == "batchline-load-data"] == []
    assert list((tmp_path / "feed").iterdir()) == []


def failure_line(engine: Engine, execution: JobExecution) -> str:
    [step] = engine.get_execution(execution.id).step_executions
    assert step.status is BatchStatus.FAILED
    return step.exit_status.description.splitlines()[0]


# A cut mid-COPY or mid-LOAD DATA: what the driver said, not what the rollback after it said.
LOST = {
    "postgresql": ("server closed the connection unexpectedly",),
    # gone away: a send failed; lost: the send got through, the reply never came
    "mariadb": ("MySQL server has gone away", "Lost connection to MySQL server"),
}
# The server gone silent for longer than the statement timeout.
SILENT = {"postgresql": "no answer within 2s", "mariadb": "(timed out)"}


class TestRepositoryElsewhere:
    """The repository in SQLite: a lost connection fails the chunk (no automatic re-write,
    the docs promise at-least-once), and a restart resumes after the last committed chunk."""

    def test_a_cut_mid_write_names_the_lost_connection_and_a_restart_completes(
        self, server: tuple[str, str, FrozenProxy], tmp_path: Path
    ) -> None:
        """The chunk's rollback on the dead connection failed too, and its error replaced the
        writer's: "the connection is lost" (PostgreSQL), PyMySQL's "InterfaceError (0, '')"
        (MariaDB, where the LOAD DATA itself ended in an AttributeError)."""
        backend = server[0]
        engine, failed, target = run(server, tmp_path, at=2 if backend == "postgresql" else 5)
        with engine:
            line = failure_line(engine, failed)
            assert "chunk 2 (items 10001-20000): writing failed: OperationalError" in line, line
            assert any(said in line for said in LOST[backend]), line
            assert_nothing_left(tmp_path)
            assert_whole(engine, [failed, engine.restart(failed.id)], target, tmp_path)
        target.dispose()

    def test_a_cut_mid_write_is_retried_by_retry_on_operational_error(
        self, server: tuple[str, str, FrozenProxy], tmp_path: Path
    ) -> None:
        """``.retry(OperationalError)`` writes the chunk again on a new connection. On MariaDB
        the lost LOAD DATA surfaced as an InterfaceError the retry did not cover."""
        backend = server[0]
        at = 2 if backend == "postgresql" else 5
        engine, execution, target = run(server, tmp_path, at=at, retry=True)
        with engine:
            assert_whole(engine, [execution], target, tmp_path)
            assert engine.get_execution(execution.id).step_executions[0].rollback_count == 1
        target.dispose()

    def test_a_server_silent_past_the_statement_timeout_fails_the_chunk_and_a_restart_completes(
        self, server: tuple[str, str, FrozenProxy], tmp_path: Path
    ) -> None:
        """Frozen mid-write: the chunk fails after the timeout (not a hang), saying so."""
        backend, _, proxy = server
        at = 2 if backend == "postgresql" else 5
        engine, failed, target = run(server, tmp_path, at=at, freeze=True)
        with engine:
            line = failure_line(engine, failed)
            assert SILENT[backend] in line, line
            assert_nothing_left(tmp_path)
            # The server still holds the frozen load's transaction (its locks on the rows
            # loaded so far) until it sees the connection close, as after a real partition.
            proxy.frozen.clear()
            proxy.drop()
            assert_whole(engine, [failed, engine.restart(failed.id)], target, tmp_path)
        target.dispose()


def test_repository_in_the_same_database_writes_a_cut_chunk_again_exactly_once(
    server: tuple[str, str, FrozenProxy], tmp_path: Path
) -> None:
    """Data and progress in one transaction: the step writes the rolled-back chunk again by
    itself, and every row is in once."""
    backend = server[0]
    engine, execution, target = run(
        server, tmp_path, at=2 if backend == "postgresql" else 5, shared=True
    )
    with engine:
        assert_whole(engine, [execution], target, tmp_path)
