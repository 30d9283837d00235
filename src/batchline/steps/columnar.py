"""The columnar chunk step: a chunk is up to N rows as one ``pyarrow.RecordBatch``.

It is the chunk step (steps/chunk.py) with batches where the row step has items: the same
transaction per chunk, progress and skip records committed with the data, retry, skip limits,
listeners and run control. What changes:

- the reader's ``read_batch(rows)`` returns ``(batch or None, errors, ended)``: up to ``rows``
  rows, the rows it could not parse since the last call (``ItemReadError`` with file, line and
  raw text: read skips, under the step's skip limit) and whether the input has ended;
- the counters count rows: read (the batch's rows), filtered (rows the processor removed),
  written, skipped;
- a processor gets the batch and returns a batch, a table, a data frame or None (all filtered);
  when it raises, the batch is retried like an item, and when the error is skippable it is
  processed again row by row (one-row batches), the failing rows skipped;
- a write that fails with a skippable error is scanned by halves, each in a savepoint, down to
  the failing rows, which are skipped; ``reprocess_on_scan`` has no meaning here;
- the next batch is read in a thread while this one is written (``read_ahead``), when the
  reader says it may be and the writer waits on a database.
"""

from __future__ import annotations

import contextvars
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from batchline.errors import ConfigurationError, ItemReadError
from batchline.items.base import Chunk
from batchline.model import StepExecution
from batchline.steps.base import step_failure
from batchline.steps.chunk import ChunkStep, _Attempt, _Gathered, _Run, _Skips
from batchline.steps.read_ahead import Prefetched

# What a columnar reader's read_batch returns: the batch, the rows it could not parse, the end.
BatchRead = tuple[Any, list[ItemReadError], bool]


class ColumnarStep(ChunkStep):
    """A chunk step whose chunks are Arrow record batches of up to ``chunk_size`` rows."""

    def __repr__(self) -> str:
        return f"ColumnarStep({self.name!r}, rows={self.chunk_size})"

    def _reader_for(self, se: StepExecution) -> Any:
        spec = self.reader
        made = spec if hasattr(spec, "read_batch") else None
        if made is None and callable(spec):
            made = spec(se)
        if made is None or not hasattr(made, "read_batch"):
            raise ConfigurationError(
                f"step {self.name!r} is columnar: its reader must read batches (read_batch), "
                f"as ArrowCsvReader, ArrowParquetReader and ArrowJsonReader do; got {spec!r}"
            )
        return made


class _Batches(_Gathered):
    """A columnar chunk: ``items`` and ``outputs`` are record batches, counted by their rows.

    A processor may return more rows than it was given (an explode), so what it removed is
    counted batch by batch as it runs, never below zero, not taken as rows in minus rows out.
    """

    filtered = 0

    def filtered_count(self) -> int:
        return self.filtered

    def read_count(self) -> int:
        return sum(batch.num_rows for batch in self.items)

    def output_count(self) -> int:
        return sum(batch.num_rows for batch in self.outputs)


