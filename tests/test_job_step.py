"""Job steps: a step that runs another job, its own instance, resumed by the parent's restart."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from batchline import (
    BatchStatus,
    ConfigurationError,
    Engine,
    Job,
    JobBuilder,
    JobParameters,
    ListWriter,
    StepBuilder,
    StepExecution,
)
from batchline.testing import eventually

ITEMS = list(range(1, 21))


class Child:
    """A child job: a chunk step over ITEMS, five at a time, whose writer fails once on 13."""

    def __init__(self) -> None:
        self.writer: ListWriter[int] = ListWriter()
        self.fail_on: int | None = 13
        self.after_commit: Any = None

    def after_chunk(self, chunk: Any) -> None:
        if self.after_commit is not None:
            self.after_commit(chunk)

    def write(self, items: list[int], chunk: Any) -> None:
        if self.fail_on is not None and self.fail_on in items:
            self.fail_on = None
            raise RuntimeError("child writer broke")
        self.writer.write(items, chunk)

    def job(self) -> Job:
        step = (
            StepBuilder("load")
            .chunk(5)
            .reader(ITEMS)
            .writer(self.write)
            .stream(self.writer)
            .listener(self)
        )
        return JobBuilder("child").step(step).build()


def parent_job(child: Child, runs: Counter[str], **job_options: Any) -> Job:
    def before(se: StepExecution) -> None:
        runs["before"] += 1

    return (
        JobBuilder("parent")
        .step(StepBuilder("before").task(before))
        .step(StepBuilder("run-child").job(child.job(), **job_options))
        .build()
    )


class TestJobStep:
    def test_child_failure_then_parent_restart_completes_it(self, engine: Engine) -> None:
        """The child fails in its third chunk; the parent's restart restarts the child, which
        resumes from its last commit: every item written once, `before` not run again."""
        child, runs = Child(), Counter[str]()
        engine.register(parent_job(child, runs))
        first = engine.start("parent", {"day": 1})
        assert first.status is BatchStatus.FAILED
        assert "child job 'child' execution" in first.exit_status.description
        assert "child writer broke" in first.exit_status.description
        failed_child = engine.list_executions("child")[0]
        assert failed_child.status is BatchStatus.FAILED
        assert dict(failed_child.parameters) == {"day": 1}
        second = engine.restart(first.id)
        assert second.status is BatchStatus.COMPLETED
        assert [s.step_name for s in second.step_executions] == ["run-child"]
        children = engine.list_executions("child")
        assert [c.status for c in children] == [BatchStatus.COMPLETED, BatchStatus.FAILED]
        assert children[0].instance.id == children[1].instance.id  # the same child instance
        assert engine.get_execution(children[0].id).step("load").read_count == 10
        assert child.writer.items == ITEMS
        assert runs == Counter(before=1)

    def test_parameters_derived_from_the_parent(self, sqlite_engine: Engine) -> None:
        """`parameters(step_execution)` gives the child's parameters; the child's exit status
        becomes the step's."""
        child, runs = Child(), Counter[str]()
        child.fail_on = None
        job = parent_job(child, runs, parameters=lambda se: {"date": f"day-{se.parameters['n']}"})
        execution = sqlite_engine.start(job, {"n": 7})
        assert execution.status is BatchStatus.COMPLETED
        (run,) = sqlite_engine.list_executions("child")
        assert dict(run.parameters) == {"date": "day-7"}
        step = sqlite_engine.get_execution(execution.id).step("run-child")
        assert step.context["batchline.child_execution"] == run.id

    def test_parent_stop_reaches_the_child(self, sqlite_engine: Engine) -> None:
        """A stop of the parent stops the child at its next chunk; both end STOPPED, and the
        parent's restart finishes the child."""
        child, runs = Child(), Counter[str]()
        child.fail_on = None

        def stop_parent(chunk: Any) -> None:
            if chunk.number == 2:
                parent = sqlite_engine.list_executions("parent")[0]
                sqlite_engine.stop(parent.id)

        child.after_commit = stop_parent  # after the commit: no transaction holds SQLite's lock
        engine = sqlite_engine
        engine.register(parent_job(child, runs))
        first = engine.start("parent")
        assert first.status is BatchStatus.STOPPED
        assert engine.list_executions("child")[0].status is BatchStatus.STOPPED
        child.after_commit = None
        assert engine.restart(first.id).status is BatchStatus.COMPLETED
        assert child.writer.items == ITEMS

    def test_parent_stop_from_elsewhere_reaches_the_child(
        self, sqlite_url: str, sqlite_engine: Engine
    ) -> None:
        """A stop of the parent recorded by another engine (as another process would) reaches
        the child at the running engine's next heartbeat."""
        child, runs = Child(), Counter[str]()
        child.fail_on = None
        engine = sqlite_engine

        def stop_parent_elsewhere(chunk: Any) -> None:
            if chunk.number != 2:
                return
            parent = engine.list_executions("parent")[0]
            with Engine(sqlite_url) as other:
                other.stop(parent.id)
            child_id = chunk.step_execution.job_execution.id
            eventually(
                lambda: engine._running[child_id].stopping,
                timeout=30,
                message="the parent's stop never reached the child",
            )

        child.after_commit = stop_parent_elsewhere
        engine.register(parent_job(child, runs))
        first = engine.start("parent")
        assert first.status is BatchStatus.STOPPED
        assert engine.list_executions("child")[0].status is BatchStatus.STOPPED
        assert engine.get_execution(first.id).step("run-child").status is BatchStatus.STOPPED

    def test_a_child_completed_before_fails_the_step(self, engine: Engine) -> None:
        """A child instance that completed before the parent's step launched it fails the
        step with JobInstanceAlreadyComplete (Spring's JobStep), running nothing."""
        child, runs = Child(), Counter[str]()
        child.fail_on = None
        engine.register(child.job())
        assert engine.start("child", {"day": 1}).status is BatchStatus.COMPLETED
        execution = engine.start(engine.register(parent_job(child, runs)), {"day": 1})
        assert execution.status is BatchStatus.FAILED
        assert "JobInstanceAlreadyComplete" in execution.exit_status.description
        assert "allow_completed_child=True" in execution.exit_status.description
        assert engine.get_execution(execution.id).step("run-child").status is BatchStatus.FAILED
        again = engine.restart(execution.id)
        assert again.status is BatchStatus.FAILED  # the restart refuses it too
        assert "JobInstanceAlreadyComplete" in again.exit_status.description
        assert len(engine.list_executions("child")) == 1
        assert child.writer.items == ITEMS

    def test_allow_completed_child_completes_the_step(self, sqlite_engine: Engine) -> None:
        """With allow_completed_child=True a completed child instance completes the step,
        nothing run again."""
        child, runs = Child(), Counter[str]()
        child.fail_on = None
        sqlite_engine.register(child.job())
        assert sqlite_engine.start("child", {"day": 1}).status is BatchStatus.COMPLETED
        job = parent_job(child, runs, allow_completed_child=True)
        assert sqlite_engine.start(job, {"day": 1}).status is BatchStatus.COMPLETED
        assert len(sqlite_engine.list_executions("child")) == 1
        assert child.writer.items == ITEMS

    def test_own_child_completed_before_the_parent_recorded_it(self, engine: Engine) -> None:
        """A child this step launched, completed while the parent's step then failed, counts
        as done on the parent's restart: the step completes, the child is not run again."""
        child = Child()
        child.fail_on = None
        broken = {"on": True}

        class Breaks:
            def after_step(self, se: StepExecution) -> None:
                if broken["on"]:
                    raise RuntimeError("parent died after its child")

        step = StepBuilder("run-child").job(child.job()).listener(Breaks())
        job = engine.register(JobBuilder("parent").step(step).build())
        first = engine.start(job, {"day": 1})
        assert first.status is BatchStatus.FAILED
        broken["on"] = False
        assert engine.restart(first.id).status is BatchStatus.COMPLETED
        assert len(engine.list_executions("child")) == 1
        assert child.writer.items == ITEMS

    def test_child_parameters_computed_once(self, engine: Engine) -> None:
        """The child's parameters are computed once and kept in the step's context: the
        parent's restart restarts the same child instance with the same values, even when
        the parameters function would now give others."""
        child, runs = Child(), Counter[str]()
        calls = Counter[str]()

        def params(se: StepExecution) -> JobParameters:
            calls["made"] += 1
            return JobParameters(
                {"day": se.parameters["day"]}, non_identifying={"try": calls["made"]}
            )

        engine.register(parent_job(child, runs, parameters=params))
        first = engine.start("parent", {"day": 1})
        assert first.status is BatchStatus.FAILED
        assert engine.restart(first.id).status is BatchStatus.COMPLETED
        children = engine.list_executions("child")
        assert [c.status for c in children] == [BatchStatus.COMPLETED, BatchStatus.FAILED]
        assert children[0].instance.id == children[1].instance.id
        assert [dict(c.parameters) for c in children] == [{"day": 1, "try": 1}] * 2
        assert calls["made"] == 1
        assert child.writer.items == ITEMS

    def test_job_step_takes_no_task(self) -> None:
        """A job step with a task is refused, naming both."""
        with pytest.raises(ConfigurationError, match="runs job 'child': it takes no task"):
            StepBuilder("s").job(Child().job()).task(lambda se: None).build()
