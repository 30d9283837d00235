"""The chunk step: read up to N items, process each, write the list, commit; repeat.

One transaction per chunk. When the transaction manager reaches the repository's database, the
step execution's counters and context (which holds the reader's and writer's positions) and the
chunk's skip records are saved through the chunk's connection, so they commit or roll back with
the chunk's data: a crash at any instant loses no item and writes none twice. Otherwise progress
is saved right after the data commits, and a crash between the two repeats that one chunk
(at-least-once).

Fault tolerance (``faults.FaultTolerance``): the processor is retried per item, the writer per
chunk. A chunk whose write fails with a skippable error is rolled back and written again item by
item ("scanning"), each item in its own savepoint inside one chunk transaction, so the good items
commit, the bad ones are skipped, and even a crash during the scan duplicates nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from batchline.completion import CompletionPolicy
from batchline.errors import BatchlineError, ConfigurationError, ItemReadError
from batchline.faults import FaultTolerance, Phase
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
from batchline.model import SkippedItem, StepExecution
from batchline.status import BatchStatus
from batchline.steps.base import StepOptions, StepRuntime, step_failure
from batchline.transaction import TransactionManager

# Where in the step's context the cumulative count of reads (skipped ones included) lives: it
# gives each skipped item a position that stays right across restarts.
_POSITION_KEY = "batchline.reads"
# ...and the number of chunks committed, so chunk numbers in messages continue across restarts.
_CHUNKS_KEY = "batchline.chunks"


class StepTimeout(BatchlineError):
    """A step or job ran past its time limit; it ends FAILED at a chunk boundary."""


@dataclass
class _Pending:
    """A chunk's skips, held until the chunk commits."""

    records: list[SkippedItem] = field(default_factory=list)
    notify: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)
    read: int = 0
    process: int = 0
    write: int = 0


class ChunkStep:
    def __init__(
        self,
        name: str,
        *,
        reader: ReaderSpec,
        writer: ItemWriter[Any],
        processor: ItemProcessor[Any, Any] | None = None,
        chunk_size: int = 100,
        completion: CompletionPolicy | None = None,
        transaction_manager: TransactionManager | None = None,
        faults: FaultTolerance | None = None,
        timeout: float | None = None,
        options: StepOptions | None = None,
    ) -> None:
        if chunk_size < 1:
            raise ConfigurationError(f"step {name!r}: chunk size must be >= 1, got {chunk_size}")
        self.name = name
        self.reader = reader
        self.processor = processor
        self.writer = writer
        self.chunk_size = chunk_size
        self.completion = completion
        self.transaction_manager = transaction_manager
        self.faults = faults or FaultTolerance()
        self.timeout = timeout
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
            _Run(self, se, runtime, reader, streams).loop()
        finally:
            for stream in reversed(opened):
                stream.close()


