"""OpenTelemetry: a trace per job execution, a span per step and partition, and the metrics.

Needs ``opentelemetry-api`` only (the ``otel`` extra): without an SDK every call is the API's
no-op. Bring the SDK and an exporter, then::

    engine = Engine(url, observers=[OpenTelemetryObserver()])

The spans: ``job <name>`` (the trace's root, unless a span is current where the job starts),
under it ``step <name>``, under a partitioned step ``partition <name:0000>`` for each partition
(on threads, or on worker processes, which join the job's trace through a W3C trace context
that travels with the partition), and with ``chunk_spans=True`` a ``chunk <n>`` span per chunk.
While a step runs its span is the current one, so spans a reader or writer opens nest under it.
The metrics are described in ``batchline.observability``.

Worker processes use their process's global providers (``trace.set_tracer_provider``): set them
up where the worker imports the job module. A pool process ends without running ``atexit``
hooks, so a worker's observer flushes both providers when each partition ends.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import metrics, propagate, trace
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.trace import Span, Status, StatusCode

from batchline import __version__
from batchline.observability._metrics import ItemCounts, MetricsObserver, job_of
from batchline.observers import WorkerSpec
from batchline.status import BatchStatus

if TYPE_CHECKING:
    from batchline.model import JobExecution, StepExecution

_FAILED = {BatchStatus.FAILED, BatchStatus.UNKNOWN, BatchStatus.ABANDONED}
_REFERENCE = "batchline.observability.otel:OpenTelemetryObserver"


class OpenTelemetryObserver(MetricsObserver):
    """Traces and metrics through the OpenTelemetry API (providers: given, or the global ones).

    ``parent`` is a propagated trace context (a W3C ``traceparent`` carrier) the spans of steps
    started outside a job of this process nest under: a worker's partitions. The manager's
    observer sends it; users leave it out.
    """

    def __init__(
        self,
        *,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
        chunk_spans: bool = False,
        parent: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__()
        self.chunk_spans = chunk_spans
        self._tracer = trace.get_tracer("batchline", __version__, tracer_provider=tracer_provider)
        meter = metrics.get_meter("batchline", __version__, meter_provider=meter_provider)
        self._remote = propagate.extract(dict(parent)) if parent is not None else None
        # In a worker process: flush at each partition's end (pool processes skip atexit).
        self._flush: list[Any] = (
            [
                tracer_provider or trace.get_tracer_provider(),
                meter_provider or metrics.get_meter_provider(),
            ]
            if parent is not None
            else []
        )
        self._spans: dict[tuple[str, int], Span] = {}
        self._tokens: dict[tuple[str, int], object] = {}
        # Open step spans by (job execution, step name): where a partition's span nests.
        self._by_name: dict[tuple[int, str], Span] = {}
        self._job_seconds = meter.create_histogram(
            "batchline.job", unit="s", description="Job execution duration"
        )
        self._job_active = meter.create_up_down_counter(
            "batchline.job.active", unit="{execution}", description="Job executions running"
        )
        self._step_seconds = meter.create_histogram(
            "batchline.step", unit="s", description="Step execution duration"
        )
        self._step_active = meter.create_up_down_counter(
            "batchline.step.active", unit="{execution}", description="Step executions running"
        )
        # Item counts are summed here and read by the SDK when it collects (observable
        # counters): a chunk costs a few integer additions, not one SDK call per counter.
        self._totals: dict[tuple[str, str], list[int]] = {}
        self._totals_lock = threading.Lock()
        for name, index in (("read", 0), ("process", 1), ("write", 2), ("filter", 3)):
            meter.create_observable_counter(
                f"batchline.item.{name}", [self._observe(index)], unit="{item}"
            )
        meter.create_observable_counter("batchline.item.skip", [self._observe_skips], unit="{item}")
        self._chunk_write = meter.create_histogram(
            "batchline.chunk.write", unit="s", description="Writing and committing a chunk"
        )
        self._chunk_attributes: dict[tuple[str, str, str], dict[str, str]] = {}

    def __repr__(self) -> str:
        return f"OpenTelemetryObserver(chunk_spans={self.chunk_spans})"

    # --- metrics ----------------------------------------------------------------------------

    def record_job_active(self, job: str, change: int) -> None:
        self._job_active.add(change, {"job.name": job})

    def record_job(self, job: str, status: str, seconds: float) -> None:
        self._job_seconds.record(seconds, {"job.name": job, "status": status})

    def record_step_active(self, job: str, step: str, change: int) -> None:
        self._step_active.add(change, {"job.name": job, "step.name": step})

    def record_step(self, job: str, step: str, status: str, seconds: float) -> None:
        self._step_seconds.record(seconds, {"job.name": job, "step.name": step, "status": status})

    def record_items(self, job: str, step: str, counts: ItemCounts) -> None:
        with self._totals_lock:
            totals = self._totals.get((job, step))
            if totals is None:
                totals = self._totals[job, step] = [0] * 7
            totals[0] += counts.read
            totals[1] += counts.processed
            totals[2] += counts.written
            totals[3] += counts.filtered
            totals[4] += counts.read_skips
            totals[5] += counts.process_skips
            totals[6] += counts.write_skips

    def _observe(self, index: int) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def observe(options: CallbackOptions) -> Iterable[Observation]:
            with self._totals_lock:
                found = [(key, totals[index]) for key, totals in self._totals.items()]
            return [Observation(n, {"job.name": j, "step.name": s}) for (j, s), n in found]

        return observe

    def _observe_skips(self, options: CallbackOptions) -> Iterable[Observation]:
        with self._totals_lock:
            found = [(key, totals[4:]) for key, totals in self._totals.items()]
        return [
            Observation(n, {"job.name": j, "step.name": s, "phase": phase})
            for (j, s), skips in found
            for phase, n in zip(("read", "process", "write"), skips, strict=True)
            if n
        ]

    def record_chunk_write(self, job: str, step: str, status: str, seconds: float) -> None:
        # Once per chunk: the same attribute dict each time spares building and hashing a new
        # one (the SDK copies what it keeps, so sharing it is safe).
        key = (job, step, status)
        attributes = self._chunk_attributes.get(key)
        if attributes is None:
            attributes = {"job.name": job, "step.name": step, "status": status}
            self._chunk_attributes[key] = attributes
        self._chunk_write.record(seconds, attributes)

    # --- spans ------------------------------------------------------------------------------

    def _open(self, key: tuple[str, int], span: Span) -> None:
        self._spans[key] = span
        self._tokens[key] = otel_context.attach(trace.set_span_in_context(span))

    def _close(self, key: tuple[str, int], status: BatchStatus, message: str, error: Any) -> None:
        span = self._spans.pop(key, None)
        token = self._tokens.pop(key, None)
        if token is not None:
            otel_context.detach(token)  # type: ignore[arg-type]
        if span is None:
            return
        span.set_attribute("batchline.status", status.value)
        if status in _FAILED:
            if isinstance(error, BaseException):
                span.record_exception(error)
            first = (message.strip().splitlines() or [status.value])[0]
            span.set_status(Status(StatusCode.ERROR, first))
        span.end()

    def job_started(self, execution: JobExecution) -> None:
        super().job_started(execution)
        span = self._tracer.start_span(
            f"job {execution.job_name}",
            attributes={
                "batchline.job": execution.job_name,
                "batchline.job.execution_id": execution.id,
                "batchline.job.instance_id": execution.instance.id,
            },
        )
        self._open(("job", execution.id), span)

    def job_ended(self, execution: JobExecution) -> None:
        super().job_ended(execution)
        error = execution.failures[0] if execution.failures else None
        self._close(
            ("job", execution.id), execution.status, execution.exit_status.description, error
        )

    def step_started(self, se: StepExecution, partition_of: str | None) -> None:
        super().step_started(se, partition_of)
        parent = self._by_name.get((se.job_execution_id, partition_of)) if partition_of else None
        parent = parent or self._spans.get(("job", se.job_execution_id))
        where = trace.set_span_in_context(parent) if parent is not None else self._remote
        attributes: dict[str, str | int] = {
            "batchline.job": job_of(se),
            "batchline.job.execution_id": se.job_execution_id,
            "batchline.step": partition_of or se.step_name,
            "batchline.step.execution_id": se.id,
        }
        if partition_of:
            attributes["batchline.partition"] = se.step_name
        kind = "partition" if partition_of else "step"
        span = self._tracer.start_span(f"{kind} {se.step_name}", where, attributes=attributes)
        self._by_name[se.job_execution_id, se.step_name] = span
        self._open(("step", se.id), span)

    def step_ended(self, se: StepExecution, partition_of: str | None) -> None:
        super().step_ended(se, partition_of)
        self._by_name.pop((se.job_execution_id, se.step_name), None)
        error = se.failures[0] if se.failures else None
        span = self._spans.get(("step", se.id))
        if span is not None:
            counts = {"batchline.read": se.read_count, "batchline.write": se.write_count}
            span.set_attributes(counts)
        self._close(("step", se.id), se.status, se.exit_status.description, error)
        for provider in self._flush:
            flush = getattr(provider, "force_flush", None)
            if callable(flush):
                flush()

    def chunk_started(self, se: StepExecution, number: int) -> None:
        if self.chunk_spans:
            span = self._tracer.start_span(
                f"chunk {number}",
                attributes={"batchline.step": se.step_name, "batchline.chunk": number},
            )  # the step's span is current: the chunk nests under it
            self._spans["chunk", se.id] = span

    def chunk_ended(
        self,
        se: StepExecution,
        number: int,
        write_seconds: float | None,
        error: BaseException | None,
    ) -> None:
        super().chunk_ended(se, number, write_seconds, error)
        span = self._spans.pop(("chunk", se.id), None)
        if span is not None:
            if error is not None:
                span.record_exception(error)
                span.set_status(Status(StatusCode.ERROR, type(error).__name__))
            span.end()

    def for_worker(self, manager: StepExecution) -> WorkerSpec:
        """A worker's observer: same options, the manager step's span as its parent."""
        carrier: dict[str, str] = {}
        span = self._spans.get(("step", manager.id))
        where = trace.set_span_in_context(span) if span is not None else None
        propagate.inject(carrier, context=where)
        return _REFERENCE, {"chunk_spans": self.chunk_spans, "parent": carrier}
