"""Observers: instrumentation that hears every job an engine runs (metrics, traces).

An observer is any object with some of the methods of ``Observer`` (all optional, like a
listener's). Unlike a listener it belongs to the engine, not to one job, and it never changes an
outcome: what it raises is logged and ignored, since a metrics backend that is down must not
fail a batch job. ``Engine(observers=[...])`` (or ``engine.observe(...)``) registers them; with
none registered the runtime carries ``None`` and the chunk loop pays one ``is None`` test per
chunk, nothing per item.

Partitions on worker processes cannot share the manager's observer objects: an observer that
wants to run there too returns a ``WorkerSpec`` from ``for_worker`` (an importable callable and
JSON keyword arguments, such as a propagated trace context), and each worker builds its own from
it. ``batchline.observability`` holds the OpenTelemetry and Prometheus observers.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from batchline.errors import ConfigurationError
from batchline.listeners import callbacks
from batchline.logging import log

if TYPE_CHECKING:
    from batchline.model import JobExecution, StepExecution

# An importable callable ("package.module:attribute") and the JSON keyword arguments to call it
# with: plain data, so it travels to a worker process (or machine) with the partition.
WorkerSpec = tuple[str, Mapping[str, Any]]

EVENTS = (
    "job_started",
    "job_ended",
    "step_started",
    "step_ended",
    "chunk_started",
    "chunk_ended",
)


class Observer(Protocol):
    """What an observer may implement; batchline calls the methods it finds.

    ``partition_of`` is the manager step's name when the step execution is one partition of a
    partitioned step, else None. Step and chunk events come from the thread running the step.
    """

    def job_started(self, execution: JobExecution) -> None: ...

    def job_ended(self, execution: JobExecution) -> None:
        """After the job's final status was recorded."""

    def step_started(self, step_execution: StepExecution, partition_of: str | None) -> None: ...

    def step_ended(self, step_execution: StepExecution, partition_of: str | None) -> None:
        """After the step's final status was recorded."""

    def chunk_started(self, step_execution: StepExecution, number: int) -> None: ...

    def chunk_ended(
        self,
        step_execution: StepExecution,
        number: int,
        write_seconds: float | None,
        error: BaseException | None,
    ) -> None:
        """After the chunk committed (``error`` None; its counts are in the step execution's
        counters) or rolled back. ``write_seconds``: writing and committing, retries included;
        None when the chunk failed before its write (reading, processing)."""

    def for_worker(self, manager: StepExecution) -> WorkerSpec | None:
        """How a worker process builds this observer for a partition of ``manager``."""


class Observers:
    """The engine's observers, each event's methods looked up once."""

    __slots__ = ("_calls", "all")

    def __init__(self, observers: Iterable[object]) -> None:
        self.all: tuple[object, ...] = tuple(observers)
        self._calls: dict[str, list[Callable[..., Any]]] = {
            event: callbacks(self.all, event) for event in EVENTS
        }

    def __repr__(self) -> str:
        return f"Observers({list(self.all)!r})"

    def _emit(self, event: str, *args: Any) -> None:
        for fn in self._calls[event]:
            try:
                fn(*args)
            except Exception:  # instrumentation never decides how a job ends
                log.warning("observer %r failed on %s", fn, event, exc_info=True)

    def job_started(self, execution: JobExecution) -> None:
        self._emit("job_started", execution)

    def job_ended(self, execution: JobExecution) -> None:
        self._emit("job_ended", execution)

    def step_started(self, se: StepExecution, partition_of: str | None) -> None:
        self._emit("step_started", se, partition_of)

    def step_ended(self, se: StepExecution, partition_of: str | None) -> None:
        self._emit("step_ended", se, partition_of)

    def chunk_started(self, se: StepExecution, number: int) -> None:
        self._emit("chunk_started", se, number)

    def chunk_ended(
        self,
        se: StepExecution,
        number: int,
        write_seconds: float | None,
        error: BaseException | None,
    ) -> None:
        self._emit("chunk_ended", se, number, write_seconds, error)

    def worker_specs(self, manager: StepExecution) -> tuple[WorkerSpec, ...]:
        """What worker processes build their observers from, for partitions of ``manager``."""
        specs: list[WorkerSpec] = []
        for fn in callbacks(self.all, "for_worker"):
            try:
                spec = fn(manager)
            except Exception:
                log.warning("observer %r failed on for_worker", fn, exc_info=True)
                continue
            if spec is not None:
                specs.append((spec[0], dict(spec[1])))
        return tuple(specs)


def observers_of(observers: Sequence[object]) -> Observers | None:
    """None when there is nothing to observe: the hot paths then test one attribute."""
    return Observers(observers) if observers else None


def from_specs(specs: Iterable[WorkerSpec]) -> Observers | None:
    """A worker's observers, built from what the manager's observers sent. One that cannot be
    built (its extra missing on this worker) is logged and left out: the partition runs."""
    built: list[object] = []
    for reference, kwargs in specs:
        try:
            built.append(build(reference, kwargs))
        except Exception:
            log.warning("observer %r left out of this worker", reference, exc_info=True)
    return observers_of(built)


def build(reference: str, kwargs: Mapping[str, Any]) -> object:
    """Call the callable ``package.module:attribute`` with ``kwargs``."""
    module_name, _, attribute = reference.partition(":")
    try:
        target: Any = importlib.import_module(module_name)
        for part in attribute.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError, ValueError) as err:
        raise ConfigurationError(f"cannot build the observer {reference!r}: {err}") from err
    return target(**kwargs)
