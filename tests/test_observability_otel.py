"""OpenTelemetry observer: span trees (threads and processes), metrics equal to the counters."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from batchline import BatchStatus, Engine, JobBuilder, StepBuilder
from batchline.testing import eventually
from tests.backends import import_extra
from tests.jobs import obs_jobs

import_extra("opentelemetry.sdk", "test")

from opentelemetry.sdk.metrics import MeterProvider  # noqa: E402
from opentelemetry.sdk.metrics.export import InMemoryMetricReader  # noqa: E402
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (  # noqa: E402
    InMemorySpanExporter,
)
from opentelemetry.trace import StatusCode  # noqa: E402

from batchline.observability.otel import OpenTelemetryObserver  # noqa: E402


@dataclass
class Telemetry:
    spans: InMemorySpanExporter
    metrics: InMemoryMetricReader
    tracer_provider: TracerProvider
    meter_provider: MeterProvider

    def observer(self, **options: Any) -> OpenTelemetryObserver:
        return OpenTelemetryObserver(
            tracer_provider=self.tracer_provider, meter_provider=self.meter_provider, **options
        )

    def finished(self) -> dict[str, ReadableSpan]:
        return {s.name: s for s in self.spans.get_finished_spans()}

    def points(self, name: str) -> list[Any]:
        data = self.metrics.get_metrics_data()
        found: list[Any] = []
        for resource in data.resource_metrics if data else []:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        found.extend(metric.data.data_points)
        return found

    def total(self, name: str, **attributes: str) -> int:
        """A counter's sum over the points whose attributes include ``attributes``."""
        return sum(
            int(p.value)
            for p in self.points(name)
            if all(p.attributes.get(k) == v for k, v in attributes.items())
        )


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    yield Telemetry(spans, reader, tracer_provider, meter_provider)
    tracer_provider.shutdown()
    meter_provider.shutdown()


