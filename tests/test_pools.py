"""Pools and splits: bounded concurrency for jobs and steps, parallel flows, no nested deadlock."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from batchline import BatchStatus, ConfigurationError, Engine, JobBuilder, StepBuilder
from batchline.flow import Flow
from batchline.model import StepExecution
from batchline.partitioners import IntegerRangePartitioner
from batchline.pools import WorkerPool
from batchline.steps.partition_threads import ThreadPartitionHandler


class Gauge:
    """Counts the tasks running at once and keeps the highest count seen."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.active = 0
        self.peak = 0
        self.done = 0

    def task(self, hold: float = 0.05) -> Callable[[StepExecution], None]:
        def run(se: StepExecution) -> None:
            with self.lock:
                self.active += 1
                self.peak = max(self.peak, self.active)
            time.sleep(hold)  # long enough for other tasks to overlap if they may
            with self.lock:
                self.active -= 1
                self.done += 1

        return run


def partitioned(name: str, task: Callable[[StepExecution], Any], grid: int = 4) -> StepBuilder:
    """A step of ``grid`` partitions of ``task`` on the engine's step pool."""
    return StepBuilder(name).partition(
        StepBuilder(f"{name}_work").task(task),
        IntegerRangePartitioner(1, grid),
        grid_size=grid,
        handler=ThreadPartitionHandler(),
    )


class TestWorkerPool:
    def test_run_all_keeps_order_and_errors(self) -> None:
        """Outcomes come back in the order of the tasks, errors captured, not raised."""
        pool = WorkerPool("test", 2)

        def boom() -> int:
            raise ValueError("boom")

        outcomes = pool.run_all([lambda: 1, boom, lambda: 3])
        pool.shutdown()
        assert [o.value for o in outcomes] == [1, None, 3]
        assert isinstance(outcomes[1].error, ValueError)

    def test_nested_waits_on_a_one_thread_pool_complete(self) -> None:
        """Tasks that wait for tasks on the same one-thread pool finish instead of deadlocking."""
        pool = WorkerPool("nested", 1)

        def depth(n: int) -> int:
            if n == 0:
                return 1
            outcomes = pool.run_all([lambda: depth(n - 1), lambda: depth(n - 1)])
            return sum(o.value or 0 for o in outcomes)

        result: list[int] = []
        runner = threading.Thread(
            target=lambda: result.append(pool.submit(lambda: depth(3)).result())
        )
        runner.start()
        runner.join(30)
        finished = not runner.is_alive()
        pool.shutdown(wait=finished)
        assert finished, "nested run_all deadlocked"
        assert result == [8]


class TestEngineLimits:
    def test_steps_limit_bounds_partitions_across_jobs(self, sqlite_url: str) -> None:
        """Partitions of two jobs on the engine's step pool never exceed max_concurrent_steps."""
        gauge = Gauge()
        with Engine(sqlite_url, max_concurrent_steps=2, heartbeat_interval=0.5) as engine:
            jobs = [
                JobBuilder(f"job{i}").step(partitioned("p", gauge.task())).build() for i in (1, 2)
            ]
            handles = [engine.start_async(job) for job in jobs]
            ends = [h.wait(60) for h in handles]
        assert [e.status for e in ends] == [BatchStatus.COMPLETED] * 2
        assert gauge.done == 8
        assert 1 <= gauge.peak <= 2

    def test_jobs_limit_bounds_running_jobs(self, sqlite_url: str) -> None:
        """No more than max_concurrent_jobs jobs run at once; the others queue."""
        gauge = Gauge()
        with Engine(sqlite_url, max_concurrent_jobs=1, heartbeat_interval=0.5) as engine:
            jobs = [
                JobBuilder(f"job{i}").step(StepBuilder("s").task(gauge.task())).build()
                for i in range(3)
            ]
            ends = [h.wait(60) for h in [engine.start_async(job) for job in jobs]]
        assert [e.status for e in ends] == [BatchStatus.COMPLETED] * 3
        assert gauge.peak == 1


class TestSplit:
    def test_flows_run_side_by_side_and_the_job_waits_for_all(self, sqlite_engine: Engine) -> None:
        """Each flow waits for the other at a barrier: only parallel flows get through it."""
        meet = threading.Barrier(2, timeout=30)
        order: list[str] = []

        def step(name: str, wait: bool = False) -> StepBuilder:
            def run(se: StepExecution) -> None:
                if wait:
                    meet.wait()
                order.append(name)

            return StepBuilder(name).task(run)

        job = (
            JobBuilder("split_job")
            .split(Flow("left", [step("a1", True).build(), step("a2").build()]), [step("b1", True)])
            .step(step("after"))
            .build()
        )
        execution = sqlite_engine.start(job)
        assert execution.status is BatchStatus.COMPLETED, execution.exit_status
        names = [s.step_name for s in sqlite_engine.step_executions(execution.id)]
        assert sorted(names) == ["a1", "a2", "after", "b1", "split-1"]
        assert order[-1] == "after"

    def test_failed_flow_fails_the_split_and_restart_runs_only_what_failed(
        self, sqlite_engine: Engine
    ) -> None:
        """The other flow runs to its end; a restart skips every step that completed."""
        runs: list[str] = []
        failing = {"on": True}

        def step(name: str) -> StepBuilder:
            def run(se: StepExecution) -> None:
                runs.append(name)
                if name == "a2" and failing["on"]:
                    raise RuntimeError("a2 broke")

            return StepBuilder(name).task(run)

        job = (
            JobBuilder("split_fail")
            .split([step("a1"), step("a2")], [step("b1"), step("b2")])
            .build()
        )
        sqlite_engine.register(job)
        first = sqlite_engine.start("split_fail")
        assert first.status is BatchStatus.FAILED
        assert "a2 broke" in first.exit_status.description
        assert sorted(runs) == ["a1", "a2", "b1", "b2"]
        failing["on"] = False
        runs.clear()
        second = sqlite_engine.restart(first.id)
        assert second.status is BatchStatus.COMPLETED
        assert runs == ["a2"]

    def test_partitions_inside_flows_on_a_one_thread_step_pool(self, sqlite_url: str) -> None:
        """Flows and their partitions share a step pool of one thread without deadlock."""
        gauge = Gauge()
        with Engine(sqlite_url, max_concurrent_steps=1, heartbeat_interval=0.5) as engine:
            job = (
                JobBuilder("nested")
                .split(
                    [partitioned("left", gauge.task(0.0), 3)],
                    [partitioned("right", gauge.task(0.0), 3)],
                )
                .build()
            )
            execution = engine.start_async(job).wait(60)
        assert execution.status is BatchStatus.COMPLETED, execution.exit_status
        assert gauge.done == 6

    def test_step_names_inside_flows_must_be_unique(self) -> None:
        """A step name used in two flows is refused when the job is built."""
        with pytest.raises(ConfigurationError, match="more than one step named"):
            JobBuilder("dup").split(
                [StepBuilder("x").task(print)], [StepBuilder("x").task(print)]
            ).build()
