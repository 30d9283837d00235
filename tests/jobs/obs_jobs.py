"""Jobs the observability tests run: chunk steps that skip, partitions on threads and processes.

In a worker process of ``PROCESS_JOB`` (its pool is spawned, so it inherits the environment the
test set), importing this module with ``BATCHLINE_TEST_SPAN_FILE`` set installs a global
TracerProvider whose exporter appends every finished span to that file as a JSON line: the test
reads what the workers traced.
"""

from __future__ import annotations

import json
import multiprocessing
import os
from collections.abc import Sequence
from typing import Any

from batchline import Chunk, ExecutionContext, Job, JobBuilder, StepBuilder
from batchline.model import StepExecution
from batchline.partitioners import IntegerRangePartitioner
from batchline.partitioners.ranges import LOWER, UPPER
from batchline.steps.partition_threads import ThreadPartitionHandler
from batchline.workers import ProcessPartitionHandler

SPAN_ENV = "BATCHLINE_TEST_SPAN_FILE"
ITEMS = 100


class RangeReader:
    """Returns the integers of its partition's range (or 1..ITEMS), restartable by position.

    Reading a multiple of ``bad_every`` raises ValueError after moving past it (a read skip).
    """

    def __init__(self, first: int, last: int, bad_every: int = 0) -> None:
        self.first, self.last, self.bad_every = first, last, bad_every
        self.next = first

    def open(self, context: ExecutionContext) -> None:
        self.next = int(context.get("next", self.first))

    def read(self) -> int | None:
        if self.next > self.last:
            return None
        value = self.next
        self.next += 1
        if self.bad_every and value % self.bad_every == 0:
            raise ValueError(f"unreadable record {value}")
        return value

    def update(self, context: ExecutionContext) -> None:
        context["next"] = self.next

    def close(self) -> None:
        pass


def partition_reader(se: StepExecution) -> RangeReader:
    return RangeReader(int(se.context[LOWER]), int(se.context[UPPER]))


def skipping_reader(se: StepExecution) -> RangeReader:
    return RangeReader(1, ITEMS, bad_every=17)


def process(item: int) -> int | None:
    if item % 13 == 0:
        raise ValueError(f"cannot process {item}")
    if item % 10 == 0:
        return None  # filtered
    return item


class PickyWriter:
    """Fails a chunk holding a multiple of 29 (then, scanning, only that item: a write skip)."""

    def __init__(self) -> None:
        self.written: list[int] = []

    def write(self, items: Sequence[int], chunk: Chunk) -> None:
        if any(i % 29 == 0 for i in items):
            raise ValueError("no multiples of 29")
        self.written.extend(items)


def discard(items: Sequence[Any], chunk: Chunk) -> None:
    pass


def fail(items: Sequence[Any], chunk: Chunk) -> None:
    raise RuntimeError("the target refused the chunk")


def skipping_job(name: str = "obs_skips") -> Job:
    """Two steps: ``load`` reads 1..100 with read, process and write skips; ``tally`` 1..10."""
    load = (
        StepBuilder("load")
        .chunk(10)
        .reader(skipping_reader)
        .processor(process)
        .writer(PickyWriter())
        .skip(ValueError, limit=None)
    )
    tally = StepBuilder("tally").chunk(4).reader(lambda se: iter(range(1, 11))).writer(discard)
    return JobBuilder(name).step(load).step(tally).build()


def failing_job(name: str = "obs_fails") -> Job:
    step = StepBuilder("doomed").chunk(5).reader(lambda se: iter(range(20))).writer(fail)
    return JobBuilder(name).step(step).build()


def partitioned(name: str, handler: Any) -> Job:
    worker = StepBuilder("work_item").chunk(5).reader(partition_reader).writer(discard)
    step = StepBuilder("work").partition(
        worker, IntegerRangePartitioner(1, 40), grid_size=4, handler=handler
    )
    return JobBuilder(name).step(step).build()


THREAD_JOB = partitioned("obs_threads", ThreadPartitionHandler(workers=4))
PROCESS_JOB = partitioned(
    "obs_processes",
    ProcessPartitionHandler("tests.jobs.obs_jobs:PROCESS_JOB", workers=2, start_method="spawn"),
)


def _trace_to_file(path: str) -> None:
    from opentelemetry import trace
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.sdk.trace.export import (
        SimpleSpanProcessor,
        SpanExporter,
        SpanExportResult,
    )

    class FileExporter(SpanExporter):
        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            with open(path, "a", encoding="utf-8") as out:
                for span in spans:
                    ctx, parent = span.get_span_context(), span.parent
                    line = {
                        "name": span.name,
                        "trace_id": ctx.trace_id if ctx else None,
                        "span_id": ctx.span_id if ctx else None,
                        "parent_id": parent.span_id if parent else None,
                        "pid": os.getpid(),
                    }
                    out.write(json.dumps(line) + "\n")
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(FileExporter()))
    trace.set_tracer_provider(provider)


if os.environ.get(SPAN_ENV) and multiprocessing.current_process().name != "MainProcess":
    _trace_to_file(os.environ[SPAN_ENV])
