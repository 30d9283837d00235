"""ArrowParquetReader (by row group, restart at the committed row) and ArrowParquetWriter
(a row group committed with each chunk), for columnar steps."""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from typing import Any

from batchline.errors import ConfigurationError, ItemReadError
from batchline.items.arrow.blocks import pyarrow
from batchline.items.arrow.parquet_append import AppendedParquet, conform
from batchline.items.arrow.parquet_footer import encode, merge, shift_offsets, split_file
from batchline.items.base import Chunk
from batchline.items.files.storage import StorageOptions, filesystem, is_local, lock_beside
from batchline.items.parquet import ParquetWriter, _one_line
from batchline.model import ExecutionContext


class ArrowParquetReader:
    """A Parquet file as record batches, a row group at a time (Arrow decodes it on all cores).

    What commits with a chunk is the row group and the rows of it taken: a restart decodes that
    row group again and goes on after those rows, whatever the batch size of either run. A row
    group that cannot be decoded is a read error naming it; when skipped, the next group follows.
    """

    read_ahead_safe = True

    def __init__(
        self,
        path: str,
        *,
        columns: Sequence[str] | None = None,
        storage_options: StorageOptions = None,
        name: str = "reader",
    ) -> None:
        pyarrow()
        self.path = str(path)
        self.columns = list(columns) if columns else None
        self.name = name
        self._storage_options = storage_options
        self._file: Any = None
        self._parquet: Any = None
        self._table: Any = None  # the current row group, decoded
        self.row_group = self.offset = self.count = 0

    def __repr__(self) -> str:
        return f"ArrowParquetReader({self.path!r})"

    def estimated_size(self) -> int:
        if self._parquet is not None:
            return int(self._parquet.metadata.num_rows)
        return -1

    def open(self, context: ExecutionContext) -> None:
        import pyarrow.parquet as pq

        pa = pyarrow()
        self.close()
        fs, inner = filesystem(self.path, self._storage_options)
        try:
            self._file = fs.open(inner, "rb")
            self._parquet = pq.ParquetFile(self._file)
        except (pa.ArrowException, OSError) as exc:
            self.close()
            raise ItemReadError(
                f"not a readable Parquet file: {_one_line(exc)}", source=self.path
            ) from None
        self._check_columns()
        self.row_group = int(context.get(f"{self.name}.row_group", 0))
        self.offset = int(context.get(f"{self.name}.offset", 0))
        self.count = int(context.get(f"{self.name}.count", 0))

    def _check_columns(self) -> None:
        """Arrow drops the columns asked that the file lacks: name them instead."""
        names = self._parquet.schema_arrow.names
        schema = self._parquet.schema
        paths = [schema.column(i).path for i in range(len(schema))]
        missing = [
            c
            for c in self.columns or []
            if c not in names and not any(p == c or p.startswith(f"{c}.") for p in paths)
        ]
        if missing:
            shown = ", ".join(names[:20]) + (", ..." if len(names) > 20 else "")
            self.close()
            raise ItemReadError(
                f"no column {', '.join(map(repr, missing))} in the file ({shown})",
                source=self.path,
            )

    def update(self, context: ExecutionContext) -> None:
        context[f"{self.name}.row_group"] = self.row_group
        context[f"{self.name}.offset"] = self.offset
        context[f"{self.name}.count"] = self.count

    def close(self) -> None:
        self._table = self._parquet = None
        if self._file is not None:
            self._file.close()
            self._file = None

    def read_batch(self, rows: int) -> tuple[Any, list[ItemReadError], bool]:
        if self._parquet is None:
            self.open(ExecutionContext())
        pa = pyarrow()
        groups = self._parquet.num_row_groups
        pieces: list[Any] = []
        wanted = rows
        while wanted > 0 and self.row_group < groups:
            if self._table is None:
                try:
                    self._table = self._parquet.read_row_group(
                        self.row_group, columns=self.columns, use_threads=True
                    )
                except (pa.ArrowException, OSError) as exc:
                    group = self.row_group
                    self.row_group, self.offset = group + 1, 0
                    error = ItemReadError(
                        f"row group {group} is unreadable ({_one_line(exc)}); "
                        "skipped to the next group",
                        source=self.path,
                    )
                    if not pieces:
                        raise error from None
                    # the rows taken before it in this call are past: hand them over with it
                    self.count += rows - wanted
                    return self._batch(pieces), [error], self.row_group >= groups
            take = min(self._table.num_rows - self.offset, wanted)
            if take > 0:
                pieces.append(self._table.slice(self.offset, take))
                self.offset += take
                wanted -= take
            if self.offset >= self._table.num_rows:
                self.row_group, self.offset, self._table = self.row_group + 1, 0, None
        self.count += rows - wanted
        return self._batch(pieces), [], self.row_group >= groups

    @staticmethod
    def _batch(pieces: list[Any]) -> Any:
        if not pieces:
            return None
        pa = pyarrow()
        table = pieces[0] if len(pieces) == 1 else pa.concat_tables(pieces)
        batches = table.to_batches()
        if len(batches) != 1:
            batches = table.combine_chunks().to_batches()
        return batches[0]


