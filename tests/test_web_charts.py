"""The dashboard's pictures: geometry read back from the rendered SVG, labels escaped."""

from __future__ import annotations

import datetime as dt
import itertools
import re
import xml.etree.ElementTree as ET
from typing import Any

import pytest

from batchline.model import JobExecution, JobInstance
from batchline.parameters import JobParameters
from batchline.repository.filters import ProgressSample
from batchline.status import BatchStatus
from tests.jobs.web_jobs import MARKUP
from tests.web_server import requires_web

requires_web()

from batchline.web import charts  # noqa: E402
from batchline.web.models import Step  # noqa: E402
from batchline.web.pages import templates  # noqa: E402

SVG = "{http://www.w3.org/2000/svg}"
T0 = dt.datetime(2026, 12, 1, 2, 0, 0)


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def step(
    id_: int,
    name: str,
    start: float,
    end: float | None,
    *,
    status: str = "COMPLETED",
    written: int = 0,
    partition_of: str | None = None,
    context: dict[str, Any] | None = None,
) -> Step:
    return Step(
        id=id_,
        name=name,
        partition_of=partition_of,
        status=status,
        exit_code=status,
        exit_message="",
        counters={"read_count": written, "write_count": written},
        context=context or {},
        start_time=at(start),
        end_time=None if end is None else at(end),
        last_updated=at(end if end is not None else start),
    )


def render(macro: str, value: object) -> ET.Element:
    """The macro's output, which must be well-formed XML: one <svg> element."""
    html = templates.env.from_string(
        f'{{% import "_charts.html" as charts %}}{{{{ charts.{macro}(value) }}}}'
    ).render(value=value)
    found = re.search(r"<svg.*?</svg>", html, re.S)  # the chart, not a legend swatch
    assert found is not None, html
    return ET.fromstring(found[0])


def bars(svg: ET.Element) -> dict[str, ET.Element]:
    return {
        g.get("data-step", ""): g.find(f"{SVG}rect")  # type: ignore[misc]
        for g in svg.iter(f"{SVG}g")
    }


class TestTimeline:
    STEPS = [
        step(1, "extract", 0, 10),
        step(2, "load", 10, None, status="STARTED"),
        step(3, "load:0000", 10, 20, partition_of="load"),
        step(4, "load:0001", 12, None, status="STARTED", partition_of="load"),
        step(5, "report", 0, 0, status="STARTING"),
    ]

    def test_bars_are_proportional_to_start_and_duration(self) -> None:
        """x is the start and width the duration, on one scale; running bars reach now."""
        drawn = charts.timeline(self.STEPS[:4], at(40))
        assert drawn is not None
        svg = render("timeline", drawn)
        found = bars(svg)
        assert list(found) == ["extract", "load", "load:0000", "load:0001"]
        plot = charts.WIDTH - charts.LABEL - charts.RIGHT
        seconds = {
            name: (float(r.get("x", 0)) - charts.LABEL) / plot * 40 for name, r in found.items()
        }
        widths = {name: float(r.get("width", 0)) / plot * 40 for name, r in found.items()}
        assert seconds == pytest.approx(
            {"extract": 0, "load": 10, "load:0000": 10, "load:0001": 12}, abs=0.01
        )
        assert widths == pytest.approx(
            {"extract": 10, "load": 30, "load:0000": 10, "load:0001": 28}, abs=0.01
        )
        classes = {name: r.get("class", "") for name, r in found.items()}
        assert classes["extract"] == "bar s-COMPLETED"
        assert classes["load:0001"] == "bar s-STARTED running"
        assert svg.get("role") == "img" and svg.find(f"{SVG}title") is not None
        assert all(r.find(f"{SVG}title") is not None for r in found.values())

    def test_partitions_follow_their_step(self) -> None:
        """Each partition's row comes right under its partitioned step, whatever the id order."""
        shuffled = [self.STEPS[3], self.STEPS[0], self.STEPS[2], self.STEPS[1]]
        drawn = charts.timeline(shuffled, at(40))
        assert drawn is not None
        assert [b.label for b in drawn.bars] == ["extract", "load", "load:0000", "load:0001"]
        assert [b.partition for b in drawn.bars] == [False, False, True, True]

    def test_a_zero_length_step_is_still_visible(self) -> None:
        drawn = charts.timeline([self.STEPS[0], self.STEPS[4]], at(10))
        assert drawn is not None and drawn.bars[1].width == charts.MIN_BAR

    def test_markup_in_a_step_name_is_text(self) -> None:
        """A step named <script>... is escaped: the SVG parses and holds it as text only."""
        drawn = charts.timeline([step(1, MARKUP, 0, 5)], at(5))
        html = templates.env.from_string(
            '{% import "_charts.html" as charts %}{{ charts.timeline(t) }}'
        ).render(t=drawn)
        assert "<script" not in html and "&lt;script&gt;" in html
        svg = render("timeline", drawn)
        assert list(svg.iter(f"{SVG}script")) == []
        labels = [t.text for t in svg.iter(f"{SVG}text") if t.get("class") == "label"]
        assert labels == [MARKUP]
        rect_title = next(iter(bars(svg).values())).find(f"{SVG}title")
        assert rect_title is not None and (rect_title.text or "").startswith(MARKUP)

    def test_nothing_started_no_picture(self) -> None:
        assert charts.timeline([], at(0)) is None


