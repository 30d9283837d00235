"""Progress reporting: a live rich display on a terminal, log lines elsewhere, ETA when sized."""

from __future__ import annotations

import io
import logging
import re
import time

import pytest
from rich.console import Console

from batchline import Engine, JobBuilder, StepBuilder
from batchline.progress import ProgressReporter, estimated_size


class SizedReader:
    """A reader that knows how many items it will return."""

    def __init__(self, count: int) -> None:
        self._items = iter(range(count))
        self._count = count

    def read(self) -> int | None:
        return next(self._items, None)

    def estimated_size(self) -> int:
        return self._count


class Broken:
    def read(self) -> None:
        return None

    def estimated_size(self) -> int:
        raise OSError("cannot stat")


def slow_writer(items: list[int]) -> None:
    time.sleep(0.04)  # long enough for the display's 10 Hz refresh to draw the run


class TestEstimatedSize:
    def test_sources_of_a_size(self) -> None:
        """estimated_size() wins, a Sized spec counts, factories and failures give None."""
        step = StepBuilder("s").chunk(5).reader(SizedReader(42)).writer(lambda i: None).build()
        assert estimated_size(step) == 42
        listed = StepBuilder("s").reader([1, 2, 3]).writer(lambda i: None).build()
        assert estimated_size(listed) == 3
        made = StepBuilder("s").reader(lambda se: [1]).writer(lambda i: None).build()
        assert estimated_size(made) is None
        broken = StepBuilder("s").reader(Broken()).writer(lambda i: None).build()
        assert estimated_size(broken) is None
        assert estimated_size(StepBuilder("t").task(lambda se: None).build()) is None


class TestReporter:
    def test_live_display(self, sqlite_engine: Engine) -> None:
        """On a terminal: a bar per step with read, written, skipped, rate, final status."""
        buffer = io.StringIO()
        console = Console(file=buffer, force_terminal=True, width=140)
        job = (
            JobBuilder("live")
            .step(StepBuilder("load").chunk(10).reader(list(range(95))).writer(slow_writer))
            .build()
        )
        reporter = ProgressReporter(console)
        assert reporter.live
        with reporter:
            sqlite_engine.start(reporter.attach(job))
        reporter.detach(job)
        screen = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", buffer.getvalue())
        assert "load" in screen
        assert "read 95  written 95  skipped 0  COMPLETED" in screen
        assert "/s" in screen and "ETA" in screen
        assert not any(reporter is lst for lst in job.steps[0].listeners)

    def test_log_lines_with_eta(
        self, sqlite_engine: Engine, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Not on a terminal: log lines with counts, rate and an ETA from estimated_size()."""
        caplog.set_level(logging.INFO, logger="batchline.progress")
        job = (
            JobBuilder("plain")
            .step(StepBuilder("load").chunk(10).reader(SizedReader(30)).writer(lambda i: None))
            .build()
        )
        reporter = ProgressReporter(Console(file=io.StringIO()), interval=0)
        assert not reporter.live
        with reporter:
            sqlite_engine.start(reporter.attach(job))
        lines = [r.getMessage() for r in caplog.records if r.name == "batchline.progress"]
        assert any("about 30 items to read" in line for line in lines)
        assert any("read 10  written 10  skipped 0" in line and "ETA" in line for line in lines)
        assert any(line.endswith("items/s)") and "30 items in" in line for line in lines)


def test_a_chunk_step_stores_its_readers_estimate_for_other_processes(
    sqlite_engine: Engine,
) -> None:
    """The reader's estimated_size() lands in the step's context (the dashboard's progress and
    ETA, read by another process); a reader without one, or one that fails, stores nothing."""

    job = (
        JobBuilder("estimates")
        .step(StepBuilder("sized").chunk(4).reader(SizedReader(10)).writer(lambda items: None))
        .step(
            StepBuilder("unsized")
            .chunk(4)
            .reader(lambda se: iter(range(5)))
            .writer(lambda items: None)
        )
        .step(StepBuilder("failing").chunk(4).reader(Broken()).writer(lambda items: None))
        .build()
    )
    done = sqlite_engine.start(job)
    contexts = {s.step_name: dict(s.context) for s in sqlite_engine.step_executions(done.id)}
    assert contexts["sized"]["batchline.expected"] == 10
    assert "batchline.expected" not in contexts["unsized"]
    assert "batchline.expected" not in contexts["failing"]
