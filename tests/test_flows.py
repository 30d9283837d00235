"""Conditional flows: transitions on exit statuses, their ends, and where a restart resumes."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from batchline import (
    BatchStatus,
    ConfigurationError,
    Decider,
    Engine,
    ExitStatus,
    JobBuilder,
    JobInstanceAlreadyComplete,
    StepBuilder,
    StepExecution,
)
from batchline.flowgraph import Transition


class Tasks:
    """Tasks that count their runs; a name in ``failing`` raises (until removed from it)."""

    def __init__(self, *failing: str) -> None:
        self.runs: Counter[str] = Counter()
        self.failing = set(failing)
        self.exits: dict[str, str] = {}

    def step(self, name: str) -> StepBuilder:
        def task(se: StepExecution) -> ExitStatus | None:
            self.runs[name] += 1
            if name in self.failing:
                raise RuntimeError(f"{name} broke")
            code = self.exits.get(name)
            return ExitStatus(code) if code else None

        return StepBuilder(name).task(task)


def ran(execution: Any) -> list[tuple[str, str]]:
    return [(s.step_name, s.status.value) for s in execution.step_executions]


class TestPatterns:
    def test_most_specific_first(self) -> None:
        """Fewer `*`, then fewer `?`, then more literal characters: Spring's order, total."""
        patterns = ["*", "C*", "COMPLETED*", "COMPLETE?", "COMPLETED", "??????????", "*D*"]
        order = sorted((Transition(p, "end") for p in patterns), key=lambda t: t.specificity)
        assert [t.pattern for t in order] == [
            "COMPLETED",
            "COMPLETE?",
            "??????????",
            "COMPLETED*",
            "C*",
            "*",
            "*D*",  # Spring's rule: fewer `*` first, whatever the literal characters
        ]

    def test_wildcards_are_only_star_and_question_mark(self) -> None:
        """`?` is one character, `*` any run; regex and glob brackets are literal."""
        assert Transition("FAIL?D", "end").matches("FAILED")
        assert not Transition("FAIL?D", "end").matches("FAILD")
        assert Transition("COMPLETED*", "end").matches("COMPLETED WITH SKIPS")
        assert Transition("[A]", "end").matches("[A]")
        assert not Transition("[A]", "end").matches("A")
        assert not Transition("A.C", "end").matches("ABC")


class TestBuildRefuses:
    def test_unreachable_step(self) -> None:
        """A step no transition leads to is refused when the job is built, by name."""
        t = Tasks()
        builder = JobBuilder("j").start(t.step("a")).on("*").end().from_(t.step("b"))
        with pytest.raises(ConfigurationError, match=r"'b' cannot be reached from .*'a'"):
            builder.on("*").end().build()

    def test_loop_has_no_end(self) -> None:
        """A flow that loops is refused: a step runs once per execution, it could never end."""
        t = Tasks()
        a, b = t.step("a"), t.step("b")
        builder = JobBuilder("j").start(a).on("*").to(b).from_(b).on("*").to("a")
        with pytest.raises(ConfigurationError, match=r"loops \(a -> b -> a\)"):
            builder.build()

    def test_unknown_target(self) -> None:
        """A transition to a name no step has is refused, naming both."""
        builder = JobBuilder("j").start(Tasks().step("a")).on("FAILED").to("nope")
        with pytest.raises(ConfigurationError, match=r"step 'a' goes to 'nope' on 'FAILED'"):
            builder.build()

    def test_decider_without_transitions(self) -> None:
        """A decider must say where its statuses go."""
        builder = JobBuilder("j").start(Tasks().step("a")).next(Decider("d", lambda j, s: "X"))
        with pytest.raises(ConfigurationError, match="decider 'd' has no transitions"):
            builder.build()

    def test_next_beside_transitions(self) -> None:
        """A step with transitions cannot also have a `.next`: the builder says what to write."""
        t = Tasks()
        builder = JobBuilder("j").start(t.step("a")).on("FAILED").end().next(t.step("b"))
        with pytest.raises(ConfigurationError, match=r"\.on\('\*'\)\.to\('b'\)"):
            builder.build()

    def test_same_pattern_twice(self) -> None:
        """Two transitions on one pattern from one step are refused."""
        builder = JobBuilder("j").start(Tasks().step("a")).on("*").end()
        with pytest.raises(ConfigurationError, match="two transitions on '\\*'"):
            builder.on("*").fail()

    def test_linear_jobs_have_no_flow(self) -> None:
        """Steps declared one after the other build the plain job they always did."""
        t = Tasks()
        job = JobBuilder("j").step(t.step("a")).step(t.step("b")).build()
        assert job.flow is None and [s.name for s in job.steps] == ["a", "b"]