class ArrowParquetWriter(ParquetWriter):
    """Record batches into a Parquet file, a row group per committed chunk.

    Each chunk is encoded once, by Arrow, as a row group appended to ``<target>.parts/
    data.parquet``; when the chunk commits, the step's context records the file's length and
    row groups, and a restart truncates the file to them (parquet_append.py). When the step
    completes, the row groups' footers are merged into the file's footer and the file is moved
    into place: it holds exactly the committed rows, a row group per chunk, and appears only
    then.

    An object store (``s3://``, ``memory://``) cannot truncate: there each chunk is a Parquet
    part file of its own, listed in the context when it commits, and the parts' bytes are
    joined into the file at the end, their footers moved, not decoded (ParquetWriter's
    folder of parts).
    """

    # Arrow encodes with the GIL released: the step reads the next batch meanwhile.
    overlaps_reads = True
    _appended: AppendedParquet | None = None  # the local file; None on an object store

    def __repr__(self) -> str:
        return f"ArrowParquetWriter({self.path!r})"

    def open(self, context: ExecutionContext) -> None:
        self._appended = None
        if not is_local(self._fs) or f"{self.name}.parts" in context:
            super().open(context)  # an object store, or a restart of a run that wrote parts
            return
        self._lock = lock_beside(self._fs, self._target, self.path)
        self._rows, self._se = [], None
        self._tracker.reset()
        appended = AppendedParquet(self._staging, self.path, self.compression)
        size = context.get(f"{self.name}.bytes")
        try:
            if size is None:
                if os.path.exists(self._staging):
                    shutil.rmtree(self._staging)
                # a new run replaces the file as FileWriter's truncates it: an older file left
                # in place would pass for this run's output when the run writes none
                if os.path.isfile(self._target):
                    os.remove(self._target)
                appended.start_new()
            else:
                appended.resume(int(size), int(context.get(f"{self.name}.groups", 0)), self._target)
        except BaseException:
            appended.close()
            if self._lock is not None:
                self._lock.close()
                self._lock = None
            raise
        self._appended = appended
        self._open = True

    def write(self, items: Sequence[Any], chunk: Chunk) -> None:
        pa = pyarrow()
        for item in items:
            if not isinstance(item, pa.RecordBatch | pa.Table):
                raise ConfigurationError(
                    f"{self!r} writes record batches (a columnar step), not {type(item).__name__}"
                )
        self._begin(chunk)
        self._rows.extend(items)

    def _chunk_committed(self) -> None:
        if self._appended is None:
            super()._chunk_committed()
        else:
            self._appended.commit()

    def _chunk_rolled_back(self) -> None:
        if self._appended is None:
            super()._chunk_rolled_back()
        else:
            self._appended.rollback()

    def update(self, context: ExecutionContext) -> None:
        table = self._chunk_table()
        appended = self._appended
        if appended is not None:
            if table is not None:
                appended.append(table)
            context[f"{self.name}.bytes"] = appended.size
            context[f"{self.name}.groups"] = appended.row_groups
            return
        if table is not None:
            part = f"{len(self._parts) + len(self._pending) + 1:06d}.parquet"
            with self._fs.open(self._part_path(part), "wb") as f:
                f.write(encode(table, self.compression))
            self._pending.append(part)
        context[f"{self.name}.parts"] = self._parts + self._pending

    def _chunk_table(self) -> Any:
        """The chunk's batches as one table (None when there are none), in ``schema``'s types."""
        if not self._rows:
            return None
        pa = pyarrow()
        parts = [b if isinstance(b, pa.Table) else pa.Table.from_batches([b]) for b in self._rows]
        self._rows = []
        # a processor's outputs may differ in types: concat_tables' error names no column
        first = parts[0].schema
        what = f"{self.path}: a chunk's batch"
        parts = [conform(p, first, what, "its first batch") for p in parts]
        table = parts[0] if len(parts) == 1 else pa.concat_tables(parts)
        if self.schema is None:
            return table
        return conform(table, self.schema, f"{self.path}: a chunk", "the schema given")

    def complete(self) -> None:
        appended = self._appended
        if appended is None:
            super().complete()
            return
        self._commit_if_counted(appended)
        if not appended.finish(self._target) and self.schema is not None:
            import pyarrow.parquet as pq

            pq.write_table(self.schema.empty_table(), self._target, compression=self.compression)
        shutil.rmtree(self._staging, ignore_errors=True)
        if self._lock is not None:
            os.remove(f"{self._target}.lock")  # still held: a waiter finds no parts, only the file

    def _commit_if_counted(self, appended: AppendedParquet) -> None:
        if self._se is not None and self._se.commit_count > self._pending_commits:
            appended.commit()  # the last chunk committed
        appended.rollback()  # whatever did not

    def _assemble(self, parts: list[str]) -> bool:
        """The parts' row groups joined as they are, their footers moved (an object store)."""
        if not parts:
            return False
        pa = pyarrow()
        temporary = f"{self._target}.assembling"
        moved: list[bytes] = []
        with self._fs.open(temporary, "wb") as out:
            out.write(b"PAR1")
            position = 4
            for path in parts:
                with self._fs.open(path, "rb") as f:
                    data = f.read()
                if path.endswith(".arrow"):  # Arrow IPC: a run begun by an older batchline
                    table = pa.ipc.open_file(pa.BufferReader(data)).read_all()
                    data = encode(table, self.compression)
                body, footer = split_file(data)
                out.write(body)
                moved.append(shift_offsets(footer, position - 4))
                position += len(body)
            out.write(merge(moved))
        self._fs.mv(temporary, self._target)
        return True

    def close(self) -> None:
        appended = self._appended
        if appended is None:
            super().close()
            return
        if not self._open:
            return
        self._open = False
        try:
            if appended.is_open:  # not finished by complete()
                self._commit_if_counted(appended)
        finally:
            appended.close()
            self._rows = []
            if self._lock is not None:
                self._lock.close()
                self._lock = None