def sample(step_id: int, name: str, seconds: float, written: int) -> ProgressSample:
    return ProgressSample(step_id, name, at(seconds), written, written, 0, 0)


def points(svg: ET.Element) -> dict[str, list[tuple[float, float]]]:
    found = {}
    for line in svg.iter(f"{SVG}polyline"):
        title = line.find(f"{SVG}title")
        name = (title.text or "").split(":")[0] if title is not None else ""
        found[name] = [
            (float(x), float(y)) for x, y in (p.split(",") for p in line.get("points", "").split())
        ]
    return found


class TestThroughput:
    def test_rates_per_step_and_summed(self) -> None:
        """Two steps at 10 and 30 items/s over the same 20 s: their lines at heights 1 and 3,
        the total at 4, on one scale."""
        steps = [step(1, "slow", 0, 20, written=200), step(2, "fast", 0, 20, written=600)]
        samples = [sample(1, "slow", 5, 50), sample(1, "slow", 10, 100)]
        samples += [sample(2, "fast", 10, 300)]
        drawn = charts.throughput(steps, samples, at(20), buckets=10)
        assert drawn is not None
        lines = points(render("throughput", drawn))
        assert set(lines) == {"slow", "fast", "all steps"}
        heights = {name: {round(drawn.bottom - y, 3) for _, y in ps} for name, ps in lines.items()}
        assert all(len(h) == 1 for h in heights.values()), heights  # constant rates
        slow, fast, total = (heights[n].pop() for n in ("slow", "fast", "all steps"))
        assert fast / slow == pytest.approx(3) and total / slow == pytest.approx(4)
        xs = [x for x, _ in lines["all steps"]]
        assert xs[0] == charts.LEFT and xs[-1] == pytest.approx(charts.WIDTH - charts.RIGHT)

    def test_a_pause_shows_as_zero(self) -> None:
        """Nothing written between 10 s and 20 s: those slices are at the bottom."""
        steps = [step(1, "only", 0, 30, written=200)]
        samples = [sample(1, "only", 10, 100), sample(1, "only", 20, 100)]
        drawn = charts.throughput(steps, samples, at(30), buckets=3)
        assert drawn is not None
        (line,) = points(render("throughput", drawn)).values()
        ys = [y for _, y in line]
        assert ys[2] == ys[3] == drawn.bottom and ys[0] == ys[4] < drawn.bottom

    def test_partitions_count_not_their_step(self) -> None:
        """A partitioned step's summed counters are not counted again beside its partitions."""
        steps = [
            step(1, "split", 0, 10, written=100),
            step(2, "split:0000", 0, 10, written=50, partition_of="split"),
            step(3, "split:0001", 0, 10, written=50, partition_of="split"),
        ]
        drawn = charts.throughput(steps, [], at(10), buckets=2)
        assert drawn is not None
        assert [s.name for s in drawn.series] == ["split:0000", "split:0001", "all steps"]
        assert drawn.series[-1].peak == pytest.approx(10)


def execution(id_: int, seconds: float | None, status: BatchStatus) -> JobExecution:
    return JobExecution(
        id=id_,
        instance=JobInstance(1, "nightly", "k"),
        parameters=JobParameters(),
        status=status,
        start_time=T0,
        end_time=None if seconds is None else at(seconds),
    )


class TestDurations:
    def test_bar_heights_follow_durations(self) -> None:
        """Oldest first, heights 1:2:4, a running one measured to now and coloured as running."""
        runs = [
            execution(3, None, BatchStatus.STARTED),
            execution(2, 20, BatchStatus.FAILED),
            execution(1, 10, BatchStatus.COMPLETED),
        ]
        drawn = charts.durations(runs, at(40))
        assert drawn is not None
        svg = render("durations", drawn)
        rects = list(svg.iter(f"{SVG}rect"))
        heights = [float(r.get("height", 0)) for r in rects]
        assert heights[1] / heights[0] == pytest.approx(2)
        assert heights[2] / heights[0] == pytest.approx(4)
        assert [r.get("class") for r in rects] == [
            "bar s-COMPLETED",
            "bar s-FAILED",
            "bar s-STARTED running",
        ]
        bottoms = {round(float(r.get("y", 0)) + float(r.get("height", 0)), 2) for r in rects}
        assert bottoms == {drawn.bottom}
        links = [a.get("href") for a in svg.iter(f"{SVG}a")]
        assert links == ["/executions/1", "/executions/2", "/executions/3"]


class TestAxisLabels:
    @pytest.mark.parametrize(
        ("seconds", "label"),
        [
            (0, "0 s"),
            (0.005, "5 ms"),
            (0.25, "250 ms"),
            (2.5, "2.5 s"),
            (40, "40 s"),
            (185, "3m05s"),
            (7800, "2h10m"),
        ],
    )
    def test_short_durations(self, seconds: float, label: str) -> None:
        assert charts.short(seconds) == label


