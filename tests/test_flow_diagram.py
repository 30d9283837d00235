"""A job's flow laid out for the dashboard (web/flowsvg.py, templates/_flow.html), and an
execution's path through it as flowrun.py records it."""

from __future__ import annotations

import pytest

from batchline import Decider, Engine, JobBuilder, StepBuilder, StepExecution
from batchline.flowrun import PATH_KEY
from batchline.job import Job
from batchline.web import flowsvg
from batchline.web.pages import templates


def task(name: str, fail: bool = False) -> StepBuilder:
    def run(se: StepExecution) -> None:
        if fail:
            raise RuntimeError(f"{name} broke")

    return StepBuilder(name).task(run)


def routed(decision: str, name: str = "routed") -> Job:
    """check -> route (GO: load, HOLD: stop and restart at load, else fail) -> load -> split
    publish (a | b) -> end."""
    return (
        JobBuilder(name)
        .start(task("check"))
        .next(Decider("route", lambda execution, last: decision))
        .on("GO")
        .to(task("load"))
        .on("HOLD")
        .stop_and_restart("load")
        .on("*")
        .fail()
        .from_("load")
        .split([task("a")], [task("b")], name="publish")
        .build()
    )


def _statuses(engine: Engine, execution_id: int) -> dict[str, str]:
    found = engine.get_execution(execution_id)
    return {s.step_name: s.status.value for s in found.step_executions}


def _draw(engine: Engine, job: Job, execution_id: int) -> flowsvg.Diagram:
    found = engine.get_execution(execution_id)
    return flowsvg.execution_diagram(
        job, found.status.value, dict(found.context), found.id, _statuses(engine, found.id)
    )


class TestLayout:
    def test_nodes_transitions_and_ends(self) -> None:
        """Steps, the decider, the split and the three ends are boxes; transitions carry their
        patterns; each row is below the one it comes from and no two boxes overlap."""
        d = flowsvg.job_diagram(routed("GO"))
        boxes = {b.name: b for b in d.boxes}
        kinds = {n: b.kind for n, b in boxes.items()}
        assert kinds == {
            "check": "step",
            "route": "decider",
            "load": "step",
            "publish": "split",
            "(stop)": "stop",
            "(fail)": "fail",
            "(end)": "end",
        }
        assert "a" in boxes["publish"].detail and "b" in boxes["publish"].detail
        arrows = {(a.source, a.target): a for a in d.arrows}
        assert arrows["route", "load"].patterns == ["GO"]
        assert arrows["route", "(stop)"].patterns == ["HOLD (restart at load)"]
        assert arrows["route", "(fail)"].patterns == ["*"]
        assert ("publish", "(end)") in arrows and ("load", "publish") in arrows
        ys = [boxes[n].y for n in ("check", "route", "load", "publish", "(end)")]
        assert ys == sorted(ys) and len(set(ys)) == 5
        assert len({(b.x, b.y) for b in d.boxes}) == len(d.boxes)
        assert all(b.x >= 0 and b.x + b.w <= d.width and b.y + b.h <= d.height for b in d.boxes)

    def test_plain_job_is_a_line_to_its_end(self) -> None:
        """A job without transitions is its steps in order, then the end."""
        job = JobBuilder("plain").step(task("one")).step(task("two")).build()
        d = flowsvg.job_diagram(job)
        assert [(a.source, a.target) for a in d.arrows] == [("one", "two"), ("two", "(end)")]


class TestExecutionPath:
    def test_path_taken_and_decisions(self, sqlite_engine: Engine) -> None:
        """The route a completed execution took is marked, with what each node exited."""
        job = routed("GO")
        sqlite_engine.register(job)
        done = sqlite_engine.start("routed")
        assert done.context[PATH_KEY]["execution"] == done.id
        d = _draw(sqlite_engine, job, done.id)
        taken = {(a.source, a.target) for a in d.arrows if a.taken}
        assert taken == {
            ("check", "route"),
            ("route", "load"),
            ("load", "publish"),
            ("publish", "(end)"),
        }
        decisions = [(r.node, r.kind, r.code, r.led_to) for r in d.decisions]
        assert ("route", "decider", "GO", "load") in decisions
        assert d.restart_at is None
        assert {b.name: b.ran for b in d.boxes}["load"] == "COMPLETED"

    def test_stopped_flow_shows_where_a_restart_begins(self, sqlite_engine: Engine) -> None:
        """Stopped by the decider: the stop is taken and the restart begins at load."""
        job = routed("HOLD", name="held")
        sqlite_engine.register(job)
        stopped = sqlite_engine.start("held")
        d = _draw(sqlite_engine, job, stopped.id)
        assert [(a.source, a.target) for a in d.arrows if a.taken][-1] == ("route", "(stop)")
        assert d.restart_at == "load"
        assert [b.name for b in d.boxes if b.restart] == ["load"]
        assert not {b.name: b for b in d.boxes}["load"].taken

    def test_plain_job_restart_begins_at_the_failed_step(self, sqlite_engine: Engine) -> None:
        """A failed plain job restarts at its first step that did not complete."""
        job = JobBuilder("plain").step(task("one")).step(task("two", fail=True)).build()
        sqlite_engine.register(job)
        failed = sqlite_engine.start("plain")
        d = _draw(sqlite_engine, job, failed.id)
        assert d.restart_at == "two"
        assert [(a.source, a.target) for a in d.arrows if a.taken] == [("one", "two")]


class TestTemplate:
    @pytest.mark.parametrize("name", ["<script>alert(1)</script>", 'x" onload="alert(1)'])
    def test_labels_are_escaped_text_without_inline_style(self, name: str) -> None:
        """A hostile step name is escaped in labels and titles; no style attribute is drawn."""
        job = JobBuilder("hostile").step(task(name)).build()
        svg = str(
            templates.env.get_template("_flow.html").module.flow(  # type: ignore[attr-defined]
                flowsvg.job_diagram(job), "flow"
            )
        )
        assert "<script>" not in svg and 'onload="' not in svg
        assert "&lt;script&gt;" in svg or "&#34;" in svg
        assert "style=" not in svg and "<title>" in svg
