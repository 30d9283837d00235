"""Deciders: a three-way routing job, and what a decider does on restart."""

from __future__ import annotations

from collections import Counter

import pytest

from batchline import (
    BatchStatus,
    Decider,
    Engine,
    ExitStatus,
    JobBuilder,
    JobExecution,
    StepBuilder,
    StepExecution,
)


class ThreeWay:
    """count -> decide (by the size the count step saved) -> small | medium | large -> report."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.runs: Counter[str] = Counter()
        self.asked: list[str | None] = []
        self.failing: set[str] = set()
        self.decider_fails = False

    def task(self, name: str) -> StepBuilder:
        def run(se: StepExecution) -> None:
            self.runs[name] += 1
            if name == "count":
                se.context["size"] = self.size
            if name in self.failing:
                raise RuntimeError(f"{name} broke")

        return StepBuilder(name).task(run)

    def decide(self, job: JobExecution, last: StepExecution | None) -> str | ExitStatus:
        self.asked.append(last.step_name if last else None)
        if self.decider_fails:
            raise ValueError("cannot tell the size")
        assert last is not None
        size = int(last.context["size"])
        return "SMALL" if size < 10 else ExitStatus("MEDIUM") if size < 100 else "LARGE"

    def job(self) -> object:
        report = self.task("report")
        return (
            JobBuilder("sizes")
            .start(self.task("count"))
            .next(Decider("by-size", self.decide))
            .on("SMALL")
            .to(self.task("small"))
            .on("MEDIUM")
            .to(self.task("medium"))
            .on("LARGE")
            .to(self.task("large"))
            .from_("small")
            .next(report)
            .from_("medium")
            .on("*")
            .to(report)
            .from_("large")
            .on("*")
            .to(report)
            .build()
        )


def names(execution: JobExecution) -> list[str]:
    return [s.step_name for s in execution.step_executions]


class TestThreeWay:
    @pytest.mark.parametrize(("size", "branch"), [(3, "small"), (50, "medium"), (500, "large")])
    def test_each_branch(self, engine: Engine, size: int, branch: str) -> None:
        """The decider's answer, a string or an ExitStatus, picks one of three branches."""
        flow = ThreeWay(size)
        execution = engine.start(flow.job())  # type: ignore[arg-type]
        assert execution.status is BatchStatus.COMPLETED
        assert names(execution) == ["count", branch, "report"]
        assert flow.asked == ["count"]  # it got the last step's execution


class TestRestart:
    def test_decision_stands_on_restart(self, engine: Engine) -> None:
        """The branch the decider chose fails; the restart resumes there without asking it."""
        flow = ThreeWay(3)
        flow.failing.add("small")  # no transitions of its own: its failure fails the job
        job = engine.register(flow.job())  # type: ignore[arg-type]
        first = engine.start(job)
        assert first.status is BatchStatus.FAILED
        flow.failing.clear()
        flow.size = 500  # had the decider been asked again, it would now say LARGE
        second = engine.restart(first.id)
        assert second.status is BatchStatus.COMPLETED
        assert names(second) == ["small", "report"]
        assert flow.asked == ["count"]
        assert flow.runs == Counter(count=1, small=2, report=1)

    def test_a_failed_decider_is_asked_again(self, engine: Engine) -> None:
        """A decider that raised fails the job at the decider; the restart asks it again, with
        the step that ran before it, which is not run again."""
        flow = ThreeWay(3)
        flow.decider_fails = True
        job = engine.register(flow.job())  # type: ignore[arg-type]
        first = engine.start(job)
        assert first.status is BatchStatus.FAILED
        assert "decider 'by-size' raised: ValueError: cannot tell the size" in (
            first.exit_status.description
        )
        flow.decider_fails = False
        second = engine.restart(first.id)
        assert second.status is BatchStatus.COMPLETED
        assert names(second) == ["small", "report"]
        assert flow.asked == ["count", "count"]
        assert flow.runs["count"] == 1

    def test_unmatched_decision_fails_naming_the_decider(self, engine: Engine) -> None:
        """A decision no transition matches fails the job, naming the decider and status."""
        job = (
            JobBuilder("odd")
            .start(StepBuilder("a").task(lambda se: None))
            .next(Decider("d", lambda j, s: "PURPLE"))
            .on("RED")
            .end()
            .build()
        )
        execution = engine.start(job)
        assert execution.status is BatchStatus.FAILED
        assert "job 'odd' decider 'd' ended with exit status 'PURPLE'" in (
            execution.exit_status.description
        )

    def test_a_decision_that_is_no_status_fails_the_job(self, sqlite_engine: Engine) -> None:
        """A decider returning None (forgot a return) fails the job, naming it."""
        job = (
            JobBuilder("none")
            .start(StepBuilder("a").task(lambda se: None))
            .next(Decider("d", lambda j, s: None))  # type: ignore[arg-type, return-value]
            .on("*")
            .end()
            .build()
        )
        execution = sqlite_engine.start(job)
        assert execution.status is BatchStatus.FAILED
        assert "decider 'd' returned None, not a status" in execution.exit_status.description