class _Run:
    """One execution of a chunk step: the loop and the state it keeps between chunks."""

    def __init__(
        self,
        step: ChunkStep,
        se: StepExecution,
        runtime: StepRuntime,
        reader: Any,
        streams: list[ItemStream],
    ) -> None:
        self.step = step
        self.se = se
        self.runtime = runtime
        self.repo = runtime.repository
        self.tm = step.transaction_manager or runtime.transaction_manager
        self.shared = self.repo.shares_connection_with(self.tm)
        self.read = reader.read
        self.process = step.processor.process if step.processor is not None else None
        self.write = step.writer.write
        self.streams = streams
        self.ft = step.faults
        self.job_name = se.job_execution.job_name if se.job_execution else "?"
        self.skips_by_class: dict[str, int] = {}
        self.reads = int(se.context.get(_POSITION_KEY, 0))
        self._reads_before = self.reads
        self.deadline = time.monotonic() + step.timeout if step.timeout else None
        listeners = step.listeners
        self.before_chunk = callbacks(listeners, "before_chunk")
        self.after_chunk = callbacks(listeners, "after_chunk")
        self.on_chunk_error = callbacks(listeners, "on_chunk_error")
        self.on_retry = callbacks(listeners, "on_retry")

    # --- the loop ---------------------------------------------------------------------------

    def loop(self) -> None:
        se = self.se
        number = int(se.context.get(_CHUNKS_KEY, 0))
        while True:
            if self._must_stop():
                return
            number += 1
            chunk = Chunk(number, None, se)
            for fn in self.before_chunk:
                fn(chunk)
            pending = _Pending()
            self._reads_before = self.reads
            try:
                items, exhausted = self._read_chunk(chunk, pending)
                if not items and not pending.records:
                    return
                outputs = self._process_chunk(chunk, items, pending)
            except BaseException as exc:
                se.rollback_count += 1
                for fn in self.on_chunk_error:
                    fn(chunk, exc)
                raise
            stop = self._write_chunk(chunk, items, outputs, pending)
            for fn in self.after_chunk:
                fn(chunk)
            if stop:
                log.info("step %s saw a stop request after chunk %d", self.step.name, number)
                se.set_status(BatchStatus.STOPPING)
                return
            if exhausted:
                return

    def _must_stop(self) -> bool:
        """Chunk-boundary checks that do not need the repository: abort and time limits."""
        abort = self.runtime.abort
        if abort is not None and abort.is_set():
            log.info("step %s stops: its partition group is aborting", self.step.name)
            self.se.set_status(BatchStatus.STOPPING)
            return True
        now = time.monotonic()
        if self.deadline is not None and now >= self.deadline:
            raise StepTimeout(
                f"job {self.job_name!r} step {self.step.name!r} exceeded its timeout of "
                f"{self.step.timeout:g}s after {self.se.commit_count} chunks"
            )
        job_deadline = self.runtime.job_deadline
        if job_deadline is not None and now >= job_deadline:
            raise StepTimeout(
                f"job {self.job_name!r} exceeded its timeout of {self.runtime.job_timeout:g}s "
                f"in step {self.step.name!r} after {self.se.commit_count} chunks"
            )
        return False

    # --- read -------------------------------------------------------------------------------

    def _read_chunk(self, chunk: Chunk, pending: _Pending) -> tuple[list[Any], bool]:
        items: list[Any] = []
        append = items.append
        read = self.read
        policy = self.step.completion
        if policy is not None:
            policy.start()
        while True:
            # The count-only path is the hot loop: keep it to a read, a test and an append.
            try:
                if policy is None:
                    for _ in range(self.step.chunk_size - len(items)):
                        item = read()
                        if item is None:
                            return items, True
                        append(item)
                    return items, False
                while True:
                    item = read()
                    if item is None:
                        return items, True
                    append(item)
                    if policy.is_complete(len(items)):
                        return items, False
            except Exception as exc:
                self._read_failed(chunk, pending, items, exc)
                if policy is not None and policy.is_complete(len(items)):
                    return items, False
            finally:
                self.reads = self._reads_before + len(items) + pending.read

    def _read_failed(
        self, chunk: Chunk, pending: _Pending, items: list[Any], exc: Exception
    ) -> None:
        position = self._reads_before + len(items) + pending.read + 1
        if not self._skip("read", exc, None, pending, _read_position(exc, position)):
            raise step_failure(
                f"job {self.job_name!r} step {self.step.name!r} chunk {chunk.number}: "
                f"reading item {position}",
                exc,
            ) from exc

    # --- process ----------------------------------------------------------------------------

    def _process_chunk(self, chunk: Chunk, items: list[Any], pending: _Pending) -> list[Any]:
        process = self.process
        if process is None:
            return items
        outputs: list[Any] = []
        append = outputs.append
        pending_items = iter(items)
        while True:
            try:
                # The hot loop again: one call, one test, one append per item. No index is kept:
                # on a failure, what the iterator has left tells which item failed.
                for item in pending_items:
                    result = process(item)
                    if result is not None:
                        append(result)
                return outputs
            except Exception as exc:
                rest = list(pending_items)
                index = len(items) - len(rest) - 1
                result = self._process_failed(chunk, items, index, exc, pending)
                if result is not None:
                    append(result)
                pending_items = iter(rest)

    def _process_failed(
        self, chunk: Chunk, items: list[Any], index: int, error: Exception, pending: _Pending
    ) -> Any:
        """Retry a failed item, then skip it or fail; returns its output when a retry works."""
        assert self.process is not None
        item = items[index]
        attempt = 1
        while self.ft.may_retry(error, attempt):
            self._retrying(error, attempt, "process", item)
            try:
                return self.process(item)
            except Exception as exc:
                error = exc
                attempt += 1
        position = f"item {self._reads_before + index + 1}"
        if self._skip("process", error, item, pending, position):
            return None
        raise step_failure(
            f"job {self.job_name!r} step {self.step.name!r} chunk {chunk.number}: "
            f"processing {position}",
            error,
        ) from error

    # --- write ------------------------------------------------------------------------------

    def _write_chunk(
        self, chunk: Chunk, items: list[Any], outputs: list[Any], pending: _Pending
    ) -> bool:
        attempt = 0
        while True:
            try:
                return self._commit(chunk, items, outputs, pending, self._write_all)
            except BatchlineError:
                raise
            except Exception as exc:
                # A writer error arrives wrapped in _WriteFailed; anything else failed the commit.
                cause = exc.__cause__ if isinstance(exc, _WriteFailed) else exc
                assert cause is not None
                attempt += 1
                if self.ft.may_retry(cause, attempt):
                    self._retrying(cause, attempt, "write", outputs)
                    continue
                if isinstance(exc, _WriteFailed) and self.ft.is_skippable(
                    cause, "write", self.se.skip_count + _count(pending)
                ):
                    log.info(
                        "step %s chunk %d: write failed (%s); scanning item by item",
                        self.step.name,
                        chunk.number,
                        type(cause).__name__,
                    )
                    return self._commit(chunk, items, outputs, pending, self._scan)
                raise step_failure(
                    f"job {self.job_name!r} step {self.step.name!r} chunk {chunk.number} "
                    f"(items {self.reads - len(items) + 1}-{self.reads}): writing failed",
                    cause,
                ) from cause

    def _write_all(self, chunk: Chunk, outputs: list[Any], pending: _Pending) -> int:
        if outputs:
            try:
                self.write(outputs, chunk)
            except Exception as exc:
                if self.ft.no_rollback and self.ft.no_rollback(exc):
                    log.warning(
                        "step %s chunk %d: writer raised %s, which is marked no-rollback; "
                        "the chunk commits",
                        self.step.name,
                        chunk.number,
                        type(exc).__name__,
                    )
                else:
                    raise _WriteFailed() from exc
        return len(outputs)

    def _scan(self, chunk: Chunk, outputs: list[Any], pending: _Pending) -> int:
        """Write item by item, each in a savepoint; skip the items whose write fails."""
        conn = chunk.connection
        written = 0
        first = self.reads - len(outputs)
        for index, out in enumerate(outputs):
            if self.ft.reprocess_on_scan and self.process is not None:
                out = self.process(out) if out is not None else None
                if out is None:
                    continue
            try:
                self._write_one(chunk, conn, out)
            except Exception as exc:
                position = f"item {first + index + 1} of chunk {chunk.number}"
                if not self._skip("write", exc, out, pending, position):
                    raise step_failure(
                        f"job {self.job_name!r} step {self.step.name!r} chunk {chunk.number}: "
                        f"writing {position} while scanning",
                        exc,
                    ) from exc
                continue
            written += 1
        return written

    def _write_one(self, chunk: Chunk, conn: Any, item: Any) -> None:
        """Write one item in a savepoint of its own, retrying it like a chunk."""
        attempt = 0
        while True:
            try:
                if conn is not None and hasattr(conn, "begin_nested"):
                    with conn.begin_nested():
                        self.write([item], chunk)
                else:
                    self.write([item], chunk)
                return
            except Exception as exc:
                attempt += 1
                if not self.ft.may_retry(exc, attempt):
                    raise
                self._retrying(exc, attempt, "write", [item])

    def _commit(
        self,
        chunk: Chunk,
        items: list[Any],
        outputs: list[Any],
        pending: _Pending,
        writing: Callable[[Chunk, list[Any], _Pending], int],
    ) -> bool:
        se, repo = self.se, self.repo
        saved_counters = se.counters()
        saved_version = se.version
        # A shallow copy: streams replace their keys at update(), they do not mutate values.
        saved_context = dict(se.context)
        write_skips_before = pending.write
        records_before = len(pending.records)
        notify_before = len(pending.notify)
        try:
            with self.tm.begin() as tx:
                chunk.connection = tx.connection
                written = writing(chunk, outputs, pending)
                processed = len(items) - pending.process
                se.read_count += len(items)
                se.write_count += written
                se.filter_count += processed - len(outputs)
                se.read_skip_count += pending.read
                se.process_skip_count += pending.process
                se.write_skip_count += pending.write
                se.commit_count += 1
                for stream in self.streams:
                    stream.update(se.context)
                se.context[_POSITION_KEY] = self.reads
                se.context[_CHUNKS_KEY] = chunk.number
                self._notify_skips(pending)
                if self.shared:
                    conn = tx.connection
                    if pending.records:
                        repo.record_skips(pending.records, conn)
                    stop = repo.save_chunk_progress(se, conn)
            if not self.shared:
                if pending.records:
                    repo.record_skips(pending.records)
                stop = repo.save_chunk_progress(se)
        except BaseException as exc:
            se.restore_counters(saved_counters)
            se.version = saved_version
            se.context.clear()
            se.context.update(saved_context)
            pending.write = write_skips_before
            del pending.records[records_before:]
            del pending.notify[notify_before:]
            se.rollback_count += 1
            for fn in self.on_chunk_error:
                fn(chunk, exc)
            raise
        return stop

    # --- retry and skip ---------------------------------------------------------------------

    def _retrying(self, error: BaseException, attempt: int, phase: Phase, subject: Any) -> None:
        log.info(
            "step %s: retry %d/%d of %s after %s: %s",
            self.step.name,
            attempt,
            self.ft.retry_limit,
            phase,
            type(error).__name__,
            error,
        )
        for fn in self.on_retry:
            fn(error, attempt, phase, subject)
        self.ft.wait(attempt)

    def _skip(
        self,
        phase: Phase,
        error: BaseException,
        item: Any,
        pending: _Pending,
        position: str | None,
    ) -> bool:
        """Record a skip if the policy allows it; False when the error is not skippable."""
        total = self.se.skip_count + _count(pending)
        if not self.ft.is_skippable(error, phase, total):
            return False
        by_class = dict(self.skips_by_class)
        for cls in type(error).__mro__:
            by_class[cls.__name__] = by_class.get(cls.__name__, 0) + 1
        self.ft.check_limits(error, total + 1, by_class)
        self.skips_by_class = by_class
        setattr(pending, phase, getattr(pending, phase) + 1)
        raw = error.raw if isinstance(error, ItemReadError) and error.raw is not None else item
        pending.records.append(
            SkippedItem(
                step_execution_id=self.se.id,
                job_execution_id=self.se.job_execution_id,
                phase=phase,
                position=position,
                item=SkippedItem.describe(raw),
                error_type=f"{type(error).__module__}.{type(error).__qualname__}",
                error_message=str(error),
            )
        )
        args: tuple[Any, ...] = (error,) if phase == "read" else (item, error)
        pending.notify.append((f"on_skip_in_{phase}", args))
        return True

    def _notify_skips(self, pending: _Pending) -> None:
        for method, args in pending.notify:
            for fn in callbacks(self.step.listeners, method):
                fn(*args)
        pending.notify.clear()


class _WriteFailed(Exception):
    """Marks an error raised by the writer itself (not by the repository or the commit)."""


def _count(pending: _Pending) -> int:
    return pending.read + pending.process + pending.write


def _read_position(error: BaseException, reads: int) -> str:
    if isinstance(error, ItemReadError) and error.line is not None:
        where = f"{error.source} " if error.source else ""
        return f"{where}line {error.line}"
    return f"item {reads}"


def _unique(streams: list[ItemStream]) -> list[ItemStream]:
    seen: set[int] = set()
    out = []
    for stream in streams:
        if id(stream) not in seen:
            seen.add(id(stream))
            out.append(stream)
    return out
