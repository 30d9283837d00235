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
from collections.abc import Callable, Sequence
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
    WriterSpec,
    reader_size,
    resolve_reader,
    resolve_writer,
)
from batchline.listeners import callbacks
from batchline.logging import log
from batchline.model import ExecutionContext, SkippedItem, StepContribution, StepExecution
from batchline.status import BatchStatus
from batchline.steps.base import StepOptions, StepRuntime, step_failure
from batchline.steps.gc_freeze import FREEZE_AFTER, GcFreeze
from batchline.steps.read_ahead import Prefetched, ReadAhead, StreamState, wanted
from batchline.transaction import TransactionManager

# Where in the step's context the cumulative count of reads (skipped ones included) lives: it
# gives each skipped item a position that stays right across restarts.
_POSITION_KEY = "batchline.reads"
# ...and the number of chunks committed, so chunk numbers in messages continue across restarts.
_CHUNKS_KEY = "batchline.chunks"


_SKIP_CALLBACK: dict[Phase, str] = {
    "read": "on_skip_in_read",
    "process": "on_skip_in_process",
    "write": "on_skip_in_write",
}


# A chunk whose transaction lost its connection is written again this many times at most.
DISCONNECT_RETRIES = 3


@dataclass
class _Skips:
    """Skips held until their chunk commits: the records, the listener calls, the counts by
    exception class (the execution's so far plus these, for per-exception limits).

    ``by_class`` is never changed in place (a skip replaces it), so it may be shared."""

    by_class: dict[str, int]
    records: list[SkippedItem] = field(default_factory=list)
    notify: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)

    def copy(self) -> _Skips:
        return _Skips(self.by_class, list(self.records), list(self.notify))


@dataclass
class _Gathered:
    """A chunk's items as read and processed, with what was skipped on the way.

    ``read_skips_at`` and ``dropped_at`` place the rare events among the items without an index
    in the hot loops: a read skip records how many items were read before it; an item filtered
    or skipped by the processor records how many outputs came before it.
    """

    skips: _Skips
    items: list[Any] = field(default_factory=list)
    outputs: list[Any] = field(default_factory=list)
    read_skips_at: list[int] = field(default_factory=list)
    dropped_at: list[int] = field(default_factory=list)
    process_skips: int = 0

    @property
    def skip_count(self) -> int:
        return len(self.read_skips_at) + self.process_skips

    def ordinal(self, index: int) -> int:
        """How many records of this chunk were read up to items[index], read skips included."""
        return index + 1 + sum(1 for at in self.read_skips_at if at <= index)

    def records_read(self) -> int:
        return self.read_count() + len(self.read_skips_at)

    # A columnar chunk (steps/columnar.py) counts the rows of its batches instead.
    def read_count(self) -> int:
        return len(self.items)

    def output_count(self) -> int:
        return len(self.outputs)

    def filtered_count(self) -> int:
        """Items the processor removed (returned None for)."""
        return self.read_count() - self.process_skips - self.output_count()

    def input_of(self, output_index: int) -> int:
        """The index in ``items`` of the item that produced outputs[output_index]."""
        return output_index + sum(1 for at in self.dropped_at if at <= output_index)


@dataclass
class _Attempt:
    """One try at writing and committing a chunk: dropped whole if it rolls back."""

    counts: StepContribution
    skips: _Skips