def parent_of(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent else None


def span_id(span: ReadableSpan) -> int:
    assert span.context is not None
    return span.context.span_id


def trace_id(span: ReadableSpan) -> int:
    assert span.context is not None
    return span.context.trace_id


class TestSpans:
    def test_a_trace_per_job_with_a_span_per_step(
        self, telemetry: Telemetry, sqlite_url: str
    ) -> None:
        """The job's span is the trace's root; each step's span is its child, in one trace."""
        with Engine(sqlite_url, observers=[telemetry.observer()]) as engine:
            execution = engine.start(obs_jobs.skipping_job())
        assert execution.status is BatchStatus.COMPLETED, execution.exit_status
        spans = telemetry.finished()
        assert set(spans) == {"job obs_skips", "step load", "step tally"}
        job = spans["job obs_skips"]
        assert job.parent is None
        assert job.attributes is not None
        assert job.attributes["batchline.job.execution_id"] == execution.id
        assert job.attributes["batchline.status"] == "COMPLETED"
        for name in ("step load", "step tally"):
            assert parent_of(spans[name]) == span_id(job)
            assert trace_id(spans[name]) == trace_id(job)

    def test_thread_partitions_nest_under_their_step(
        self, telemetry: Telemetry, sqlite_url: str
    ) -> None:
        """Each partition on a thread has a span under the partitioned step's span."""
        with Engine(sqlite_url, observers=[telemetry.observer()]) as engine:
            execution = engine.start(obs_jobs.THREAD_JOB)
        assert execution.status is BatchStatus.COMPLETED, execution.exit_status
        spans = telemetry.finished()
        manager = spans["step work"]
        assert parent_of(manager) == span_id(spans["job obs_threads"])
        partitions = [s for n, s in spans.items() if n.startswith("partition ")]
        assert sorted(s.name for s in partitions) == [f"partition work:{i:04d}" for i in range(4)]
        for span in partitions:
            assert parent_of(span) == span_id(manager)
            assert trace_id(span) == trace_id(manager)
            assert span.attributes is not None
            assert span.attributes["batchline.step"] == "work"

    @pytest.mark.slow
    def test_process_partitions_join_the_jobs_trace(
        self, telemetry: Telemetry, sqlite_url: str, tmp_path: Path, monkeypatch: Any
    ) -> None:
        """Partitions on worker processes get spans in the job's trace, under the step's span."""
        span_file = tmp_path / "worker-spans.jsonl"
        monkeypatch.setenv(obs_jobs.SPAN_ENV, str(span_file))
        with Engine(sqlite_url, observers=[telemetry.observer()]) as engine:
            execution = engine.start(obs_jobs.PROCESS_JOB)
        assert execution.status is BatchStatus.COMPLETED, execution.exit_status
        spans = telemetry.finished()
        manager = spans["step work"]
        remote = [json.loads(line) for line in span_file.read_text().splitlines()]
        assert sorted(s["name"] for s in remote) == [f"partition work:{i:04d}" for i in range(4)]
        for span in remote:
            assert span["parent_id"] == span_id(manager)
            assert span["trace_id"] == trace_id(manager)
        assert all(s["pid"] != os.getpid() for s in remote)

    def test_chunk_spans_on_request(self, telemetry: Telemetry, sqlite_url: str) -> None:
        """With chunk_spans, each chunk has a span under its step's span; without, none."""
        with Engine(sqlite_url, observers=[telemetry.observer(chunk_spans=True)]) as engine:
            engine.start(JobBuilder("chunky").step(tally_step()).build())
        finished = telemetry.spans.get_finished_spans()
        step = next(s for s in finished if s.name == "step tally")
        chunks = [s for s in finished if s.name.startswith("chunk ")]
        assert [s.name for s in chunks] == ["chunk 1", "chunk 2", "chunk 3"]
        assert {parent_of(s) for s in chunks} == {span_id(step)}

    def test_a_failed_job_records_failed(self, telemetry: Telemetry, sqlite_url: str) -> None:
        """A failing step makes the job's and step's spans ERROR and the durations FAILED."""
        with Engine(sqlite_url, observers=[telemetry.observer()]) as engine:
            execution = engine.start(obs_jobs.failing_job())
        assert execution.status is BatchStatus.FAILED
        spans = telemetry.finished()
        for name in ("job obs_fails", "step doomed"):
            assert spans[name].status.status_code is StatusCode.ERROR
            assert spans[name].attributes is not None
            assert spans[name].attributes["batchline.status"] == "FAILED"
        assert any(e.name == "exception" for e in spans["step doomed"].events)
        jobs = telemetry.points("batchline.job")
        assert [dict(p.attributes) for p in jobs] == [{"job.name": "obs_fails", "status": "FAILED"}]
        chunks = telemetry.points("batchline.chunk.write")
        assert {p.attributes["status"] for p in chunks} == {"FAILURE"}


def tally_step() -> StepBuilder:
    return StepBuilder("tally").chunk(4).reader(lambda se: iter(range(10))).writer(obs_jobs.discard)


class TestMetrics:
    def test_item_counts_equal_the_step_counters(
        self, telemetry: Telemetry, sqlite_url: str
    ) -> None:
        """Read, processed, written, filtered and skipped (by phase) equal the step's counters."""
        with Engine(sqlite_url, observers=[telemetry.observer()]) as engine:
            execution = engine.start(obs_jobs.skipping_job())
            steps = {s.step_name: s for s in engine.step_executions(execution.id)}
        load = steps["load"]
        assert load.read_skip_count and load.process_skip_count and load.write_skip_count
        at = {"job.name": "obs_skips", "step.name": "load"}
        assert telemetry.total("batchline.item.read", **at) == load.read_count
        assert telemetry.total("batchline.item.write", **at) == load.write_count
        assert telemetry.total("batchline.item.filter", **at) == load.filter_count
        processed = load.read_count - load.process_skip_count
        assert telemetry.total("batchline.item.process", **at) == processed
        for phase in ("read", "process", "write"):
            expected = getattr(load, f"{phase}_skip_count")
            assert telemetry.total("batchline.item.skip", phase=phase, **at) == expected
        tally = {"job.name": "obs_skips", "step.name": "tally"}
        assert telemetry.total("batchline.item.read", **tally) == steps["tally"].read_count == 10

    def test_partitions_count_once(self, telemetry: Telemetry, sqlite_url: str) -> None:
        """Partitions count their items; the manager, which sums them, adds nothing."""
        with Engine(sqlite_url, observers=[telemetry.observer()]) as engine:
            engine.start(obs_jobs.THREAD_JOB)
        assert telemetry.total("batchline.item.read") == 40
        assert telemetry.total("batchline.item.read", **{"step.name": "work"}) == 0
        assert telemetry.total("batchline.item.read", **{"step.name": "work:0002"}) == 10

    def test_durations_and_active_gauges(self, telemetry: Telemetry, sqlite_url: str) -> None:
        """A job and each step record one duration; the active counts go back to zero."""
        with Engine(sqlite_url, observers=[telemetry.observer()]) as engine:
            engine.start(obs_jobs.skipping_job())
        steps = telemetry.points("batchline.step")
        assert sorted((p.attributes["step.name"], p.count) for p in steps) == [
            ("load", 1),
            ("tally", 1),
        ]
        assert {p.attributes["status"] for p in steps} == {"COMPLETED"}
        assert [p.value for p in telemetry.points("batchline.job.active")] == [0]
        assert {p.value for p in telemetry.points("batchline.step.active")} == {0}

    def test_active_while_running(self, telemetry: Telemetry, sqlite_url: str) -> None:
        """While a job runs, batchline.job.active is 1 for it."""
        gate: list[bool] = []

        def wait_for_gate(items: Any, chunk: Any) -> None:
            eventually(lambda: bool(gate), timeout=30, message="the gate stayed shut")

        hold = StepBuilder("hold").chunk(5).reader(lambda se: iter(range(5)))
        job = JobBuilder("held").step(hold.writer(wait_for_gate)).build()
        with Engine(sqlite_url, observers=[telemetry.observer()]) as engine:
            handle = engine.start_async(job)
            eventually(
                lambda: [p.value for p in telemetry.points("batchline.job.active")] == [1],
                timeout=30,
            )
            gate.append(True)
            handle.wait(30)
        assert [p.value for p in telemetry.points("batchline.job.active")] == [0]