def branching(t: Tasks, name: str, reverse: bool) -> Any:
    """a: FAILED -> recover, COMPLETED* -> report, * -> other; each then ends."""
    a, rec, rep, other = t.step("a"), t.step("recover"), t.step("report"), t.step("other")
    routes: list[tuple[str, Any]] = [("*", other), ("FAILED", rec), ("COMPLETED*", rep)]
    if reverse:
        routes.reverse()
    builder = JobBuilder(name).start(a)
    for pattern, target in routes:
        builder = builder.on(pattern).to(target)
    for end in ("recover", "report", "other"):
        builder = builder.from_(end).on("*").end()
    return builder.build()


class TestRouting:
    @pytest.mark.parametrize("reverse", [False, True], ids=["declared", "reversed"])
    @pytest.mark.parametrize(
        ("outcome", "path"),
        [("fail", "recover"), ("COMPLETED WITH SKIPS", "report"), ("ODD", "other")],
    )
    def test_declaration_order_does_not_matter(
        self, engine: Engine, reverse: bool, outcome: str, path: str
    ) -> None:
        """The same exit status takes the same path whichever order the transitions came in."""
        t = Tasks(*(["a"] if outcome == "fail" else []))
        if outcome != "fail":
            t.exits["a"] = outcome
        execution = engine.start(branching(t, "branching", reverse))
        assert execution.status is BatchStatus.COMPLETED
        assert [name for name, _ in ran(execution)] == ["a", path]

    def test_unmatched_status_fails_the_job(self, engine: Engine) -> None:
        """An exit status no transition matches fails the job, naming the step and status."""
        t = Tasks()
        t.exits["a"] = "ODD"
        job = JobBuilder("j").start(t.step("a")).on("COMPLETED").end().build()
        execution = engine.start(job)
        assert execution.status is BatchStatus.FAILED
        assert "job 'j' step 'a' ended with exit status 'ODD'" in execution.exit_status.description
        assert ran(execution) == [("a", "COMPLETED")]

    def test_failed_step_without_transitions_fails_the_job(self, engine: Engine) -> None:
        """A step with no transitions that fails ends the job FAILED with its cause."""
        t = Tasks("b")
        job = JobBuilder("j").start(t.step("a")).on("*").to(t.step("b")).build()
        execution = engine.start(job)
        assert execution.status is BatchStatus.FAILED
        assert "step 'b' FAILED: RuntimeError: b broke" in execution.exit_status.description

    def test_end_completes_the_instance(self, engine: Engine) -> None:
        """`end()` after a failed step: the job COMPLETED, the step stays FAILED, no restart."""
        t = Tasks("a")
        job = JobBuilder("j").start(t.step("a")).on("FAILED").end().build()
        execution = engine.start(job)
        assert execution.status is BatchStatus.COMPLETED
        assert ran(execution) == [("a", "FAILED")]
        engine.register(job)
        with pytest.raises(JobInstanceAlreadyComplete):
            engine.start("j")

    def test_fail_then_restart_resumes_at_that_step(self, engine: Engine) -> None:
        """`fail()`: the job FAILED; its restart runs that step again, not the ones before."""
        t = Tasks("b")
        job = (
            JobBuilder("j")
            .start(t.step("a"))
            .next(t.step("b"))
            .on("FAILED")
            .fail()
            .on("*")
            .to(t.step("c"))
            .build()
        )
        engine.register(job)
        first = engine.start("j")
        assert first.status is BatchStatus.FAILED
        assert "failed by its flow at step 'b'" in first.exit_status.description
        t.failing.clear()
        second = engine.restart(first.id)
        assert second.status is BatchStatus.COMPLETED
        assert ran(second) == [("b", "COMPLETED"), ("c", "COMPLETED")]
        assert t.runs == Counter(a=1, b=2, c=1)

    def test_stop_and_restart_begins_at_the_named_step(self, engine: Engine) -> None:
        """`stop_and_restart(c)`: the job STOPPED; its restart begins at c, skipping b."""
        t = Tasks()
        t.exits["a"] = "NEEDS REVIEW"
        job = (
            JobBuilder("j")
            .start(t.step("a"))
            .on("NEEDS REVIEW")
            .stop_and_restart("c")
            .on("*")
            .to(t.step("b"))
            .from_("b")
            .next(t.step("c"))
            .build()
        )
        engine.register(job)
        first = engine.start("j")
        assert first.status is BatchStatus.STOPPED
        assert "a restart begins at 'c'" in first.exit_status.description
        assert ran(first) == [("a", "COMPLETED")]  # the stop is the job's, not the step's
        second = engine.restart(first.id)
        assert second.status is BatchStatus.COMPLETED
        assert ran(second) == [("c", "COMPLETED")]
        assert t.runs == Counter(a=1, c=1)

    def test_handled_failure_is_not_replayed(self, engine: Engine) -> None:
        """a FAILED -> b; b fails; the restart resumes at b and never runs a again."""
        t = Tasks("a", "b")
        job = JobBuilder("j").start(t.step("a")).on("FAILED").to(t.step("b")).on("*").end().build()
        engine.register(job)
        first = engine.start("j")
        assert first.status is BatchStatus.FAILED
        assert ran(first) == [("a", "FAILED"), ("b", "FAILED")]
        t.failing.clear()
        second = engine.restart(first.id)
        assert second.status is BatchStatus.COMPLETED
        assert ran(second) == [("b", "COMPLETED")]
        assert t.runs == Counter(a=1, b=2)

    def test_custom_exit_status_routes_and_ends_the_job(self, engine: Engine) -> None:
        """A step listener's exit status routes the flow and is the job's when it is last."""

        class Skips:
            def after_step(self, se: StepExecution) -> ExitStatus:
                return ExitStatus("COMPLETED WITH SKIPS", "3 skipped")

        t = Tasks()
        a = t.step("a").listener(Skips())
        job = (
            JobBuilder("j")
            .start(a)
            .on("COMPLETED WITH SKIPS")
            .to(t.step("audit"))
            .on("*")
            .end()
            .from_("audit")
            .on("*")
            .to(t.step("last"))
            .build()
        )
        t.exits["last"] = "COMPLETED WITH SKIPS"
        execution = engine.start(job)
        assert [n for n, _ in ran(execution)] == ["a", "audit", "last"]
        assert execution.status is BatchStatus.COMPLETED
        assert engine.get_execution(execution.id).exit_status.code == "COMPLETED WITH SKIPS"


def stopper(engine: Engine) -> Callable[[StepExecution], None]:
    def stop(se: StepExecution) -> None:
        assert se.job_execution is not None
        engine.stop(se.job_execution.id)

    return stop


class TestStopRequests:
    def test_a_stop_request_is_never_routed(self, sqlite_engine: Engine) -> None:
        """A stop request between steps stops the job even where `*` would route on."""
        t = Tasks()
        job = (
            JobBuilder("j")
            .start(StepBuilder("a").task(stopper(sqlite_engine)))
            .on("*")
            .to(t.step("b"))
            .build()
        )
        sqlite_engine.register(job)
        first = sqlite_engine.start("j")
        assert first.status is BatchStatus.STOPPED
        second = sqlite_engine.restart(first.id)
        assert second.status is BatchStatus.COMPLETED
        assert ran(second) == [("b", "COMPLETED")]
