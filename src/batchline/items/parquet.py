"""Parquet reader (by row group and batch) and restartable writer; needs ``batchline[parquet]``.

The reader saves the row group and the rows consumed in it; a restart opens that row group and
skips those rows (decoding them again, at most one row group's worth).

A Parquet file cannot be cut back to a commit (its footer is written last), so the writer
writes each commit's rows as a small part file in ``<target>.parts/``, lists the committed
parts in the step's context, and on ``close`` assembles them, one row group each, into the
target and removes the folder, once the step has completed (``complete``); a step that failed
or stopped leaves its parts. A restart finds the parts and drops the ones not committed (or,
when the target was assembled but the step's end was not recorded, takes the target back as
its first part). Either way the finished file equals a clean run's.
"""

from __future__ import annotations

import dataclasses
import posixpath
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Generic, TypeVar

from batchline.errors import ConfigurationError, ItemReadError
from batchline.items.base import Chunk
from batchline.items.files.storage import StorageOptions, filesystem, lock_beside
from batchline.items.rollback import Write, WriteTracker
from batchline.model import ExecutionContext, SkippedItem, StepExecution

T = TypeVar("T")
_BASE = "000000-base.parquet"


def _pyarrow() -> tuple[Any, Any]:
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise ConfigurationError(
            "Parquet support needs pyarrow: pip install 'batchline[parquet]'"
        ) from None
    return pyarrow, pyarrow.parquet


class ParquetReader(Generic[T]):
    """Reads rows as dicts (or ``mapper(**row)`` for a class, ``mapper(row)`` for a function)."""

    def __init__(
        self,
        path: str,
        *,
        columns: Sequence[str] | None = None,
        batch_size: int = 10_000,
        mapper: type[T] | Callable[[dict[str, Any]], T] | None = None,
        storage_options: StorageOptions = None,
        name: str = "reader",
    ) -> None:
        self.path = str(path)
        self.columns = list(columns) if columns else None
        self.batch_size = batch_size
        self.name = name
        self._storage_options = storage_options
        if isinstance(mapper, type):
            cls = mapper
            self._map: Callable[[dict[str, Any]], Any] | None = lambda row: cls(**row)
        else:
            self._map = mapper
        self._file: Any = None
        self._parquet: Any = None
        self._batches: Any = None
        self._buffer: deque[dict[str, Any]] = deque()
        self.row_group = self.offset = self.count = 0

    def estimated_size(self) -> int:
        """The file's row count from its footer, for the progress display's ETA."""
        pa, pq = _pyarrow()
        fs, inner = filesystem(self.path, self._storage_options)
        with fs.open(inner, "rb") as f:
            try:
                return int(pq.ParquetFile(f).metadata.num_rows)
            except (pa.ArrowException, OSError) as exc:
                raise ItemReadError(
                    f"not a readable Parquet file: {_one_line(exc)}", source=self.path
                ) from None

    def open(self, context: ExecutionContext) -> None:
        pa, pq = _pyarrow()
        self.close()
        fs, inner = filesystem(self.path, self._storage_options)
        self._file = fs.open(inner, "rb")
        try:
            self._parquet = pq.ParquetFile(self._file)
        except (pa.ArrowException, OSError) as exc:
            self.close()
            raise ItemReadError(
                f"not a readable Parquet file: {_one_line(exc)}", source=self.path
            ) from None
        self.row_group = int(context.get(f"{self.name}.row_group", 0))
        self.offset = int(context.get(f"{self.name}.offset", 0))
        self.count = int(context.get(f"{self.name}.count", 0))
        self._start_group(skip=self.offset)

    def _start_group(self, skip: int = 0) -> None:
        self._buffer.clear()
        self._batches = None
        if self.row_group < self._parquet.num_row_groups:
            self._batches = self._parquet.iter_batches(
                batch_size=self.batch_size, row_groups=[self.row_group], columns=self.columns
            )
        while skip > 0 and self._batches is not None:
            batch = next(self._batches, None)
            if batch is None:
                break
            rows = batch.slice(skip).to_pylist() if skip < batch.num_rows else []
            skip -= batch.num_rows
            self._buffer.extend(rows)

    def read(self) -> T | None:
        if self._parquet is None:
            self.open(ExecutionContext())
        while not self._buffer:
            if self._batches is None:
                return None
            batch = self._next_batch()
            if batch is None:
                self.row_group += 1
                self.offset = 0
                self._start_group()
                continue
            self._buffer.extend(batch.to_pylist())
        row = self._buffer.popleft()
        self.offset += 1
        self.count += 1
        if self._map is None:
            return row  # type: ignore[return-value]
        try:
            item = self._map(row)
        except ValueError as exc:  # a row the mapper (a model's validation) refuses
            raise self._row_error(f"refused by the mapper: {exc}", row) from None
        if item is None:  # None would read as the end of the input
            raise self._row_error("the mapper returned None for this row", row)
        return item  # type: ignore[no-any-return]

    def _next_batch(self) -> Any:
        """The next batch of the row group; a corrupt group is skipped past, then reported."""
        pa, _ = _pyarrow()
        try:
            return next(self._batches, None)
        except (pa.ArrowException, OSError) as exc:
            group = self.row_group
            self.row_group += 1
            self.offset = 0
            self._start_group()
            raise ItemReadError(
                f"row group {group} is unreadable ({_one_line(exc)}); skipped to the next group",
                source=self.path,
            ) from None

    def _row_error(self, message: str, row: dict[str, Any]) -> ItemReadError:
        where = f"row group {self.row_group}, row {self.offset}"
        return ItemReadError(f"{where}: {message}", source=self.path, raw=SkippedItem.describe(row))

    def update(self, context: ExecutionContext) -> None:
        context[f"{self.name}.row_group"] = self.row_group
        context[f"{self.name}.offset"] = self.offset
        context[f"{self.name}.count"] = self.count

    def close(self) -> None:
        self._buffer.clear()
        self._batches = None
        self._parquet = None
        if self._file is not None:
            self._file.close()
            self._file = None