class ChunkStep:
    """Read, process, write: a chunk of items per transaction, with retry and skip.

    Each chunk's items are read, processed and written in one transaction, which also records
    the step's counters, the reader's and writer's positions and the skips, so a restart resumes
    after the last committed chunk. Build one with ``StepBuilder(name).chunk(size)``."""

    # The loop of one execution; a columnar step (steps/columnar.py) has its own.
    _run_class: type[_Run]

    def __init__(
        self,
        name: str,
        *,
        reader: ReaderSpec,
        writer: ItemWriter[Any] | WriterSpec,
        processor: ItemProcessor[Any, Any] | None = None,
        chunk_size: int = 100,
        completion: CompletionPolicy | None = None,
        transaction_manager: TransactionManager | None = None,
        faults: FaultTolerance | None = None,
        timeout: float | None = None,
        options: StepOptions | None = None,
        streams: Sequence[ItemStream] = (),
        read_ahead: bool | None = None,
        gc_freeze: int | None = FREEZE_AFTER,
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
        # Objects opened, updated and closed with the step besides its reader and writer.
        self.streams = list(streams)
        # Read chunk N+1 while chunk N is written (steps/read_ahead.py); None: when the reader
        # and writer say it pays.
        self.read_ahead = read_ahead
        # Items read before the cyclic GC is kept off older objects (steps/gc_freeze.py);
        # None: never.
        self.gc_freeze = gc_freeze
        opts = options or StepOptions()
        self.allow_start_if_complete = opts.allow_start_if_complete
        self.start_limit = opts.start_limit
        self.listeners = list(opts.listeners)

    def __repr__(self) -> str:
        return f"ChunkStep({self.name!r}, chunk_size={self.chunk_size})"

    def execute(self, se: StepExecution, runtime: StepRuntime) -> None:
        reader = self._reader_for(se)
        writer = resolve_writer(self.writer, se)
        parts: list[object] = [reader, self.processor, writer, *self.streams]
        streams = _unique([s for s in parts if isinstance(s, ItemStream)])
        opened: list[ItemStream] = []
        try:
            for stream in streams:
                stream.open(se.context)
                opened.append(stream)
            _note_expected(reader, se.context)
            self._run_class(self, se, runtime, reader, writer, streams).loop()
            if se.status is BatchStatus.STARTED:
                self._complete(se, runtime, streams)
        finally:
            for stream in reversed(opened):
                stream.close()

    def _reader_for(self, se: StepExecution) -> Any:
        return resolve_reader(self.reader, se)

    def _complete(self, se: StepExecution, runtime: StepRuntime, streams: list[ItemStream]) -> None:
        """Tell the streams the step completed (a file writer's footer): only then, and only
        while this process still holds the execution's lease."""
        completing = [fn for s in streams if callable(fn := getattr(s, "complete", None))]
        if completing:
            runtime.control.check_lease(f"step {self.name!r} completing its output")
            for fn in completing:
                fn()


# Where a chunk step keeps what its reader expects to read in all, for observers elsewhere
# (the dashboard's progress and ETA): stored with the step's context.
EXPECTED_KEY = "batchline.expected"


def _note_expected(reader: Any, context: ExecutionContext) -> None:
    """The reader's size (``reader_size``), once per execution, into the step's context."""
    size = reader_size(reader)
    if size is not None and size >= 0:
        context[EXPECTED_KEY] = size


class _Run:
    """One execution of a chunk step: the loop and the state it keeps between chunks."""

    def __init__(
        self,
        step: ChunkStep,
        se: StepExecution,
        runtime: StepRuntime,
        reader: Any,
        writer: ItemWriter[Any],
        streams: list[ItemStream],
    ) -> None:
        self.step = step
        self.se = se
        self.runtime = runtime
        self.control = runtime.control
        self.repo = runtime.repository
        self.tm = step.transaction_manager or runtime.transaction_manager
        self.shared = self.repo.shares_connection_with(self.tm)
        # A columnar reader (steps/columnar.py) has read_batch instead.
        self.read: Callable[[], Any] = getattr(reader, "read", _no_read)
        # read_into(items, n): append up to n items, True at the end (file readers have it).
        self.read_into: Callable[[list[Any], int], bool] | None = getattr(reader, "read_into", None)
        self.process = step.processor.process if step.processor is not None else None
        self.write = writer.write
        self.streams = streams
        self.ft = step.faults
        self.job_name = se.job_execution.job_name if se.job_execution else "?"
        # Skips by exception class over this execution, for per-exception limits.
        self.skips_by_class: dict[str, int] = {}
        # Records read by earlier chunks (skipped ones included): positions survive restarts.
        self.reads = int(se.context.get(_POSITION_KEY, 0))
        self.deadline = self.control.step_deadline(step.name, step.timeout)
        listeners = step.listeners
        self.before_chunk = callbacks(listeners, "before_chunk")
        self.after_chunk = callbacks(listeners, "after_chunk", reverse=True)
        self.on_chunk_error = callbacks(listeners, "on_chunk_error", reverse=True)
        self.on_retry = callbacks(listeners, "on_retry")
        self.observers = runtime.observers
        # Read-ahead: only with the count-only completion (a custom policy decides per item).
        self.reader = reader
        others = [step.processor, writer, *step.streams]
        ahead = step.completion is None and wanted(step.read_ahead, reader, writer, others)
        self.ahead = self._read_ahead(reader) if ahead else None
        # Left to the writer (no setting): it may say after a chunk that it held the GIL.
        self.ahead_asks = step.read_ahead is None
        self.writer = writer
        # The reader's state at the end of the chunk being written, taken before reading ahead.
        self.reader_state: StreamState | None = None
        self.freeze = GcFreeze(step.gc_freeze)
        self.reads_at_start = self.reads

    def _read_ahead(self, reader: Any) -> ReadAhead:
        return ReadAhead(reader, self.step.chunk_size, self.step.name)

    # --- the loop ---------------------------------------------------------------------------

    def loop(self) -> None:
        try:
            self._loop()
        finally:
            if self.ahead is not None:
                self.ahead.stop()
            self.freeze.release()

    def _loop(self) -> None:
        se = self.se
        number = int(se.context.get(_CHUNKS_KEY, 0))
        while True:
            reason = self.control.at_chunk_boundary(self.step.name, self.deadline, number)
            if reason is not None:
                log.info("step %s stops before chunk %d: %s", self.step.name, number + 1, reason)
                se.set_status(BatchStatus.STOPPING)
                return
            self.freeze.at_boundary(self.reads - self.reads_at_start)
            number += 1
            chunk = Chunk(number, None, se)
            if self.observers is not None:
                self.observers.chunk_started(se, number)
            for fn in self.before_chunk:
                fn(chunk)
            try:
                if self.ahead is None:
                    got, exhausted = self._read_chunk(chunk)
                else:
                    got, exhausted = self._read_chunk(chunk, self.ahead.take())
                empty = not got.items and not got.skips.records
                if self.ahead is not None:
                    self._read_next(exhausted or empty)
                if not empty:
                    self._process_chunk(chunk, got)
            except BaseException as exc:
                se.rollback_count += 1
                for fn in self.on_chunk_error:
                    fn(chunk, exc)
                if self.observers is not None:
                    self.observers.chunk_ended(se, number, None, exc)
                raise
            # An input that ends at a chunk boundary leaves an empty chunk: nothing to commit,
            # but its listeners hear its end as they heard its start.
            if self.observers is None:
                stop = False if empty else self._write_chunk(chunk, got)
            else:
                stop = self._observed_write(chunk, got, empty)
            for fn in self.after_chunk:
                fn(chunk)
            if stop:
                log.info("step %s saw a stop request after chunk %d", self.step.name, number)
                self.control.stop_seen()
                se.set_status(BatchStatus.STOPPING)
                return
            if exhausted or empty:
                return

    def _observed_write(self, chunk: Chunk, got: _Gathered, empty: bool) -> bool:
        """``_write_chunk`` timed for the observers, who hear how the chunk ended."""
        assert self.observers is not None
        started = time.perf_counter()
        try:
            stop = False if empty else self._write_chunk(chunk, got)
        except BaseException as exc:
            self.observers.chunk_ended(self.se, chunk.number, time.perf_counter() - started, exc)
            raise
        self.observers.chunk_ended(self.se, chunk.number, time.perf_counter() - started, None)
        return stop

    # --- read -------------------------------------------------------------------------------

    def _read_next(self, last: bool) -> None:
        """Keep the reader's state at the end of this chunk (what commits with it), then
        start reading the next chunk while this one is processed, written and committed."""
        assert self.ahead is not None
        if self.reader in self.streams:
            self.reader_state = StreamState(self.reader, self.se.context)
        if last:
            return
        if self.ahead_asks and not getattr(self.writer, "overlaps_reads", True):
            return  # its last chunk kept the GIL: two busy threads would only take turns
        self.ahead.start()

    def _read_chunk(self, chunk: Chunk, ahead: Prefetched | None = None) -> tuple[_Gathered, bool]:
        got = _Gathered(_Skips(self.skips_by_class))
        items = got.items
        append = items.append
        read = self.read
        policy = self.step.completion
        if policy is not None:
            policy.start()
        if ahead is not None:
            # Read ahead (count-only completion): its items, then its error or end, handled
            # here as if read now; the rest of the chunk, after a skipped error, read now.
            items.extend(ahead.items)
            if ahead.error is not None:
                if not isinstance(ahead.error, Exception):
                    raise ahead.error
                self._read_failed(chunk, got, ahead.error)
            elif ahead.ended:
                return got, True
        read_into = self.read_into
        while True:
            # The count-only path is the hot loop: keep it to a read, a test and an append.
            try:
                if policy is None and read_into is not None:
                    # The reader appends runs of records itself (file readers, in C loops).
                    want = self.step.chunk_size - len(items)
                    return got, want > 0 and read_into(items, want)
                if policy is None:
                    for _ in range(self.step.chunk_size - len(items)):
                        item = read()
                        if item is None:
                            return got, True
                        append(item)
                    return got, False
                while True:
                    item = read()
                    if item is None:
                        return got, True
                    append(item)
                    if policy.is_complete(len(items)):
                        return got, False
            except Exception as exc:
                self._read_failed(chunk, got, exc)
                if policy is not None and policy.is_complete(len(items)):
                    return got, False

    def _read_failed(self, chunk: Chunk, got: _Gathered, exc: Exception) -> None:
        position = self.reads + got.records_read() + 1
        where = self._read_where(exc, position)
        if not self._skip("read", exc, None, got.skips, self._total(got), where):
            raise step_failure(
                f"job {self.job_name!r} step {self.step.name!r} chunk {chunk.number}: "
                f"reading {self._reading(where, position)}",
                exc,
            ) from exc
        got.read_skips_at.append(len(got.items))

    def _read_where(self, exc: Exception, position: int) -> str:
        """Where a failed read was, for its skip record: the file and line, or the item."""
        return _read_position(exc, position)

    def _reading(self, where: str, position: int) -> str:
        return f"item {position}"

    # --- process ----------------------------------------------------------------------------

    def _process_chunk(self, chunk: Chunk, got: _Gathered) -> None:
        process = self.process
        items = got.items
        if process is None:
            got.outputs = items
            return
        outputs = got.outputs
        append = outputs.append
        dropped = got.dropped_at.append
        pending_items = iter(items)
        while True:
            try:
                # The hot loop again: one call, one test, one append per item. No index is kept:
                # on a failure, what the iterator has left tells which item failed.
                for item in pending_items:
                    result = process(item)
                    if result is not None:
                        append(result)
                    else:
                        dropped(len(outputs))
                return
            except Exception as exc:
                rest = list(pending_items)
                index = len(items) - len(rest) - 1
                result = self._process_failed(chunk, got, index, exc)
                if result is not None:
                    append(result)
                else:
                    dropped(len(outputs))
                pending_items = iter(rest)

    def _process_failed(self, chunk: Chunk, got: _Gathered, index: int, error: Exception) -> Any:
        """Retry a failed item, then skip it or fail; returns its output when a retry works."""
        assert self.process is not None
        item = got.items[index]
        attempt = 1
        while self.ft.may_retry(error, attempt):
            self._retrying(error, attempt, "process", item)
            try:
                return self.process(item)
            except Exception as exc:
                error = exc
                attempt += 1
        position = f"item {self.reads + got.ordinal(index)}"
        if self._skip("process", error, item, got.skips, self._total(got), position):
            got.process_skips += 1
            return None
        raise step_failure(
            f"job {self.job_name!r} step {self.step.name!r} chunk {chunk.number}: "
            f"processing {position}",
            error,
        ) from error

    # --- write ------------------------------------------------------------------------------

    def _write_chunk(self, chunk: Chunk, got: _Gathered) -> bool:
        attempt = disconnects = 0
        while True:
            try:
                return self._commit(chunk, got, self._write_all)
            except BatchlineError:
                raise
            except Exception as exc:
                # A writer error arrives wrapped in _WriteFailed; anything else failed the commit.
                cause = exc.__cause__ if isinstance(exc, _WriteFailed) else exc
                assert cause is not None
                if disconnects < DISCONNECT_RETRIES and self._lost_connection(cause):
                    disconnects += 1
                    log.warning(
                        "step %s chunk %d: the repository's connection was lost (%s); the "
                        "chunk rolled back, writing it again (%d of %d)",
                        self.step.name,
                        chunk.number,
                        type(cause).__name__,
                        disconnects,
                        DISCONNECT_RETRIES,
                    )
                    time.sleep(min(0.25 * 2**disconnects, 2.0))
                    continue
                attempt += 1
                if self.ft.may_retry(cause, attempt):
                    self._retrying(cause, attempt, "write", got.outputs)
                    continue
                if isinstance(exc, _WriteFailed) and self.ft.is_skippable(
                    cause, "write", self._total(got)
                ):
                    log.info(
                        "step %s chunk %d: write failed (%s); scanning item by item",
                        self.step.name,
                        chunk.number,
                        type(cause).__name__,
                    )
                    return self._commit(chunk, got, self._scan)
                first, last = self.reads + 1, self.reads + got.records_read()
                raise step_failure(
                    f"job {self.job_name!r} step {self.step.name!r} chunk {chunk.number} "
                    f"(items {first}-{last}): writing failed",
                    cause,
                ) from cause

    def _lost_connection(self, error: BaseException) -> bool:
        """A dropped connection to the repository's database, when the chunk's writes and its
        progress share one transaction: nothing of the chunk committed (a lost COMMIT reply
        that did commit is refused by the step's version on the second try), so writing it
        again is safe without the step saying ``.retry``."""
        if not self.shared:
            return False
        from batchline.repository.database import is_disconnect  # SQLAlchemy: only here

        return is_disconnect(error)

    def _write_all(self, chunk: Chunk, got: _Gathered, contribution: _Attempt) -> None:
        outputs = got.outputs
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
        contribution.counts.written = got.output_count()

    def _scan(self, chunk: Chunk, got: _Gathered, attempt: _Attempt) -> None:
        """Write item by item, each in a savepoint; skip the items whose write fails."""
        conn = chunk.connection
        reprocess = self.ft.reprocess_on_scan and self.process is not None
        for index, out in enumerate(got.outputs):
            source = got.input_of(index)
            if reprocess:
                assert self.process is not None
                # From the item as read, never from the output it produced the first time.
                out = self.process(got.items[source])
                if out is None:
                    attempt.counts.filtered += 1
                    continue
            try:
                self._write_one(chunk, conn, out)
            except Exception as exc:
                position = f"item {self.reads + got.ordinal(source)} of chunk {chunk.number}"
                total = self._total(got) + attempt.counts.write_skips
                if not self._skip("write", exc, out, attempt.skips, total, position):
                    raise step_failure(
                        f"job {self.job_name!r} step {self.step.name!r} chunk {chunk.number}: "
                        f"writing {position} while scanning",
                        exc,
                    ) from exc
                attempt.counts.write_skips += 1
                continue
            attempt.counts.written += 1

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
        got: _Gathered,
        writing: Callable[[Chunk, _Gathered, _Attempt], None],
    ) -> bool:
        """One try at writing and committing the chunk. What the try adds (its contribution,
        its write skips) is applied to the step only once the transaction has committed."""
        se, repo = self.se, self.repo
        counts = StepContribution(
            ExecutionContext(dict(se.context)),
            read=got.read_count(),
            read_skips=len(got.read_skips_at),
            process_skips=got.process_skips,
        )
        attempt = _Attempt(counts, got.skips.copy())
        beat: tuple[float, bool] | None = None
        try:
            with self.tm.begin() as tx:
                chunk.connection = tx.connection
                writing(chunk, got, attempt)
                counts.filtered += got.filtered_count()
                if self.streams:
                    # A file is written here, outside any transaction's fence.
                    self.control.check_lease(f"step {self.step.name!r} chunk {chunk.number}")
                for stream in self.streams:
                    if stream is self.reader and self.reader_state is not None:
                        self.reader_state.apply(counts.context)
                    else:
                        stream.update(counts.context)
                counts.context[_POSITION_KEY] = self.reads + got.records_read()
                counts.context[_CHUNKS_KEY] = chunk.number
                records = attempt.skips.records
                self._notify_skips(attempt.skips.notify)
                if self.shared:
                    if records:
                        repo.record_skips(records, tx.connection)
                    stop = repo.save_chunk_progress(se, counts, tx.connection)
                    beat = self._beat(tx.connection)
            if not self.shared:
                if records:
                    repo.record_skips(records)
                stop = repo.save_chunk_progress(se, counts)
        except BaseException as exc:
            se.rollback_count += 1
            error = exc.__cause__ if isinstance(exc, _WriteFailed) else exc
            for fn in self.on_chunk_error:
                fn(chunk, error or exc)
            raise
        counts.apply(se)
        self.reads += got.records_read()
        self.skips_by_class = attempt.skips.by_class
        if self.shared and beat is not None and self.control.lease is not None:
            self.control.lease.answer(beat[0], beat[1], se.job_execution_id)
        return stop

    def _beat(self, conn: Any) -> tuple[float, bool] | None:
        """A due heartbeat, in the chunk's transaction: on SQLite the engine's own heartbeat
        would wait behind these transactions, and a starved one would fence a live job."""
        lease = self.control.lease
        if lease is None or not self.control.chunk_beats or not lease.due():
            return None
        sent = self.control.clock()
        job_id = self.se.job_execution_id
        return sent, job_id in self.repo.heartbeat([job_id], conn)

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

    def _total(self, got: _Gathered) -> int:
        """Skips so far: the execution's committed ones and this chunk's."""
        return self.se.skip_count + got.skip_count

    def _skip(
        self,
        phase: Phase,
        error: BaseException,
        item: Any,
        skips: _Skips,
        total: int,
        position: str | None,
    ) -> bool:
        """Record a skip in ``skips`` if the policy allows it; False when it is not skippable."""
        if not self.ft.is_skippable(error, phase, total):
            return False
        by_class = dict(skips.by_class)
        for cls in type(error).__mro__:
            by_class[cls.__name__] = by_class.get(cls.__name__, 0) + 1
        self.ft.check_limits(error, total + 1, by_class)
        skips.by_class = by_class
        raw = error.raw if isinstance(error, ItemReadError) and error.raw is not None else item
        skips.records.append(
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
        skips.notify.append((_SKIP_CALLBACK[phase], args))
        return True

    def _notify_skips(self, notify: list[tuple[str, tuple[Any, ...]]]) -> None:
        for method, args in notify:
            for fn in callbacks(self.step.listeners, method):
                fn(*args)


class _WriteFailed(Exception):
    """Marks an error raised by the writer itself (not by the repository or the commit)."""


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


ChunkStep._run_class = _Run


def _no_read() -> Any:
    raise ConfigurationError("this reader has no read(): it reads batches, for .columnar steps")
