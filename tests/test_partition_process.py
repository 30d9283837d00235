"""Partitions on a process pool: workers report through the repository alone, survive SIGKILL."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from batchline import BatchStatus, Engine, LeaseLost, StepExecution
from batchline.testing import eventually
from batchline.workers import PartitionTask, run_partition_task
from tests.backends import BACKENDS, fresh_database
from tests.jobs import partition_jobs
from tests.jobs.partition_jobs import PROCESS_JOB, ROWS, copied, create_tables, expected

pytestmark = pytest.mark.slow


@pytest.fixture(params=BACKENDS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database on each backend, holding the copy's tables."""
    with fresh_database(request.param, tmp_path) as found:
        with Engine(found):  # migrates the repository schema
            pass
        create_tables(found)
        yield found


def partitions(steps: list[StepExecution]) -> dict[str, StepExecution]:
    return {s.step_name: s for s in steps if s.step_name.startswith("copy:")}


class TestFencedWorkers:
    def test_a_worker_creates_nothing_under_an_execution_taken_over(self, url: str) -> None:
        """A thawed manager's task reaches a worker after a restart marked the execution
        FAILED: the worker raises LeaseLost and no step execution appears under it."""
        with Engine(url, heartbeat_interval=0.5) as engine:
            _, execution = engine.launch(PROCESS_JOB, {"db": url})
            execution.set_status(BatchStatus.STARTED)
            engine.repository.update_job_execution(execution)
            engine.repository.mark_failed(execution.id, "recovered: taken over by a restart")
            task = PartitionTask(
                url,
                "tests.jobs.partition_jobs:PROCESS_JOB",
                PROCESS_JOB.name,
                "copy",
                execution.id,
                "copy:0000",
                {},
                rerun_completed=True,
            )
            with pytest.raises(LeaseLost, match="is FAILED"):
                run_partition_task(task)
            assert engine.step_executions(execution.id) == []


class TestProcessPartitions:
    def test_partitions_run_in_worker_processes(self, url: str) -> None:
        """Every partition runs in a process of its own pool and the copy is exact."""
        with Engine(url, heartbeat_interval=0.5) as engine:
            engine.register(PROCESS_JOB)
            execution = engine.start(PROCESS_JOB.name, {"db": url})
            steps = engine.step_executions(execution.id)
        assert execution.status is BatchStatus.COMPLETED, execution.exit_status
        parts = partitions(steps)
        assert sorted(parts) == [f"copy:{i:04d}" for i in range(4)]
        manager = next(s for s in steps if s.step_name == "copy")
        assert manager.read_count == manager.write_count == ROWS
        assert sum(p.read_count for p in parts.values()) == ROWS
        pids = {p.context["pid"] for p in parts.values()}
        assert os.getpid() not in pids and 1 <= len(pids) <= 2  # a pool of two workers
        assert copied(url) == expected()

    def test_sigkilled_worker_fails_the_step_and_restart_completes_it(
        self, url: str, tmp_path: Path
    ) -> None:
        """A worker killed by SIGKILL fails the step cleanly; a restart resumes its partition."""
        marker = tmp_path / "killed"
        params = {"db": url, "kill_at": 150, "marker": str(marker)}
        with Engine(url, heartbeat_interval=0.5) as engine:
            engine.register(PROCESS_JOB)
            first = engine.start(PROCESS_JOB.name, params)
            first_steps = engine.step_executions(first.id)
            assert marker.exists() and int(marker.read_text()) != os.getpid()
            assert first.status is BatchStatus.FAILED
            killed = partitions(first_steps)["copy:0001"]
            assert killed.status is BatchStatus.FAILED
            assert "lost its worker" in killed.exit_status.description
            assert not [s for s in first_steps if s.status.is_running]
            manager = next(s for s in first_steps if s.step_name == "copy")
            assert manager.status is BatchStatus.FAILED
            assert "copy:0001" in manager.exit_status.description

            second = engine.restart(first.id)
            second_steps = engine.step_executions(second.id)
        assert second.status is BatchStatus.COMPLETED, second.exit_status
        again = partitions(second_steps)
        done = {n for n, s in partitions(first_steps).items() if s.status is BatchStatus.COMPLETED}
        assert set(again) == {f"copy:{i:04d}" for i in range(4)} - done  # only those not done
        # The killed partition resumes after its last commit (ids 101-140), not from its start.
        assert killed.read_count == 40
        assert again["copy:0001"].read_count == 60
        assert copied(url) == expected()

    def test_stop_reaches_worker_processes(self, sqlite_url: str, tmp_path: Path) -> None:
        """A stop ends running and queued partitions in the workers STOPPED; restart completes."""
        with Engine(sqlite_url):
            pass
        create_tables(sqlite_url)
        gate = tmp_path / "gate"
        with Engine(sqlite_url, heartbeat_interval=0.5) as engine:
            engine.register(PROCESS_JOB)
            handle = engine.start_async(PROCESS_JOB.name, {"db": sqlite_url, "gate": str(gate)})

            def two_running() -> bool:  # a pool of two: two partitions run, two wait
                parts = partitions(engine.step_executions(handle.execution_id))
                return len(parts) == 2 and all(p.commit_count for p in parts.values())

            try:
                eventually(
                    two_running, timeout=60, interval=0.02, message="no two partitions committed"
                )
                engine.stop(handle.execution_id)
            finally:
                gate.touch()
            first = handle.wait(60)
            before = {s.step_name: s for s in engine.step_executions(first.id)}
            second = engine.restart(first.id)
        assert first.status is BatchStatus.STOPPED
        assert {n: s.status for n, s in before.items()} == dict.fromkeys(
            ["copy", *(f"copy:{i:04d}" for i in range(4))], BatchStatus.STOPPED
        )
        assert sorted(s.read_count for n, s in before.items() if ":" in n) == [0, 0, 40, 40]
        assert second.status is BatchStatus.COMPLETED, second.exit_status
        assert copied(sqlite_url) == expected()


def test_job_module_is_importable_by_reference() -> None:
    """The process handler's job reference names the module's job."""
    from batchline.loader import load_jobs

    assert load_jobs("tests.jobs.partition_jobs:PROCESS_JOB") == [partition_jobs.PROCESS_JOB]


@pytest.mark.parametrize("interval", [None, 0.0])
def test_worker_processes_sample_at_the_managers_interval(
    sqlite_url: str, interval: float | None
) -> None:
    """The workers' repositories keep the manager's sample interval: none at all with None,
    one per chunk with 0 (they sampled every 5 s whatever the manager said)."""
    from batchline import SqlJobRepository

    with Engine(sqlite_url):
        pass
    create_tables(sqlite_url)
    repository = SqlJobRepository(sqlite_url, sample_interval=interval)
    with Engine(repository, heartbeat_interval=0.5) as engine:
        engine.register(PROCESS_JOB)
        execution = engine.start(PROCESS_JOB.name, {"db": sqlite_url})
        assert execution.status is BatchStatus.COMPLETED, execution.exit_status
        parts = partitions(engine.step_executions(execution.id))
        samples = engine.progress_samples(execution.id)
    sampled = {
        name: [s for s in samples if s.step_execution_id == se.id] for name, se in parts.items()
    }
    if interval is None:
        assert samples == [] and sampled == {name: [] for name in parts}
    else:
        # A sample per chunk commit, and the last holds the partition's final count.
        assert all(len(found) >= 2 for found in sampled.values()), sampled
        assert {name: found[-1].read_count for name, found in sampled.items()} == {
            name: se.read_count for name, se in parts.items()
        }
