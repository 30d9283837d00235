"""ArrowParquetReader (by row group, restart at the committed row) and ArrowParquetWriter
(a row group committed with each chunk), for columnar steps."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from batchline.errors import ConfigurationError, ItemReadError
from batchline.items.arrow.blocks import pyarrow
from batchline.items.base import Chunk
from batchline.items.files.storage import StorageOptions, filesystem
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
        self.row_group = int(context.get(f"{self.name}.row_group", 0))
        self.offset = int(context.get(f"{self.name}.offset", 0))
        self.count = int(context.get(f"{self.name}.count", 0))

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
                    raise ItemReadError(
                        f"row group {group} is unreadable ({_one_line(exc)}); "
                        "skipped to the next group",
                        source=self.path,
                    ) from None
            take = min(self._table.num_rows - self.offset, wanted)
            if take > 0:
                pieces.append(self._table.slice(self.offset, take))
                self.offset += take
                wanted -= take
            if self.offset >= self._table.num_rows:
                self.row_group, self.offset, self._table = self.row_group + 1, 0, None
        self.count += rows - wanted
        ended = self.row_group >= groups
        if not pieces:
            return None, [], ended
        table = pieces[0] if len(pieces) == 1 else pa.concat_tables(pieces)
        batches = table.to_batches()
        if len(batches) != 1:
            batches = table.combine_chunks().to_batches()
        return batches[0], [], ended


class ArrowParquetWriter(ParquetWriter):
    """Record batches into a Parquet file, a row group per committed chunk.

    A Parquet file's footer comes last, so a file cut at a commit cannot be read. Each chunk's
    batches are therefore also kept as an Arrow IPC part file (no encoding: about a memory
    copy), listed in the step's context when the chunk commits; a restart drops the parts after
    the last committed one. Meanwhile one ``pq.ParquetWriter`` writes the chunks' row groups
    into the staging folder as they come. When the step completes, that file gets its footer
    and is moved into place if it holds exactly the committed chunks (a run from the start
    with no chunk rolled back after its write); otherwise (after a restart, a retry or a scan)
    the committed parts are encoded into the file in order. Either way the file holds exactly
    the committed rows, a row group per chunk.
    """

    # Arrow encodes with the GIL released: the step reads the next batch meanwhile.
    overlaps_reads = True

    def __repr__(self) -> str:
        return f"ArrowParquetWriter({self.path!r})"

    def open(self, context: ExecutionContext) -> None:
        super().open(context)
        self._stream: Any = None
        self._stream_file: Any = None
        self._streamed: list[str] = []  # the parts whose rows the stream holds, in order
        self._stream_ok = not self._parts  # it can only cover a run from the start

    def write(self, items: Sequence[Any], chunk: Chunk) -> None:
        pa = pyarrow()
        for item in items:
            if not isinstance(item, pa.RecordBatch | pa.Table):
                raise ConfigurationError(
                    f"{self!r} writes record batches (a columnar step), not {type(item).__name__}"
                )
        self._begin(chunk)
        self._rows.extend(items)

    def _drop_pending(self) -> None:
        if any(part in self._streamed for part in self._pending):
            self._stream_ok = False  # it holds a chunk that did not commit
        super()._drop_pending()

    def update(self, context: ExecutionContext) -> None:
        if self._rows:
            pa = pyarrow()
            parts = [
                b if isinstance(b, pa.Table) else pa.Table.from_batches([b]) for b in self._rows
            ]
            table = parts[0] if len(parts) == 1 else pa.concat_tables(parts)
            if self.schema is not None:
                table = table.cast(self.schema)
            part = f"{len(self._parts) + len(self._pending) + 1:06d}.arrow"
            with (
                self._fs.open(self._part_path(part), "wb") as f,
                pa.ipc.new_file(f, table.schema) as ipc,
            ):
                ipc.write_table(table)
            self._pending.append(part)
            self._rows = []
            self._stream_table(table, part)
        context[f"{self.name}.parts"] = self._parts + self._pending

    def _stream_table(self, table: Any, part: str) -> None:
        if not self._stream_ok:
            return
        import pyarrow.parquet as pq

        if self._stream is None:
            self._stream_file = self._fs.open(self._part_path("stream.parquet"), "wb")
            self._stream = pq.ParquetWriter(
                self._stream_file, table.schema, compression=self.compression
            )
        elif table.schema != self._stream.schema:
            self._stream_ok = False
            return
        self._stream.write_table(table, row_group_size=max(table.num_rows, 1))
        self._streamed.append(part)

    def _assemble(self, parts: list[str]) -> bool:
        if not parts:
            self._close_stream()
            return False
        fs = self._fs
        if self._stream_ok and self._streamed == self._parts:
            self._close_stream()
            fs.mv(self._part_path("stream.parquet"), self._target)
            return True
        self._close_stream()
        import pyarrow.parquet as pq

        pa = pyarrow()
        temporary = f"{self._target}.assembling"
        with fs.open(temporary, "wb") as out:
            writer: Any = None
            for path in parts:
                with fs.open(path, "rb") as f:
                    # a file assembled before a crash came back as the first part: Parquet
                    is_ipc = not path.endswith(".parquet")
                    table = pa.ipc.open_file(f).read_all() if is_ipc else pq.read_table(f)
                if writer is None:
                    writer = pq.ParquetWriter(
                        out, self.schema or table.schema, compression=self.compression
                    )
                writer.write_table(table, row_group_size=max(table.num_rows, 1))
            writer.close()
        fs.mv(temporary, self._target)
        return True

    def _close_stream(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.close()
            self._stream_file.close()

    def close(self) -> None:
        self._close_stream()
        self._stream_ok = False
        super().close()
