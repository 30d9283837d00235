"""Where files live: local paths by default, any fsspec URL (s3://, sftp://, ftp://, memory://...).

Readers open anything fsspec opens, and need only ``read`` and ``seek`` (remote stores serve a
seek as a ranged read). Restartable writers need ``truncate``, which object stores (S3, GCS) and
FTP do not offer: they write local files; a copy/move step (``transfer.py``) uploads the result.
Local files are opened with the built-in ``open`` because its C ``readline`` is what keeps
reading fast.
"""

from __future__ import annotations

import bz2
import fcntl
import gzip
import lzma
import os
import time
from collections.abc import Mapping
from typing import Any, BinaryIO

from batchline.errors import ConfigurationError, OutputInUse

StorageOptions = Mapping[str, Any] | None

_SUFFIXES = {".gz": "gzip", ".gzip": "gzip", ".bz2": "bz2", ".xz": "xz"}
COMPRESSIONS = ("gzip", "bz2", "xz")


def filesystem(path: str, storage_options: StorageOptions = None) -> tuple[Any, str]:
    """The fsspec filesystem holding ``path`` and the path within it."""
    import fsspec  # here: a job reading and writing local files never imports it (~50 ms)

    fs, inner = fsspec.core.url_to_fs(str(path), **dict(storage_options or {}))
    return fs, str(inner)


def is_local(fs: Any) -> bool:
    from fsspec.implementations.local import LocalFileSystem

    return isinstance(fs, LocalFileSystem)


def _located(path: str, storage_options: StorageOptions) -> tuple[Any, str]:
    """(None, the OS path) for a local file, else (its fsspec filesystem, the path within).

    A path with no protocol, no chained URL and no options is local by its look alone and is
    resolved without importing fsspec (as fsspec's local filesystem would: ``~`` expanded)."""
    text = str(path)
    if not storage_options and "://" not in text and "::" not in text:
        return None, os.path.expanduser(text)
    fs, inner = filesystem(text, storage_options)
    return (None, inner) if is_local(fs) else (fs, inner)


def compression_of(path: str, compression: str | None) -> str | None:
    """``"infer"`` takes the compression from the suffix (.gz, .bz2, .xz); None means none."""
    if compression == "infer":
        return _SUFFIXES.get(os.path.splitext(str(path))[1].lower())
    if compression is not None and compression not in COMPRESSIONS:
        raise ConfigurationError(
            f"unsupported compression {compression!r}; use one of {COMPRESSIONS}, 'infer' or None"
        )
    return compression


class InputFile:
    """A readable binary stream and what must be closed with it (the compressed file under it)."""

    def __init__(self, stream: BinaryIO, *owners: Any, kind: str | None = None) -> None:
        self.stream = stream
        self.kind = kind  # the compression, if any
        self._owners = owners

    def close(self) -> None:
        self.stream.close()
        for owner in self._owners:
            owner.close()


def open_input(
    path: str, *, compression: str | None = "infer", storage_options: StorageOptions = None
) -> InputFile:
    """Open ``path`` for reading in binary, decompressing as asked; seekable in every case.

    A seek in a compressed stream is not free: gzip, bz2 and xz decompress again from the start
    (backwards) or from the current position (forwards) up to the offset.
    """
    kind = compression_of(path, compression)
    fs, inner = _located(path, storage_options)
    raw: Any = open(inner, "rb") if fs is None else fs.open(inner, "rb")  # noqa: SIM115
    try:
        if kind is None:
            return InputFile(raw)
        return InputFile(_decompressor(kind, raw), raw, kind=kind)
    except BaseException:
        raw.close()
        raise


def _decompressor(kind: str, raw: Any) -> Any:
    if kind == "gzip":
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if kind == "bz2":
        return bz2.BZ2File(raw, mode="rb")
    return lzma.LZMAFile(raw, mode="rb")


def open_output(
    path: str,
    offset: int | None,
    storage_options: StorageOptions = None,
    *,
    lock_timeout: float = 60.0,
) -> BinaryIO:
    """Open a local file for a restartable writer, holding an exclusive lock on it.

    ``offset`` None starts a new file (an existing one is emptied); otherwise the file is cut
    back to ``offset`` (the last committed byte) and written on from there. The lock (flock) is
    taken before anything is cut and held until the file is closed: a stale process, one whose
    lease ran out but that still has the file open (frozen, say), keeps a restart from cutting
    and writing the file under it. The restart waits up to ``lock_timeout`` seconds for it.
    """
    fs, inner = _located(path, storage_options)
    if fs is not None:
        raise ConfigurationError(
            f"{path}: restartable file writers need a local path (this store cannot truncate a "
            "file); write locally, then upload with a copy/move step"
        )
    if offset is None:
        parent = os.path.dirname(inner)
        if parent:
            os.makedirs(parent, exist_ok=True)
    elif not os.path.exists(inner):
        raise ConfigurationError(f"{path}: restarting at byte {offset}, but the file is gone")
    stream = os.fdopen(os.open(inner, os.O_RDWR | os.O_CREAT, 0o666), "r+b")
    try:
        _lock(stream, path, lock_timeout)
        size = os.fstat(stream.fileno()).st_size
        if offset is not None and size < offset:
            raise ConfigurationError(
                f"{path}: restarting at byte {offset}, but the file holds only {size} bytes "
                "(changed since the last commit?)"
            )
        stream.truncate(offset or 0)
        stream.seek(offset or 0)
    except BaseException:
        stream.close()
        raise
    return stream


def lock_beside(fs: Any, target: str, path: str, timeout: float = 60.0) -> BinaryIO | None:
    """Hold an exclusive lock on ``<target>.lock`` for a writer of a local target; None for
    other stores (nothing there to lock). Closing the returned file releases the lock."""
    if not is_local(fs):
        return None
    parent = os.path.dirname(target)
    if parent:
        os.makedirs(parent, exist_ok=True)
    stream = os.fdopen(os.open(f"{target}.lock", os.O_RDWR | os.O_CREAT, 0o666), "r+b")
    try:
        _lock(stream, path, timeout)
    except BaseException:
        stream.close()
        raise
    return stream


def _lock(stream: BinaryIO, path: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(stream.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise OutputInUse(
                    f"{path}: another process still holds this file open for writing "
                    f"(waited {timeout:g}s); a stale execution whose lease ran out may still be "
                    "alive: stop or kill it, then restart"
                ) from None
            time.sleep(0.05)