def test_a_plain_step_has_progress_and_an_eta_from_its_readers_estimate() -> None:
    """A running chunk step whose reader stored its estimate: done fraction and seconds left
    at its rate; without the estimate, neither."""
    from batchline.model import StepExecution
    from batchline.web.models import step

    now = dt.datetime(2026, 1, 1, 12, 0, 10)
    se = StepExecution(id=1, job_execution_id=1, step_name="load")
    se.start_time = now - dt.timedelta(seconds=10)
    se.set_status(BatchStatus.STARTED)
    se.read_count = 25
    se.context["batchline.expected"] = 100
    running = step(se, now)
    assert (running.expected, running.progress, running.rate, running.eta_seconds) == (
        100,
        0.25,
        2.5,
        30.0,
    )
    del se.context["batchline.expected"]
    assert (step(se, now).progress, step(se, now).eta_seconds) == (None, None)


class TestReadability:
    def test_a_run_without_items_has_a_plain_axis(self) -> None:
        """No item written: the rate axis goes 0 to 1 with a note, not to 1e-09."""
        drawn = charts.throughput([step(1, "idle", 0, 10)], [], at(10))
        assert drawn is not None and drawn.note == "no items written yet"
        labels = [t.label for t in drawn.y_ticks]
        assert labels[0] == "0" and labels[-1] == "1" and not any("e-" in x for x in labels)
        texts = "".join(render("throughput", drawn).itertext())
        assert "e-0" not in texts and "no items written yet" in texts

    def test_a_step_just_started_keeps_the_frame(self) -> None:
        """A step that has written nothing in no time yet: the empty frame, not no picture
        (the page would jump when the picture arrives)."""
        drawn = charts.throughput([step(1, "fresh", 0, None, status="STARTED")], [], at(0))
        assert drawn is not None and drawn.note

    def test_the_rate_unit_sits_above_the_plot_clear_of_the_ticks(self) -> None:
        """The "items/s" label is above the plot's top, so no line or tick label crosses it."""
        steps = [step(1, "a", 0, 10, written=100)]
        drawn = charts.throughput(steps, [], at(10), buckets=2)
        assert drawn is not None
        svg = render("throughput", drawn)
        (unit,) = [t for t in svg.iter(f"{SVG}text") if t.get("class") == "axis"]
        assert float(unit.get("y", 0)) < drawn.top - 6  # a 12 px line above the plot
        assert float(unit.get("x", 0)) <= drawn.left  # in the tick labels' column
        top_tick = min(
            float(t.get("y", 0)) for t in svg.iter(f"{SVG}text") if t.get("class") == "tick"
        )
        assert top_tick - float(unit.get("y", 0)) >= 12

    def test_coinciding_partition_lines_are_told_apart(self) -> None:
        """Partitions at the same rate draw on one another: each has its own dash pattern."""
        steps = [step(1, "split", 0, 10, written=30)]
        steps += [
            step(2 + n, f"split:{n}", 0, 10, written=10, partition_of="split") for n in range(3)
        ]
        drawn = charts.throughput(steps, [], at(10), buckets=2)
        assert drawn is not None
        lines = [
            p
            for p in render("throughput", drawn).iter(f"{SVG}polyline")
            if "total" not in (p.get("class") or "")
        ]
        assert len(lines) == 3
        assert len({p.get("stroke-dasharray", "") for p in lines}) == 3

    def test_partitions_in_numeric_order(self) -> None:
        """Partition 10 comes after partition 2 (names read with their numbers as numbers)."""
        parts = [step(2 + n, f"load:{n}", 0, 5, partition_of="load") for n in (10, 2, 1, 0, 11)]
        steps = [step(1, "load", 0, 5), *parts]
        assert [s.name for s in charts.ordered(steps)] == [
            "load",
            "load:0",
            "load:1",
            "load:2",
            "load:10",
            "load:11",
        ]

    def test_thirty_duration_labels_do_not_touch(self) -> None:
        """30 executions with five-digit ids: the labels drawn leave room between them, the
        newest is labelled, every bar keeps its title."""
        runs = [execution(10_000 + n, 5 + n, BatchStatus.COMPLETED) for n in range(30)]
        drawn = charts.durations(runs, at(100))
        assert drawn is not None
        svg = render("durations", drawn)
        labels = [
            (float(t.get("x", 0)), t.text or "")
            for t in svg.iter(f"{SVG}text")
            if float(t.get("y", 0)) > drawn.bottom
        ]
        assert labels and labels[-1][1] == "#10029"
        for (x_a, a), (x_b, b) in itertools.pairwise(labels):
            assert x_b - x_a >= (len(a) + len(b)) / 2 * charts.CHAR, (a, b)
        assert len([r for r in svg.iter(f"{SVG}rect") if r.find(f"{SVG}title") is not None]) == 30