class ParquetWriter:
    """Writes mapping or dataclass items; ``schema`` (a pyarrow schema) fixes the column types
    and makes an empty input give an empty file (without one, nothing is written for it)."""

    def __init__(
        self,
        path: str,
        *,
        schema: Any = None,
        compression: str = "snappy",
        storage_options: StorageOptions = None,
        name: str = "writer",
    ) -> None:
        _pyarrow()
        self.path = str(path)
        self.schema = schema
        self.compression = compression
        self.name = name
        self._fs, self._target = filesystem(self.path, storage_options)
        self._staging = f"{self._target}.parts"
        self._parts: list[str] = []  # committed
        self._pending: list[str] = []  # written for the chunk not committed yet
        self._rows: list[Any] = []  # the chunk's rows (or batches), written by update()
        self._pending_commits = 0  # the step's commit count when they were written
        self._tracker = WriteTracker(lambda: len(self._rows), self._cut_rows)
        self._se: StepExecution | None = None
        self._open = False
        self._lock: Any = None

    def __repr__(self) -> str:
        return f"ParquetWriter({self.path!r})"

    def open(self, context: ExecutionContext) -> None:
        fs = self._fs
        # Held until close: a stale process still writing parts keeps a restart waiting.
        self._lock = lock_beside(fs, self._target, self.path)
        saved = context.get(f"{self.name}.parts")
        self._pending, self._rows, self._se = [], [], None
        self._tracker.reset()
        if saved is None:
            if fs.exists(self._staging):
                fs.rm(self._staging, recursive=True)
            self._parts = []
        elif fs.exists(self._staging):
            self._parts = [str(p) for p in saved]
            keep = {self._part_path(p) for p in self._parts}
            for found in fs.ls(self._staging, detail=False):
                if posixpath.normpath(str(found)) not in keep:
                    fs.rm(found)
        elif saved and fs.exists(self._target):
            fs.makedirs(self._staging, exist_ok=True)
            fs.mv(self._target, self._part_path(_BASE))
            self._parts = [_BASE]
        elif saved:
            raise ConfigurationError(
                f"{self.path}: restarting after {len(saved)} committed parts, but neither "
                f"{self._staging} nor the file exists"
            )
        else:
            self._parts = []
        fs.makedirs(self._staging, exist_ok=True)
        self._open = True

    def _part_path(self, part: str) -> str:
        return posixpath.normpath(posixpath.join(self._staging, part))

    def _drop_pending(self) -> None:
        for part in self._pending:
            self._fs.rm(self._part_path(part))
        self._pending = []

    def write(self, items: Sequence[Any], chunk: Chunk) -> None:
        self._begin(chunk)
        self._rows.extend(_as_mapping(item) for item in items)

    def _begin(self, chunk: Chunk) -> None:
        """Follow the chunk's transaction: a new chunk, or one rolled back (see rollback.py)."""
        state = self._tracker.begin(chunk)
        if state is Write.NEW_CHUNK:
            self._chunk_committed()
        elif state is Write.ROLLED_BACK:
            self._chunk_rolled_back()
            self._rows = []
        self._se = chunk.step_execution
        self._pending_commits = chunk.step_execution.commit_count
        self._tracker.watch(chunk)

    def _chunk_committed(self) -> None:
        """What was written for the chunk before this one committed."""
        self._parts.extend(self._pending)
        self._pending = []

    def _chunk_rolled_back(self) -> None:
        self._drop_pending()

    def _cut_rows(self, count: int) -> None:
        del self._rows[count:]

    def update(self, context: ExecutionContext) -> None:
        if self._rows:  # one part (one row group) per commit, however the chunk was written
            pa, pq = _pyarrow()
            table = pa.Table.from_pylist(self._rows, schema=self.schema)
            part = f"{len(self._parts) + len(self._pending) + 1:06d}.parquet"
            with self._fs.open(self._part_path(part), "wb") as f:
                pq.write_table(table, f, compression=self.compression)
            self._pending.append(part)
            self._rows = []
        context[f"{self.name}.parts"] = self._parts + self._pending

    def complete(self) -> None:
        """The step completed: assemble the committed parts into the target, drop the folder."""
        _, pq = _pyarrow()
        self._keep_committed()
        fs = self._fs
        parts = [self._part_path(p) for p in self._parts]
        schema = self.schema
        if self._assemble(parts):
            schema = None
        elif schema is None and parts:
            with fs.open(parts[0], "rb") as f:
                schema = pq.read_schema(f)
        if schema is not None:
            temporary = f"{self._target}.assembling"
            with fs.open(temporary, "wb") as out:
                writer = pq.ParquetWriter(out, schema, compression=self.compression)
                for path in parts:
                    with fs.open(path, "rb") as f:
                        source = pq.ParquetFile(f)
                        for group in range(source.num_row_groups):
                            writer.write_table(source.read_row_group(group))
                writer.close()
            fs.mv(temporary, self._target)
        if fs.exists(self._staging):
            fs.rm(self._staging, recursive=True)
        if self._lock is not None:
            fs.rm(f"{self._target}.lock")  # still held: a waiter finds no parts, only the file

    def _assemble(self, parts: list[str]) -> bool:
        """A subclass's shortcut to the assembled file; False: copy the parts' row groups."""
        return False

    def close(self) -> None:
        """Release the parts; a step that did not complete leaves them for its restart."""
        if not self._open:
            return
        self._open = False
        try:
            if self._fs.exists(self._staging):
                self._keep_committed()
        finally:
            self._rows = []
            if self._lock is not None:
                self._lock.close()
                self._lock = None

    def _keep_committed(self) -> None:
        if self._se is not None and self._se.commit_count > self._pending_commits:
            self._parts.extend(self._pending)  # the last chunk committed
            self._pending = []
        self._drop_pending()


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _as_mapping(item: Any) -> Mapping[str, Any]:
    if isinstance(item, Mapping):
        return item
    if dataclasses.is_dataclass(item) and not isinstance(item, type):
        return {f.name: getattr(item, f.name) for f in dataclasses.fields(item)}
    raise ConfigurationError(f"ParquetWriter: cannot write a {type(item).__name__} item")
