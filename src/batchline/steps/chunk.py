"""The chunk step: read up to N items, process each, write the list, commit; repeat.

One transaction per chunk. When the transaction manager reaches the repository's database, the
step execution's counters and context (which holds the reader's and writer's positions) are saved
through the chunk's connection, so they commit or roll back with the chunk's data: a crash at any
instant loses no item and writes none twice. Otherwise progress is saved right after the data
commits, and a crash between the two repeats that one chunk (at-least-once).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from batchline.errors import ConfigurationError
from batchline.items.base import (
    Chunk,
    ItemProcessor,
    ItemStream,
    ItemWriter,
    ReaderSpec,
    resolve_reader,
)
from batchline.listeners import callbacks
from batchline.logging import log
from batchline.model import ExecutionContext, StepExecution
from batchline.status import BatchStatus
from batchline.steps.base import StepOptions, StepRuntime, step_failure
from batchline.transaction import TransactionManager


class ChunkStep:
    def __init__(
        self,
        name: str,
        *,
        reader: ReaderSpec,
        writer: ItemWriter[Any],
        processor: ItemProcessor[Any, Any] | None = None,
        chunk_size: int = 100,
        transaction_manager: TransactionManager | None = None,
        options: StepOptions | None = None,
    ) -> None:
        if chunk_size < 1:
            raise ConfigurationError(f"step {name!r}: chunk size must be >= 1, got {chunk_size}")
        self.name = name
        self.reader = reader
        self.processor = processor
        self.writer = writer
        self.chunk_size = chunk_size
        self.transaction_manager = transaction_manager
        opts = options or StepOptions()
        self.allow_start_if_complete = opts.allow_start_if_complete
        self.start_limit = opts.start_limit
        self.listeners = list(opts.listeners)

    def __repr__(self) -> str:
        return f"ChunkStep({self.name!r}, chunk_size={self.chunk_size})"

    def execute(self, se: StepExecution, runtime: StepRuntime) -> None:
        reader = resolve_reader(self.reader, se)
        parts: list[object] = [reader, self.processor, self.writer]
        streams = _unique([s for s in parts if isinstance(s, ItemStream)])
        opened: list[ItemStream] = []
        try:
            for stream in streams:
                stream.open(se.context)
                opened.append(stream)
            self._loop(se, runtime, reader, streams)
        finally:
            for stream in reversed(opened):
                stream.close()

    def _loop(
        self, se: StepExecution, runtime: StepRuntime, reader: Any, streams: list[ItemStream]
    ) -> None:
        repo = runtime.repository
        tm = self.transaction_manager or runtime.transaction_manager
        shared = repo.shares_connection_with(tm)
        read = reader.read
        process = self.processor.process if self.processor is not None else None
        write = self.writer.write
        size = self.chunk_size
        job_name = se.job_execution.job_name if se.job_execution else "?"
        before = callbacks(self.listeners, "before_chunk")
        after = callbacks(self.listeners, "after_chunk")
        on_error = callbacks(self.listeners, "on_chunk_error")
        number = se.commit_count

        while True:
            number += 1
            chunk = Chunk(number, None, se)
            for fn in before:
                fn(chunk)
            position = se.read_count
            items: list[Any] = []
            try:
                try:
                    while len(items) < size:
                        item = read()
                        if item is None:
                            break
                        items.append(item)
                except Exception as exc:
                    raise step_failure(
                        f"job {job_name!r} step {self.name!r} chunk {number}: "
                        f"reading item {position + len(items) + 1}",
                        exc,
                    ) from exc
                outputs: Sequence[Any]
                if process is None:
                    outputs = items
                else:
                    outputs = []
                    for index, item in enumerate(items):
                        try:
                            result = process(item)
                        except Exception as exc:
                            raise step_failure(
                                f"job {job_name!r} step {self.name!r} chunk {number}: "
                                f"processing item {position + index + 1}",
                                exc,
                            ) from exc
                        if result is not None:
                            outputs.append(result)
            except BaseException as exc:
                se.rollback_count += 1
                for fn in on_error:
                    fn(chunk, exc)
                raise
            if not items:
                return
            stop = self._commit(se, repo, tm, shared, chunk, items, outputs, write, streams)
            for fn in after:
                fn(chunk)
            if stop:
                log.info("step %s saw a stop request after chunk %d", self.name, number)
                se.set_status(BatchStatus.STOPPING)
                return
            if len(items) < size:
                return

    def _commit(
        self,
        se: StepExecution,
        repo: Any,
        tm: TransactionManager,
        shared: bool,
        chunk: Chunk,
        items: list[Any],
        outputs: Sequence[Any],
        write: Any,
        streams: list[ItemStream],
    ) -> bool:
        saved_counters = se.counters()
        saved_version = se.version
        saved_context = se.context.to_json()
        try:
            with tm.begin() as tx:
                chunk.connection = tx.connection
                if outputs:
                    write(outputs, chunk)
                se.read_count += len(items)
                se.write_count += len(outputs)
                se.filter_count += len(items) - len(outputs)
                se.commit_count += 1
                for stream in streams:
                    stream.update(se.context)
                if shared:
                    repo.update_step_execution(se, tx.connection)
                    stop = bool(repo.stop_requested(se.job_execution_id, tx.connection))
            if not shared:
                repo.update_step_execution(se)
                stop = bool(repo.stop_requested(se.job_execution_id))
        except BaseException as exc:
            se.restore_counters(saved_counters)
            se.version = saved_version
            _replace(se.context, saved_context)
            se.rollback_count += 1
            for fn in callbacks(self.listeners, "on_chunk_error"):
                fn(chunk, exc)
            if isinstance(exc, Exception):
                job_name = se.job_execution.job_name if se.job_execution else "?"
                raise step_failure(
                    f"job {job_name!r} step {self.name!r} chunk {chunk.number} "
                    f"(items {saved_counters['read_count'] + 1}-"
                    f"{saved_counters['read_count'] + len(items)}): writing failed",
                    exc,
                ) from exc
            raise
        return stop


def _replace(context: ExecutionContext, saved: str) -> None:
    restored = ExecutionContext.from_json(saved)
    context.clear()
    context.update(restored)


def _unique(streams: list[ItemStream]) -> list[ItemStream]:
    seen: set[int] = set()
    out = []
    for stream in streams:
        if id(stream) not in seen:
            seen.add(id(stream))
            out.append(stream)
    return out
