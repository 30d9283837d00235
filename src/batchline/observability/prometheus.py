"""Prometheus: batchline's metrics through prometheus_client (the ``prometheus`` extra).

::

    observer = PrometheusObserver()                  # into prometheus_client's REGISTRY
    engine = Engine(url, observers=[observer])
    body, content_type = exposition()                # what a /metrics route returns

A short-lived run (``batchline start``) has nothing to scrape it: give ``push_gateway`` (the CLI:
``--push-gateway URL`` or ``BATCHLINE_PUSHGATEWAY``) and the observer pushes its registry to that
Pushgateway when each job ends, grouped by ``job`` = the job's name (a PUT: the group holds the
last run's figures).

The names are those of ``batchline.observability`` with dots as underscores: histograms
``batchline_job_seconds``, ``batchline_step_seconds``, ``batchline_chunk_write_seconds``,
gauges ``batchline_job_active``, ``batchline_step_active``, counters ``batchline_item_read_total``,
``_process_total``, ``_write_total``, ``_filter_total`` and ``batchline_item_skip_total`` (label
``phase``). Labels are ``job_name``, ``step_name``, ``status``, ``phase``: ``job`` is Prometheus'
own target label (and the Pushgateway's grouping key), which a metric label must not shadow.
Partitions on worker processes are counted when their partitioned step ends, from the counters
it read back from the repository (no chunk write times: those stay in the worker).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    push_to_gateway,
)

from batchline.errors import ConfigurationError
from batchline.logging import log
from batchline.observability._metrics import ItemCounts, MetricsObserver

if TYPE_CHECKING:
    from batchline.model import JobExecution

# Batch durations run from a second to hours: Prometheus' default buckets stop at 10 s.
DURATION_BUCKETS = (0.1, 0.5, 1, 5, 10, 30, 60, 300, 600, 1800, 3600, 7200, 14400, 43200, 86400)
CHUNK_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


def exposition(registry: CollectorRegistry | None = None) -> tuple[bytes, str]:
    """The registry's metrics in Prometheus' text format and its content type, for ``/metrics``.

    Without a registry, prometheus_client's default one (where ``PrometheusObserver`` records
    unless given another).
    """
    return generate_latest(registry if registry is not None else REGISTRY), CONTENT_TYPE_LATEST


class PrometheusObserver(MetricsObserver):
    """Records batchline's metrics in ``registry`` (prometheus_client's default one if None).

    One observer per registry: its metrics are registered once, so engines of one process
    share one observer (a second one on the same registry raises ConfigurationError).
    Partitions on worker processes are counted when their step ends, from the counters the
    step read back from the repository (their durations too, chunk write times not).
    """

    counts_remote_partitions = True

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        push_gateway: str | None = None,
        push_timeout: float = 10.0,
    ) -> None:
        super().__init__()
        self.registry = registry if registry is not None else REGISTRY
        self.push_gateway = push_gateway
        self.push_timeout = push_timeout
        job, step = ["job_name"], ["job_name", "step_name"]
        self._children: dict[tuple[str, str], tuple[Any, ...]] = {}
        reg = self.registry
        try:
            self._job_seconds = Histogram(
                "batchline_job_seconds",
                "Job execution duration",
                [*job, "status"],
                registry=reg,
                buckets=DURATION_BUCKETS,
            )
            self._job_active = Gauge(
                "batchline_job_active", "Job executions running", job, registry=reg
            )
            self._step_seconds = Histogram(
                "batchline_step_seconds",
                "Step execution duration",
                [*step, "status"],
                registry=reg,
                buckets=DURATION_BUCKETS,
            )
            self._step_active = Gauge(
                "batchline_step_active", "Step executions running", step, registry=reg
            )
            self._read = Counter("batchline_item_read", "Items read", step, registry=reg)
            self._processed = Counter(
                "batchline_item_process", "Items processed", step, registry=reg
            )
            self._written = Counter("batchline_item_write", "Items written", step, registry=reg)
            self._filtered = Counter(
                "batchline_item_filter", "Items the processor filtered out", step, registry=reg
            )
            self._skipped = Counter(
                "batchline_item_skip", "Items skipped", [*step, "phase"], registry=reg
            )
            self._chunk_write = Histogram(
                "batchline_chunk_write_seconds",
                "Writing and committing a chunk",
                [*step, "status"],
                registry=reg,
                buckets=CHUNK_BUCKETS,
            )
        except ValueError as err:  # "Duplicated timeseries in CollectorRegistry"
            raise ConfigurationError(
                f"batchline's metrics are already registered in {reg!r}: create one "
                "PrometheusObserver per registry and give it to every engine"
            ) from err

    def __repr__(self) -> str:
        return f"PrometheusObserver(push_gateway={self.push_gateway!r})"

    def record_job_active(self, job: str, change: int) -> None:
        self._job_active.labels(job).inc(change)

    def record_job(self, job: str, status: str, seconds: float) -> None:
        self._job_seconds.labels(job, status).observe(seconds)

    def record_step_active(self, job: str, step: str, change: int) -> None:
        self._step_active.labels(job, step).inc(change)

    def record_step(self, job: str, step: str, status: str, seconds: float) -> None:
        self._step_seconds.labels(job, step, status).observe(seconds)

    def record_items(self, job: str, step: str, counts: ItemCounts) -> None:
        children = self._children.get((job, step))
        if children is None:  # looked up once per step: labels() costs more than inc()
            children = self._children[job, step] = (
                self._read.labels(job, step),
                self._processed.labels(job, step),
                self._written.labels(job, step),
                self._filtered.labels(job, step),
            )
        read, processed, written, filtered = children
        read.inc(counts.read)
        processed.inc(counts.processed)
        written.inc(counts.written)
        if counts.filtered:
            filtered.inc(counts.filtered)
        for phase, skipped in counts.skips.items():
            if skipped:
                self._skipped.labels(job, step, phase).inc(skipped)

    def record_chunk_write(self, job: str, step: str, status: str, seconds: float) -> None:
        self._chunk_write.labels(job, step, status).observe(seconds)

    def job_ended(self, execution: JobExecution) -> None:
        super().job_ended(execution)
        if self.push_gateway:
            self.push(execution.job_name)

    def push(self, job_name: str) -> None:
        """Push the registry to the Pushgateway, grouped by ``job`` = ``job_name``.

        A gateway that cannot be reached is logged, never a reason for the job to fail.
        """
        assert self.push_gateway is not None
        try:
            push_to_gateway(
                self.push_gateway, job=job_name, registry=self.registry, timeout=self.push_timeout
            )
        except Exception as err:
            log.warning(
                "could not push metrics of job %s to %s: %s", job_name, self.push_gateway, err
            )
