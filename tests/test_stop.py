"""Stop: a running job asked to stop ends STOPPED at the next chunk boundary and restarts cleanly.

The job: ``load`` (a chunk step, five items a chunk, inserting into a table through the chunk's
connection) whose processor holds item 13 (chunk 3) until the test releases it, then ``report``
(a task counting its runs). The stop is requested while chunk 3 is held.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import sqlalchemy as sa

from batchline import (
    BatchStatus,
    Engine,
    JobBuilder,
    JobExecutionNotRunning,
    ListWriter,
    SqlInsertWriter,
    StepBuilder,
    StepExecution,
)
from batchline.job import Job
from batchline.model import utcnow
from batchline.repository.purge import purge

ITEMS = list(range(1, 31))
CHUNK = 5
HOLD = 13  # in chunk 3 (items 11-15)
WAIT = 30.0  # seconds a test waits for the job thread before giving up

tables = sa.MetaData()
loaded = sa.Table(
    "stop_loaded",
    tables,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("item", sa.Integer, nullable=False),
)


@dataclass
class Gate:
    """A processor that records each item and holds item ``hold`` until released (once)."""

    hold: int
    reached: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    processed: list[int] = field(default_factory=list)

    def process(self, item: int) -> dict[str, int]:
        self.processed.append(item)
        if item == self.hold and not self.reached.is_set():
            self.reached.set()
            if not self.release.wait(WAIT):
                raise TimeoutError(f"item {item} was never released")
        return {"item": item}


@dataclass
class StopHarness:
    engine: Engine
    gate: Gate = field(default_factory=lambda: Gate(HOLD))
    reports: int = 0

    def __post_init__(self) -> None:
        self.bind: sa.Engine = self.engine.repository.engine  # type: ignore[attr-defined]
        tables.create_all(self.bind)

        def report(se: StepExecution) -> None:
            self.reports += 1

        load = (
            StepBuilder("load")
            .chunk(CHUNK)
            .reader(ITEMS)
            .processor(self.gate)
            .writer(SqlInsertWriter(loaded))
        )
        self.engine.register(
            JobBuilder("stoppable").step(load).step(StepBuilder("report").task(report)).build()
        )

    def loaded_items(self) -> list[int]:
        with self.bind.connect() as conn:
            return sorted(conn.execute(sa.select(loaded.c.item)).scalars())


@pytest.fixture
def harness(engine: Engine) -> Iterator[StopHarness]:
    made = StopHarness(engine)
    yield made
    made.gate.release.set()  # never leave the job thread waiting, whatever the test did


class TestStop:
    @pytest.mark.parametrize("stopper", ["same engine", "second engine"])
    def test_stop_ends_stopped_after_chunk_in_flight_and_restart_completes(
        self, harness: StopHarness, db_url: str, stopper: str
    ) -> None:
        """Stop in chunk 3 ends STOPPED after it, no later chunk; restart writes each item once."""
        engine, gate = harness.engine, harness.gate
        handle = engine.start_async("stoppable", {"run": 1})
        assert gate.reached.wait(WAIT), "the job never reached the held item"
        if stopper == "same engine":
            asked = engine.stop(handle.execution_id)
        else:
            with Engine(db_url, heartbeat_interval=0.5, lease=5) as other:
                asked = other.stop(handle.execution_id)
        assert asked.status is BatchStatus.STOPPING
        gate.release.set()
        stopped = handle.wait(WAIT)

        stored = engine.get_execution(handle.execution_id)
        for execution in (stopped, stored):
            assert execution.status is BatchStatus.STOPPED
            assert execution.exit_status.code == "STOPPED"
        (step,) = stored.step_executions
        assert (step.step_name, step.status, step.exit_status.code) == (
            "load",
            BatchStatus.STOPPED,
            "STOPPED",
        )
        assert gate.processed == ITEMS[:15]  # chunk 3 was in flight; no chunk after it
        assert harness.loaded_items() == ITEMS[:15]
        assert (step.read_count, step.write_count, step.commit_count) == (15, 15, 3)
        assert harness.reports == 0

        restarted = engine.restart(handle.execution_id)
        assert restarted.status is BatchStatus.COMPLETED, restarted.exit_status
        assert restarted.instance.id == stored.instance.id
        assert gate.processed == ITEMS
        assert harness.loaded_items() == ITEMS
        assert harness.reports == 1
        resumed = engine.step_executions(restarted.id)[0]
        assert (resumed.read_count, resumed.write_count) == (15, 15)

    def test_stop_of_finished_execution_is_refused(self, harness: StopHarness) -> None:
        """Stopping a COMPLETED execution raises JobExecutionNotRunning naming it."""
        harness.gate.release.set()
        done = harness.engine.start("stoppable", {"run": 2})
        assert done.status is BatchStatus.COMPLETED
        not_running = rf"job execution {done.id} is not running"
        with pytest.raises(JobExecutionNotRunning, match=not_running):
            harness.engine.stop(done.id)
        assert harness.engine.get_execution(done.id).status is BatchStatus.COMPLETED


def _count_job() -> Job:
    return (
        JobBuilder("marked")
        .step(StepBuilder("s").chunk(5).reader(list(range(20))).writer(ListWriter()))
        .build()
    )


class TestStopMarkers:
    """SQLite's stop markers (``<db>.stop-<id>``) name one execution, and go with it."""

    def test_a_marker_left_for_an_earlier_holder_of_the_id_stops_nothing(
        self, tmp_path: Path
    ) -> None:
        """A marker left by an execution that had the same id in a file since recreated: the
        new execution reads everything and completes, and the stale marker is gone."""
        path = tmp_path / "repository.db"
        url = f"sqlite:///{path}"
        with Engine(url, heartbeat_interval=0.5, lease=5) as engine:
            _, first = engine.launch(_count_job())
            engine.stop(first.id)  # its process then died, leaving the marker
        marker = Path(f"{path}.stop-{first.id}")
        assert marker.exists()
        path.unlink()
        with Engine(url, heartbeat_interval=0.5, lease=5) as engine:
            execution = engine.start(_count_job())
            assert execution.id == first.id  # SQLite handed the id out again
        assert execution.status is BatchStatus.COMPLETED, execution.exit_status
        assert execution.step_executions[0].read_count == 20
        assert not marker.exists()

    @pytest.mark.parametrize("how", ["recover", "abandon"])
    def test_recover_and_abandon_remove_the_marker(self, sqlite_url: str, how: str) -> None:
        """An execution stopped, then its process gone before it saw the stop: recovering it
        (and abandoning it afterwards) leaves no marker behind."""
        with Engine(sqlite_url, heartbeat_interval=0.5, lease=5) as engine:
            _, execution = engine.launch(_count_job())
            engine.stop(execution.id)
            marker = Path(f"{sqlite_url.removeprefix('sqlite:///')}.stop-{execution.id}")
            assert marker.exists()
            engine.recover(execution.id, force=True)
            if how == "abandon":
                marker.write_text("left by a second SIGTERM")  # as a dead stopper leaves it
                engine.abandon(execution.id)
        assert not marker.exists()

    def test_purge_removes_the_markers_of_what_it_deletes(self, sqlite_url: str) -> None:
        """A marker of an execution purged goes with its rows."""
        with Engine(sqlite_url, heartbeat_interval=0.5, lease=5) as engine:
            done = engine.start(_count_job())
            marker = Path(f"{sqlite_url.removeprefix('sqlite:///')}.stop-{done.id}")
            marker.write_text("left by a process that died")
            result = purge(engine.repository, utcnow() + dt.timedelta(days=1))
        assert result.job_executions == 1
        assert not marker.exists()
