"""The dashboard's pictures as geometry: a run's timeline, its throughput, a job's durations.

Only numbers are computed here; ``templates/_charts.html`` draws them as inline SVG (no script,
no charting library), with every label autoescaped and a ``<title>`` on each mark. Times are
the repository's naive UTC, or aware ones (the API models'), never mixed within one chart.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

from batchline.model import JobExecution
from batchline.repository.filters import ProgressSample
from batchline.web.display import natural
from batchline.web.models import Step

WIDTH = 900.0
LABEL = 190.0  # the timeline's left column, for step names
RIGHT = 16.0
ROW = 22.0
BAR = 14.0
AXIS = 26.0
MIN_BAR = 1.5  # a bar however short stays visible
PLOT_HEIGHT = 180.0
LEFT = 56.0  # room for the rate axis' labels
SERIES = 8  # at most this many steps drawn one by one (the total always)
BUCKETS = 60
SLOT = 48.0  # the widest a duration bar's place gets, however few executions
HEADER = 24.0  # above the rate plot: its unit, clear of the tick labels and the lines
CHAR = 7.0  # an 11 px label's character, generously, to keep labels apart
# Steps' lines told apart by their dashes as well as their colour: lines that coincide
# (partitions at the same rate) still show each of them.
DASHES = ("", "7 4", "2 3", "9 3 2 3", "4 4", "1 4", "12 4", "5 2 1 2")


@dataclass(frozen=True)
class Tick:
    at: float  # x or y, in the SVG's units
    label: str


@dataclass(frozen=True)
class Bar:
    label: str
    status: str
    x: float
    y: float
    width: float
    height: float
    title: str
    partition: bool = False
    running: bool = False
    link: str | None = None


@dataclass(frozen=True)
class Timeline:
    width: float
    height: float
    label_width: float
    bars: list[Bar]
    ticks: list[Tick]
    seconds: float


@dataclass(frozen=True)
class Series:
    name: str
    points: str  # an SVG polyline's points
    index: int  # colour class; -1 for the total
    peak: float
    dash: str = ""  # an SVG stroke-dasharray


@dataclass(frozen=True)
class Throughput:
    width: float
    height: float
    left: float
    top: float
    bottom: float
    series: list[Series]
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    seconds: float
    note: str = ""  # said over the plot when there is nothing to draw yet


@dataclass(frozen=True)
class Durations:
    width: float
    height: float
    left: float
    bottom: float
    bars: list[Bar]
    y_ticks: list[Tick]
    x_ticks: list[Tick]  # the bars' labels, as many as fit without touching


def short(seconds: float) -> str:
    """A duration for an axis: 0 s, 20 ms, 2.5 s, 40 s, 3m05s, 2h10m."""
    if 0 < seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 10 and seconds != int(seconds):
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    return f"{minutes // 60}h{minutes % 60:02d}m"


def nice_step(span: float, ticks: int = 6) -> float:
    """A round step (1, 2 or 5 times a power of ten) giving about ``ticks`` ticks over span."""
    if span <= 0:
        return 1.0
    raw = span / ticks
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        if raw <= factor * power:
            return float(factor * power)
    return float(10 * power)  # pragma: no cover - the loop always returns


def _now_like(moment: dt.datetime, now: dt.datetime) -> dt.datetime:
    """``now`` as naive or aware as the chart's times."""
    if moment.tzinfo is None and now.tzinfo is not None:
        return now.astimezone(dt.UTC).replace(tzinfo=None)
    if moment.tzinfo is not None and now.tzinfo is None:
        return now.replace(tzinfo=dt.UTC)
    return now


def ordered(steps: Sequence[Step]) -> list[Step]:
    """Steps in the order they started, under each partitioned step its partitions in the
    order of their names, numbers read as numbers (their index; they may start in any
    order)."""
    names = {s.name for s in steps if s.partition_of is None}
    found: list[Step] = []
    for s in steps:
        if s.partition_of is None:
            found.append(s)
            found.extend(sorted((p for p in steps if p.partition_of == s.name), key=_name))
    found.extend(p for p in steps if p.partition_of is not None and p.partition_of not in names)
    return found


