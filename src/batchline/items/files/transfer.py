"""Copying or moving a file between any two fsspec locations, as a simple-step task.

The bytes go to ``<target>.part`` first, are checked (size and SHA-256 against the source's),
and the part is renamed to the target; a move then deletes the source. Run again after a crash
it copies again, or, for a move whose source is gone and whose target exists, does nothing.
A copy or move of a file onto itself (the same path, through a symlink or a hard link, or onto
the ``.part`` the copy writes first) is refused: it would destroy the file.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
from typing import Any

from batchline.errors import BatchlineError, ConfigurationError
from batchline.items.files.storage import StorageOptions, filesystem, is_local
from batchline.items.files.templates import render
from batchline.model import StepExecution

_BLOCK = 1 << 20


class TransferError(BatchlineError):
    """The copy does not match its source."""


def copy_file(
    source: str,
    target: str,
    *,
    move: bool = False,
    source_options: StorageOptions = None,
    target_options: StorageOptions = None,
) -> str:
    """Copy (or move) ``source`` to ``target``; returns the SHA-256 of the bytes."""
    src_fs, src = filesystem(source, source_options)
    dst_fs, dst = filesystem(target, target_options)
    partial = f"{dst}.part"
    for path, what in ((dst, "the same file"), (partial, "the target's temporary copy")):
        if _same_file(src_fs, src, dst_fs, path):
            raise ConfigurationError(
                f"copy {source} -> {target}: the source is {what} ({path}); "
                f"a {'move' if move else 'copy'} would destroy it"
            )
    if not src_fs.exists(src):
        if move and dst_fs.exists(dst):
            return ""  # moved by an earlier run
        raise ConfigurationError(f"copy {source} -> {target}: the source does not exist")
    parent = dst.rsplit("/", 1)[0] if "/" in dst else ""
    if parent:
        dst_fs.makedirs(parent, exist_ok=True)
    sent = hashlib.sha256()
    size = 0
    with src_fs.open(src, "rb") as f, dst_fs.open(partial, "wb") as out:
        while block := f.read(_BLOCK):
            out.write(block)
            sent.update(block)
            size += len(block)
    written = hashlib.sha256()
    with dst_fs.open(partial, "rb") as f:
        while block := f.read(_BLOCK):
            written.update(block)
    if dst_fs.size(partial) != size or written.hexdigest() != sent.hexdigest():
        raise TransferError(f"copy {source} -> {target}: the copy does not match the source")
    dst_fs.mv(partial, dst)
    if move:
        src_fs.rm(src)
    return sent.hexdigest()


def _same_file(src_fs: Any, src: str, dst_fs: Any, dst: str) -> bool:
    """Whether two paths name one file: resolved (symlinks) and compared by inode locally."""
    if is_local(src_fs) and is_local(dst_fs):
        if os.path.realpath(src) == os.path.realpath(dst):
            return True
        try:
            return os.path.samefile(src, dst)
        except OSError:  # one of them does not exist yet
            return False
    return bool(src_fs == dst_fs) and posixpath.normpath(src) == posixpath.normpath(dst)


class TransferTask:
    """A simple-step task copying (``move=False``) or moving a file; paths are templates,
    confined to their folder unless ``confine=False`` (see templates.py)."""

    def __init__(
        self,
        source: str,
        target: str,
        *,
        move: bool = False,
        source_options: StorageOptions = None,
        target_options: StorageOptions = None,
        confine: bool = True,
    ) -> None:
        self.source = source
        self.target = target
        self.move = move
        self.source_options = source_options
        self.target_options = target_options
        self.confine = confine

    def __call__(self, step_execution: StepExecution) -> Any:
        source = render(self.source, step_execution, confine=self.confine)
        target = render(self.target, step_execution, confine=self.confine)
        digest = copy_file(
            source,
            target,
            move=self.move,
            source_options=self.source_options,
            target_options=self.target_options,
        )
        step_execution.context["transfer.target"] = target
        if digest:
            step_execution.context["transfer.sha256"] = digest
        return None
