"""Partitions of files: one per file of a folder, or byte ranges of one large file.

A large text file is cut into ``grid_size`` byte ranges whose edges fall on line starts: for each
edge the partitioner seeks near it and reads the rest of one line, nothing more. The matching
reader seeks straight to its range, so no partition reads the lines before its own. Records are
lines: a format whose records span lines (CSV with quoted newlines) cannot be cut this way.
Paths are local paths or any fsspec URL.
"""

from __future__ import annotations

import codecs
import itertools
import posixpath
from collections.abc import Mapping
from typing import Any

import fsspec

from batchline.errors import ConfigurationError
from batchline.model import ExecutionContext, StepExecution

FILE = "partition.file"
START = "partition.start"
END = "partition.end"

StorageOptions = Mapping[str, Any] | None


def _fs(path: str, options: StorageOptions) -> tuple[Any, str]:
    fs, inner = fsspec.core.url_to_fs(str(path), **dict(options or {}))
    return fs, str(inner)


class FilesPartitioner:
    """One partition per file of ``folder`` whose name matches ``pattern``, in path order.

    Context: ``partition.file``, the file's path (a URL for a remote store); ``grid_size`` is
    ignored, the files decide.
    """

    def __init__(
        self, folder: str, pattern: str = "*", *, storage_options: StorageOptions = None
    ) -> None:
        self.folder = str(folder)
        self.pattern = pattern
        self.storage_options = storage_options

    def __repr__(self) -> str:
        return f"FilesPartitioner({self.folder!r}, {self.pattern!r})"

    def partition(self, grid_size: int) -> list[dict[str, Any]]:
        fs, root = _fs(self.folder, self.storage_options)
        found = fs.glob(posixpath.join(root, self.pattern), detail=True)
        files = sorted(path for path, info in found.items() if info.get("type") == "file")
        local = "file" in _protocols(fs)
        return [{FILE: path if local else fs.unstrip_protocol(path)} for path in files]


def _protocols(fs: Any) -> tuple[str, ...]:
    protocol = fs.protocol
    return tuple(protocol) if isinstance(protocol, list | tuple) else (protocol,)


class FileRangePartitioner:
    """Cuts one text file into about ``grid_size`` byte ranges that start on line starts.

    Context: ``partition.file``, ``partition.start`` (included) and ``partition.end`` (excluded).
    ``skip_header`` leaves the first line out of every range.
    """

    def __init__(
        self, path: str, *, skip_header: bool = False, storage_options: StorageOptions = None
    ) -> None:
        self.path = str(path)
        self.skip_header = skip_header
        self.storage_options = storage_options

    def __repr__(self) -> str:
        return f"FileRangePartitioner({self.path!r})"

    def partition(self, grid_size: int) -> list[dict[str, Any]]:
        if grid_size < 1:
            raise ConfigurationError(f"grid size must be >= 1, got {grid_size}")
        fs, inner = _fs(self.path, self.storage_options)
        size = int(fs.size(inner))
        with fs.open(inner, "rb") as f:
            start = 0
            if self.skip_header:
                start = len(f.readline())
            edges = [start]
            for index in range(1, grid_size):
                target = start + (size - start) * index // grid_size
                if target <= edges[-1]:
                    continue
                f.seek(target - 1)  # a line starts at target if the byte before ends one
                f.readline()
                edge = f.tell()
                if edges[-1] < edge < size:
                    edges.append(edge)
        edges.append(size)
        return [
            {FILE: self.path, START: lo, END: hi} for lo, hi in itertools.pairwise(edges) if hi > lo
        ]


class LineRangeReader:
    """Reads the lines of ``path`` that start in ``[start, end)`` (``end`` None: to the end).

    It seeks straight to ``start``, hands out each line decoded and without its line end, and
    restarts from the byte offset after the last line it handed out.
    """

    def __init__(
        self,
        path: str,
        start: int = 0,
        end: int | None = None,
        *,
        encoding: str = "utf-8",
        storage_options: StorageOptions = None,
        name: str = "lines",
    ) -> None:
        self.path = str(path)
        self.start = start
        self.end = end
        self.encoding = encoding
        self.storage_options = storage_options
        self._state = f"{name}.offset"
        self._file: Any = None
        self.position = start

    @classmethod
    def for_partition(cls, step_execution: StepExecution, **options: Any) -> LineRangeReader:
        """A reader of the file and range the step execution's partition context names."""
        ctx = step_execution.context
        if FILE not in ctx:
            raise ConfigurationError(
                f"step {step_execution.step_name!r}: no {FILE!r} in the context"
            )
        return cls(ctx[FILE], int(ctx.get(START, 0)), ctx.get(END), **options)

    def open(self, context: ExecutionContext) -> None:
        fs, inner = _fs(self.path, self.storage_options)
        self.position = int(context.get(self._state, self.start))
        self._file = fs.open(inner, "rb")
        self._file.seek(self.position)
        if self.position == 0 and codecs.lookup(self.encoding).name == "utf-8":
            if self._file.read(3) == codecs.BOM_UTF8:  # a BOM is not part of the first line
                self.position = 3
            self._file.seek(self.position)

    def read(self) -> str | None:
        if self._file is None:
            raise ConfigurationError(f"LineRangeReader({self.path}) read before open")
        if self.end is not None and self.position >= self.end:
            return None
        line: bytes = self._file.readline()
        if not line:
            return None
        self.position += len(line)
        return line.decode(self.encoding).rstrip("\r\n")

    def update(self, context: ExecutionContext) -> None:
        context[self._state] = self.position

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