def _name(step: Step) -> tuple[object, ...]:
    return natural(step.name)


def timeline(steps: Sequence[Step], now: dt.datetime) -> Timeline | None:
    """One bar per step and partition from its start to its end (to ``now`` while it runs)."""
    rows = [s for s in ordered(steps) if s.start_time is not None]
    starts = [s.start_time for s in rows if s.start_time is not None]
    if not starts:
        return None
    now = _now_like(starts[0], now)
    ends = [s.end_time or max(now, start) for s, start in zip(rows, starts, strict=True)]
    t0, t1 = min(starts), max(ends)
    seconds = max((t1 - t0).total_seconds(), 1e-3)
    plot = WIDTH - LABEL - RIGHT
    bars = []
    for index, (s, start, end) in enumerate(zip(rows, starts, ends, strict=True)):
        took = (end - start).total_seconds()
        x = LABEL + (start - t0).total_seconds() / seconds * plot
        running = s.end_time is None
        state = "running" if running else f"ended {end:%H:%M:%S} UTC"
        bars.append(
            Bar(
                label=s.name,
                status=s.status,
                x=round(x, 2),
                y=index * ROW + (ROW - BAR) / 2,
                width=round(max(took / seconds * plot, MIN_BAR), 2),
                height=BAR,
                title=f"{s.name}: {s.status}, started {start:%H:%M:%S} UTC, {state}, {short(took)}",
                partition=s.partition_of is not None,
                running=running,
            )
        )
    step = nice_step(seconds)
    ticks = [
        Tick(round(LABEL + k * step / seconds * plot, 2), short(k * step))
        for k in range(int(seconds / step) + 1)
    ]
    height = len(rows) * ROW + AXIS
    return Timeline(WIDTH, height, LABEL, bars, ticks, seconds)


def _leaves(steps: Sequence[Step]) -> list[Step]:
    """Steps that do the work: a partitioned step only sums its partitions."""
    managers = {s.partition_of for s in steps if s.partition_of is not None}
    return [s for s in steps if s.name not in managers and s.start_time is not None]


def _written_over_time(
    step: Step, samples: Sequence[ProgressSample]
) -> list[tuple[dt.datetime, int]]:
    """(time, items written so far): its start at 0, its samples, its last saved counts."""
    assert step.start_time is not None
    start = step.start_time
    points = [(start, 0)]
    points += [(_now_like(start, sample.time), sample.write_count) for sample in samples]
    last = step.end_time or step.last_updated
    if last is not None:
        points.append((last, step.counters.get("write_count", 0)))
    points.sort(key=lambda p: p[0])
    return points


def _at(points: Sequence[tuple[float, int]], t: float) -> float:
    """Items written at second t, linear between two known points."""
    if t <= points[0][0]:
        return float(points[0][1]) if t == points[0][0] else 0.0
    for (t_a, n_a), (t_b, n_b) in itertools.pairwise(points):
        if t <= t_b:
            return n_a + (n_b - n_a) * ((t - t_a) / (t_b - t_a) if t_b > t_a else 1.0)
    return float(points[-1][1])