class _ColumnarRun(_Run):
    def __init__(self, step: ChunkStep, *args: Any) -> None:
        super().__init__(step, *args)
        self.read_batch = self.reader.read_batch

    def _read_ahead(self, reader: Any) -> Any:
        return _BatchAhead(reader, self.step.chunk_size, self.step.name)

    def _read_chunk(self, chunk: Chunk, ahead: Prefetched | None = None) -> tuple[_Gathered, bool]:
        got = _Batches(_Skips(self.skips_by_class))
        try:
            if ahead is not None:
                if ahead.error is not None:
                    raise ahead.error
                batch, errors, ended = ahead.items[0]
            else:
                batch, errors, ended = self.read_batch(self.step.chunk_size)
            # An empty chunk ends the step: a reader's empty batch that is not its end (a
            # reader of the user's may return one) is read past, or the rows after it were lost.
            while not (ended or errors or (batch is not None and batch.num_rows)):
                batch, errors, ended = self.read_batch(self.step.chunk_size)
        except Exception as exc:
            self._read_failed(chunk, got, exc)
            return got, False
        for error in errors:
            self._read_failed(chunk, got, error)
        if batch is not None and batch.num_rows:
            got.items.append(batch)
        return got, ended

    # A batch's bad rows are handed over before its good ones are counted: an item number
    # would point at the wrong row, so the failure names the file and line the error carries.
    def _read_where(self, exc: Exception, position: int) -> str:
        if isinstance(exc, ItemReadError) and exc.line is None:
            return exc.source or "the input"
        return super()._read_where(exc, position)

    def _reading(self, where: str, position: int) -> str:
        return where

    def _process_chunk(self, chunk: Chunk, got: _Gathered) -> None:
        process = self.process
        if process is None:
            got.outputs = list(got.items)
            return
        assert isinstance(got, _Batches)
        for batch in got.items:
            skips = got.process_skips
            try:
                result = process(batch)
            except Exception as exc:
                result = self._process_failed_batch(chunk, got, batch, exc)
            outputs = self._outputs(chunk, batch, result)
            got.outputs.extend(outputs)
            kept = sum(output.num_rows for output in outputs) + got.process_skips - skips
            got.filtered += max(0, batch.num_rows - kept)

    def _outputs(self, chunk: Chunk, batch: Any, result: Any) -> list[Any]:
        # A result of the wrong kind is the processor's doing, found outside its call: name the
        # chunk and rows it was given, as a failure inside it would be named.
        try:
            return as_batches(result)
        except Exception as exc:
            first = self.reads + 1
            raise step_failure(
                f"job {self.job_name!r} step {self.step.name!r} chunk {chunk.number}: "
                f"processing rows {first}-{first + batch.num_rows - 1}",
                exc,
            ) from exc

    def _process_failed_batch(
        self, chunk: Chunk, got: _Gathered, batch: Any, error: Exception
    ) -> Any:
        """Retry the batch; then, if the error is skippable, process it row by row."""
        assert self.process is not None
        attempt = 1
        while self.ft.may_retry(error, attempt):
            self._retrying(error, attempt, "process", batch)
            try:
                return self.process(batch)
            except Exception as exc:
                error = exc
                attempt += 1
        if not self.ft.is_skippable(error, "process", self._total(got)):
            first = self.reads + 1
            raise step_failure(
                f"job {self.job_name!r} step {self.step.name!r} chunk {chunk.number}: "
                f"processing rows {first}-{first + batch.num_rows - 1}",
                error,
            ) from error
        outputs: list[Any] = []
        for row in range(batch.num_rows):
            one = batch.slice(row, 1)
            try:
                outputs.extend(as_batches(self.process(one)))
            except Exception as exc:
                position = f"row {self.reads + row + 1}"
                if not self._skip("process", exc, _row(one), got.skips, self._total(got), position):
                    raise step_failure(
                        f"job {self.job_name!r} step {self.step.name!r} chunk "
                        f"{chunk.number}: processing {position}",
                        exc,
                    ) from exc
                got.process_skips += 1
        return outputs

    def _scan(self, chunk: Chunk, got: _Gathered, attempt: _Attempt) -> None:
        """Write the batches by halves, each in a savepoint, down to the rows that fail."""
        done = 0
        for batch in got.outputs:
            self._scan_rows(chunk, got, attempt, batch, done)
            done += batch.num_rows

    def _scan_rows(
        self, chunk: Chunk, got: _Gathered, attempt: _Attempt, rows: Any, before: int
    ) -> None:
        conn = chunk.connection
        if rows.num_rows == 0:
            return
        try:
            if rows.num_rows == 1:
                self._write_one(chunk, conn, rows)  # retried as a chunk would be
            elif conn is not None and hasattr(conn, "begin_nested"):
                with conn.begin_nested():
                    self.write([rows], chunk)
            else:
                self.write([rows], chunk)
        except Exception as exc:
            if rows.num_rows > 1:
                half = rows.num_rows // 2
                self._scan_rows(chunk, got, attempt, rows.slice(0, half), before)
                self._scan_rows(chunk, got, attempt, rows.slice(half), before + half)
                return
            position = f"row {before + 1} of chunk {chunk.number}'s output"
            total = self._total(got) + attempt.counts.write_skips
            if not self._skip("write", exc, _row(rows), attempt.skips, total, position):
                raise step_failure(
                    f"job {self.job_name!r} step {self.step.name!r} chunk {chunk.number}: "
                    f"writing {position} while scanning",
                    exc,
                ) from exc
            attempt.counts.write_skips += 1
            return
        attempt.counts.written += rows.num_rows


def _row(batch: Any) -> Any:
    """A one-row batch as a dict, for the skip record."""
    return batch.to_pylist()[0]


def as_batches(result: Any) -> list[Any]:
    """What a processor returned, as record batches: a batch, a table, a pandas or polars
    data frame, a list of batches, or None (every row filtered)."""
    if result is None:
        return []
    if isinstance(result, list):
        return [b for item in result for b in as_batches(item)]
    kind = type(result).__module__.split(".", 1)[0]
    name = type(result).__name__
    if kind == "pyarrow" and name == "RecordBatch":
        return [result]
    if kind == "pyarrow" and name == "Table":
        return list(result.to_batches())
    if kind == "pandas" and name == "DataFrame":
        from batchline.items.arrow.frames import pandas_batch

        return [pandas_batch(result)]
    if kind == "polars" and name == "DataFrame":
        return list(result.to_arrow().to_batches())
    raise ConfigurationError(
        f"a columnar processor returned a {type(result).__name__}: it must return a pyarrow "
        "RecordBatch or Table, a pandas or polars DataFrame, or None"
    )


class _BatchAhead:
    """Reads the next batch in a thread while this one is written (see steps/read_ahead.py for
    the rules: the reader's state is taken before it starts, errors are handed back)."""

    def __init__(self, reader: Any, size: int, name: str) -> None:
        self._read_batch = reader.read_batch
        self._size = size
        self._pool = ThreadPoolExecutor(1, thread_name_prefix=f"batchline-read-ahead-{name}")
        self._future: Future[Prefetched] | None = None

    def start(self) -> None:
        self._future = self._pool.submit(contextvars.copy_context().run, self._read)

    def take(self) -> Prefetched | None:
        future, self._future = self._future, None
        return None if future is None else future.result()

    def stop(self) -> None:
        future, self._future = self._future, None
        if future is not None:
            future.exception()
        self._pool.shutdown(wait=True)

    def _read(self) -> Prefetched:
        got = Prefetched()
        try:
            got.items.append(self._read_batch(self._size))
        except BaseException as exc:
            got.error = exc
        return got


ColumnarStep._run_class = _ColumnarRun
