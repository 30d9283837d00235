"""Checksums around a job's files: written beside the file, verified before it is used.

``write_checksum`` writes ``<file>.<algorithm>`` in the format of ``sha256sum`` and friends
(``<hex>  <name>``), so the usual command-line tools can check it too; ``write_ok_marker``
writes ``<file>.ok`` once the file is complete. ChecksumTask and VerifyChecksumTask wrap them as
simple-step tasks with path templates.
"""

from __future__ import annotations

import hashlib
import posixpath
from collections.abc import Sequence
from typing import Any

from batchline.errors import BatchlineError, ConfigurationError
from batchline.items.files.storage import StorageOptions, filesystem
from batchline.items.files.templates import render
from batchline.model import StepExecution

ALGORITHMS = ("md5", "sha1", "sha256", "sha512")
_BLOCK = 1 << 20


class ChecksumError(BatchlineError):
    """A file does not match its recorded checksum, or its checksum or marker is missing."""


def _check(algorithm: str) -> str:
    if algorithm not in ALGORITHMS:
        raise ConfigurationError(f"checksum algorithm {algorithm!r}: use one of {ALGORITHMS}")
    return algorithm


def file_digest(
    path: str, algorithm: str = "sha256", storage_options: StorageOptions = None
) -> str:
    """The hex digest of a file's bytes, read in blocks."""
    digest = hashlib.new(_check(algorithm))
    fs, inner = filesystem(path, storage_options)
    with fs.open(inner, "rb") as f:
        while block := f.read(_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def write_checksum(
    path: str, algorithm: str = "sha256", storage_options: StorageOptions = None
) -> str:
    """Write ``<path>.<algorithm>`` and return its path."""
    value = file_digest(path, algorithm, storage_options)
    fs, inner = filesystem(path, storage_options)
    target = f"{path}.{algorithm}"
    with fs.open(f"{inner}.{algorithm}", "w") as f:
        f.write(f"{value}  {posixpath.basename(inner)}\n")
    return target


def verify_checksum(
    path: str, algorithm: str = "sha256", storage_options: StorageOptions = None
) -> str:
    """Check ``path`` against ``<path>.<algorithm>``; ChecksumError naming both when they differ."""
    fs, inner = filesystem(path, storage_options)
    sidecar = f"{inner}.{_check(algorithm)}"
    if not fs.exists(sidecar):
        raise ChecksumError(f"{path}: no {algorithm} checksum file {path}.{algorithm}")
    with fs.open(sidecar, "r") as f:
        words = f.read().split()
    expected = words[0].lower() if words else ""
    actual = file_digest(path, algorithm, storage_options)
    if actual != expected:
        raise ChecksumError(
            f"{path}: {algorithm} is {actual}, but {path}.{algorithm} says {expected}"
        )
    return actual


def write_ok_marker(path: str, storage_options: StorageOptions = None) -> str:
    """Write ``<path>.ok`` holding the file's size: the file is complete."""
    fs, inner = filesystem(path, storage_options)
    size = fs.size(inner)
    with fs.open(f"{inner}.ok", "w") as f:
        f.write(f"{size}\n")
    return f"{path}.ok"


def verify_ok_marker(path: str, storage_options: StorageOptions = None) -> None:
    """ChecksumError unless ``<path>.ok`` exists and the file still has the size it records."""
    fs, inner = filesystem(path, storage_options)
    if not fs.exists(f"{inner}.ok"):
        raise ChecksumError(f"{path}: no {path}.ok marker; the file is not complete")
    with fs.open(f"{inner}.ok", "r") as f:
        recorded = f.read().strip()
    if recorded and recorded != str(fs.size(inner)):
        raise ChecksumError(f"{path}: {fs.size(inner)} bytes, but {path}.ok says {recorded}")


class _ChecksumTaskBase:
    ok_marker_default = True

    def __init__(
        self,
        path: str,
        algorithms: Sequence[str] = ("sha256",),
        *,
        ok_marker: bool | None = None,
        storage_options: StorageOptions = None,
        confine: bool = True,
    ) -> None:
        self.path = path
        self.algorithms = [_check(a) for a in algorithms]
        self.ok_marker = self.ok_marker_default if ok_marker is None else ok_marker
        self.storage_options = storage_options
        self.confine = confine  # the path template stays in its folder (see templates.py)


class ChecksumTask(_ChecksumTaskBase):
    """A simple-step task writing checksums (and an ``.ok`` marker) for a templated path."""

    def __call__(self, step_execution: StepExecution) -> Any:
        path = render(self.path, step_execution, confine=self.confine)
        for algorithm in self.algorithms:
            write_checksum(path, algorithm, self.storage_options)
        if self.ok_marker:
            write_ok_marker(path, self.storage_options)
        step_execution.context["checksum.path"] = path
        return None


class VerifyChecksumTask(_ChecksumTaskBase):
    """A simple-step task failing the step when a file does not match its checksum or marker."""

    ok_marker_default = False

    def __call__(self, step_execution: StepExecution) -> Any:
        path = render(self.path, step_execution, confine=self.confine)
        if self.ok_marker:
            verify_ok_marker(path, self.storage_options)
        for algorithm in self.algorithms:
            verify_checksum(path, algorithm, self.storage_options)
        return None