def throughput(
    steps: Sequence[Step],
    samples: Sequence[ProgressSample],
    now: dt.datetime,
    buckets: int = BUCKETS,
) -> Throughput | None:
    """Items written per second over the run: each working step (partitions rather than their
    partitioned step), and their sum, averaged over ``buckets`` equal slices of the run."""
    leaves = _leaves(steps)
    if not leaves:
        return None
    by_step: dict[int, list[ProgressSample]] = {}
    for sample in samples:
        by_step.setdefault(sample.step_execution_id, []).append(sample)
    curves = {s.name: _written_over_time(s, by_step.get(s.id, [])) for s in leaves}
    t0 = min(points[0][0] for points in curves.values())
    t1 = max(points[-1][0] for points in curves.values())
    seconds = (t1 - t0).total_seconds()
    if seconds <= 0:  # just started: the frame the picture will fill (no jump when it does)
        seconds = 1.0
    relative = {
        name: [((t - t0).total_seconds(), n) for t, n in points] for name, points in curves.items()
    }
    width = seconds / buckets
    edges = [k * width for k in range(buckets + 1)]
    rates = {
        name: [(_at(points, edges[k + 1]) - _at(points, edges[k])) / width for k in range(buckets)]
        for name, points in relative.items()
    }
    total = [sum(r[k] for r in rates.values()) for k in range(buckets)]
    top = max(total) or 1.0  # nothing written: a 0..1 axis, not one to a billionth
    y_step = nice_step(top, 4)
    y_max = y_step * math.ceil(top / y_step)
    plot_w = WIDTH - LEFT - RIGHT
    top_y, bottom_y = HEADER, HEADER + PLOT_HEIGHT

    def x(t: float) -> float:
        return round(LEFT + t / seconds * plot_w, 2)

    def y(rate: float) -> float:
        return round(bottom_y - rate / y_max * PLOT_HEIGHT, 2)

    def polyline(values: Sequence[float]) -> str:
        # A step line: each slice's average rate held across the slice.
        coords = []
        for k, value in enumerate(values):
            coords += [f"{x(edges[k])},{y(value)}", f"{x(edges[k + 1])},{y(value)}"]
        return " ".join(coords)

    series = []
    if 1 < len(rates) <= SERIES:
        series = [
            Series(name, polyline(values), index, max(values), DASHES[index % len(DASHES)])
            for index, (name, values) in enumerate(rates.items())
        ]
    series.append(Series("all steps", polyline(total), -1, max(total)))
    x_step = nice_step(seconds)
    x_ticks = [Tick(x(k * x_step), short(k * x_step)) for k in range(int(seconds / x_step) + 1)]
    y_ticks = [Tick(y(k * y_step), f"{k * y_step:g}") for k in range(round(y_max / y_step) + 1)]
    note = "" if max(total) > 0 else "no items written yet"
    return Throughput(
        WIDTH, bottom_y + AXIS, LEFT, top_y, bottom_y, series, x_ticks, y_ticks, seconds, note
    )


def durations(executions: Sequence[JobExecution], now: dt.datetime) -> Durations | None:
    """A bar per execution, oldest on the left, as high as it took (to ``now`` while it runs);
    an execution that never started has no bar."""
    started = sorted(
        ((e, e.start_time) for e in executions if e.start_time is not None), key=lambda p: p[0].id
    )
    if not started:
        return None
    now = _now_like(started[0][1], now)
    runs = [e for e, _ in started]
    took = [((e.end_time or max(now, start)) - start).total_seconds() for e, start in started]
    top = max(max(took), 1e-3)
    y_step = nice_step(top, 4)
    y_max = y_step * math.ceil(top / y_step)
    plot_w = WIDTH - LEFT - RIGHT
    slot = min(plot_w / len(runs), SLOT)
    bottom = 8.0 + PLOT_HEIGHT
    bars = []
    for index, (e, seconds) in enumerate(zip(runs, took, strict=True)):
        height = max(seconds / y_max * PLOT_HEIGHT, MIN_BAR)
        bars.append(
            Bar(
                label=f"#{e.id}",
                status=e.status.value,
                x=round(LEFT + index * slot + slot * 0.15, 2),
                y=round(bottom - height, 2),
                width=round(slot * 0.7, 2),
                height=round(height, 2),
                title=f"execution #{e.id}: {e.status.value}, {short(seconds)}"
                + (" so far" if e.end_time is None else ""),
                running=e.end_time is None,
                link=f"/executions/{e.id}",
            )
        )
    y_ticks = [
        Tick(round(bottom - k * y_step / y_max * PLOT_HEIGHT, 2), short(k * y_step))
        for k in range(round(y_max / y_step) + 1)
    ]
    # Every n-th bar labelled, n the fewest that keeps the widest label clear of the next.
    widest = max(len(b.label) for b in bars) * CHAR + CHAR
    every = max(1, math.ceil(widest / slot))
    last = len(bars) - 1
    x_ticks = [
        Tick(round(b.x + b.width / 2, 2), b.label)
        for index, b in enumerate(bars)
        if (last - index) % every == 0  # the newest always labelled
    ]
    return Durations(WIDTH, bottom + AXIS, LEFT, bottom, bars, y_ticks, x_ticks)
