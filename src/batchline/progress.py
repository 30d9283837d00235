"""Progress of running steps: a live rich display in a terminal, plain log lines elsewhere.

    reporter = ProgressReporter()          # live if stderr is a terminal
    reporter.attach(job)                   # listens to every step of the job
    with reporter:
        engine.start(job, parameters)

Per step it shows items read, written and skipped, the rate, and an ETA when the size of the
input is known. A reader makes its size known with an optional method::

    def estimated_size(self) -> int | None: ...

called before the step opens the reader (a Sized reader spec such as a list counts too; a reader
factory cannot be asked, so its steps show no ETA). On a restart the count starts at the
items this execution reads, so the first ETA is pessimistic until the rate settles.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn

from batchline.items.base import Chunk, reader_size
from batchline.job import Job
from batchline.logging import get_logger
from batchline.model import StepExecution
from batchline.status import ExitStatus
from batchline.terminal import printable

log = get_logger("batchline.progress")


def estimated_size(step: Any) -> int | None:
    """What a step's reader says its input holds, or None when it cannot tell."""
    return reader_size(getattr(step, "reader", None))


@dataclass
class _StepState:
    name: str
    size: int | None
    started: float = field(default_factory=time.monotonic)
    last_line: float = field(default_factory=time.monotonic)
    task: TaskID | None = None

    def rate(self, done: int) -> float:
        elapsed = time.monotonic() - self.started
        return done / elapsed if elapsed > 0 else 0.0

    def eta(self, done: int) -> float | None:
        rate = self.rate(done)
        if self.size is None or rate <= 0:
            return None
        return max(self.size - done, 0) / rate


def _consumed(se: StepExecution) -> int:
    return se.read_count + se.read_skip_count


def _counts(se: StepExecution) -> str:
    return f"read {se.read_count:,}  written {se.write_count:,}  skipped {se.skip_count:,}"


def _eta_text(seconds: float | None) -> str:
    if seconds is None:
        return "ETA -"
    minutes, secs = divmod(int(seconds + 0.5), 60)
    hours, minutes = divmod(minutes, 60)
    return f"ETA {hours}:{minutes:02d}:{secs:02d}"


class ProgressReporter:
    """A step and chunk listener that reports progress; thread-safe (partitions report too).

    ``live`` forces the rich display on or off (default: on when the console is a terminal);
    ``interval`` is how often, at most, a step writes a log line when the display is off.
    """

    def __init__(
        self, console: Console | None = None, *, live: bool | None = None, interval: float = 5.0
    ) -> None:
        self.console = console or Console(stderr=True)
        self.live = self.console.is_terminal if live is None else live
        self.interval = interval
        self._steps: dict[str, Any] = {}
        self._states: dict[int, _StepState] = {}
        self._lock = threading.Lock()
        self._progress: Progress | None = None
        if self.live:
            self._progress = Progress(
                # Step names are data: printed as they are, never read as markup.
                TextColumn("{task.description}", style="bold", markup=False),
                BarColumn(),
                TextColumn("{task.fields[counts]}"),
                TextColumn("{task.fields[rate]}"),
                TextColumn("{task.fields[eta]}"),
                console=self.console,
                transient=False,
            )

    def attach(self, job: Job) -> Job:
        """Listen to every step of ``job``; returns the job."""
        for step in job.steps:
            self._steps[step.name] = step
            if self not in step.listeners:
                step.listeners.append(self)
        return job

    def detach(self, job: Job) -> None:
        for step in job.steps:
            if self in step.listeners:
                step.listeners.remove(self)

    def __enter__(self) -> ProgressReporter:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    # --- listener callbacks -----------------------------------------------------------------

    def before_step(self, se: StepExecution) -> None:
        step = self._steps.get(se.step_name) or self._steps.get(se.step_name.split(":")[0])
        state = _StepState(se.step_name, estimated_size(step) if step is not None else None)
        if self._progress is not None:
            state.task = self._progress.add_task(
                printable(se.step_name), total=state.size, counts=_counts(se), rate="", eta=""
            )
        elif state.size is not None:
            log.info("step %s: about %s items to read", se.step_name, f"{state.size:,}")
        with self._lock:
            self._states[se.id] = state

    def after_chunk(self, chunk: Chunk) -> None:
        se = chunk.step_execution
        with self._lock:
            state = self._states.get(se.id)
        if state is None:
            return
        done = _consumed(se)
        if self._progress is not None and state.task is not None:
            self._progress.update(
                state.task,
                completed=done,
                counts=_counts(se),
                rate=f"{state.rate(done):,.0f}/s",
                eta=_eta_text(state.eta(done)) if state.size is not None else "",
            )
            return
        now = time.monotonic()
        if now - state.last_line >= self.interval:
            state.last_line = now
            self._line(se, state, done)

    def after_step(self, se: StepExecution) -> ExitStatus | None:
        with self._lock:
            state = self._states.pop(se.id, None)
        if state is None:
            return None
        done = _consumed(se)
        if self._progress is not None and state.task is not None:
            self._progress.update(
                state.task,
                completed=done,
                total=state.size if state.size is not None else max(done, 1),
                counts=f"{_counts(se)}  {se.status.value}",
                rate=f"{state.rate(done):,.0f}/s",
                eta="",
            )
        else:
            self._line(se, state, done, final=True)
        return None

    def _line(self, se: StepExecution, state: _StepState, done: int, final: bool = False) -> None:
        rate = f"{state.rate(done):,.1f} items/s"
        if final:
            elapsed = time.monotonic() - state.started
            log.info("step %s: %s items in %.1fs (%s)", se.step_name, f"{done:,}", elapsed, rate)
            return
        tail = f", {_eta_text(state.eta(done))}" if state.size is not None else ""
        log.info("step %s: %s (%s%s)", se.step_name, _counts(se), rate, tail)
