"""Merging partition output files into one: the header once, the parts removed once verified.

The merge writes ``<target>.merging``, checks it (its SHA-256 and line count against what was
read from the parts), renames it to the target, and only then removes the parts. Run again after
a crash it does the same work again, or, when the target exists and the parts are gone, nothing:
it is safe to restart at any point.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from batchline.errors import BatchlineError, ConfigurationError
from batchline.items.files.storage import StorageOptions, filesystem
from batchline.items.files.templates import render
from batchline.model import StepExecution


class MergeError(BatchlineError):
    """The parts disagree (different headers) or the merged file does not verify."""


@dataclass(frozen=True)
class MergeResult:
    target: str
    parts: list[str]
    lines: int  # data lines, headers excluded
    sha256: str


def merge_files(
    parts: Sequence[str],
    target: str,
    *,
    header_lines: int = 1,
    remove_parts: bool = True,
    storage_options: StorageOptions = None,
) -> MergeResult:
    """Concatenate ``parts`` (in the order given) into ``target``, keeping the first header."""
    fs, inner = filesystem(target, storage_options)
    names = [filesystem(p, storage_options)[1] for p in parts]
    present = [p for p in names if fs.exists(p)]
    if not present:
        if fs.exists(inner):
            return MergeResult(target, [], -1, "")  # merged and cleaned up by an earlier run
        raise ConfigurationError(f"merge into {target}: none of the parts exists")
    if len(present) < len(names):
        missing = [p for p in names if p not in present]
        raise MergeError(f"merge into {target}: parts missing: {missing}")
    temporary = f"{inner}.merging"
    digest = hashlib.sha256()
    lines = 0
    header: list[bytes] | None = None
    with fs.open(temporary, "wb") as out:
        for part in names:
            with fs.open(part, "rb") as f:
                head = [f.readline() for _ in range(header_lines)]
                if header is None:
                    header = head
                    out.write(b"".join(head))
                    digest.update(b"".join(head))
                elif head != header:
                    raise MergeError(
                        f"merge into {target}: {part} has header {head!r}, not {header!r}"
                    )
                for line in f:
                    out.write(line)
                    digest.update(line)
                    lines += 1
    expected = digest.hexdigest()
    check = hashlib.sha256()
    with fs.open(temporary, "rb") as f:
        while block := f.read(1 << 20):
            check.update(block)
    if check.hexdigest() != expected:
        raise MergeError(f"merge into {target}: the merged file does not read back as written")
    fs.mv(temporary, inner)
    if remove_parts:
        for part in names:
            fs.rm(part)
    return MergeResult(target, list(parts), lines, expected)


class MergeTask:
    """A simple-step task: merge the files matching ``pattern`` (a glob, sorted) into ``target``.

    Both are path templates (see templates.py), confined to their folder unless
    ``confine=False``. The result is recorded in the step's context.
    """

    def __init__(
        self,
        pattern: str,
        target: str,
        *,
        header_lines: int = 1,
        remove_parts: bool = True,
        storage_options: StorageOptions = None,
        confine: bool = True,
    ) -> None:
        self.pattern = pattern
        self.target = target
        self.header_lines = header_lines
        self.remove_parts = remove_parts
        self.storage_options = storage_options
        self.confine = confine

    def __call__(self, step_execution: StepExecution) -> Any:
        pattern = render(self.pattern, step_execution, confine=self.confine)
        target = render(self.target, step_execution, confine=self.confine)
        fs, inner = filesystem(pattern, self.storage_options)
        protocol = pattern.split("://", 1)[0] + "://" if "://" in pattern else ""
        parts = [f"{protocol}{p}" for p in sorted(fs.glob(inner))]
        _, target_inner = filesystem(target, self.storage_options)
        parts = [p for p in parts if filesystem(p)[1] != target_inner]
        if not parts and not fs.exists(target_inner):
            raise ConfigurationError(f"merge: no file matches {pattern}")
        result = merge_files(
            parts,
            target,
            header_lines=self.header_lines,
            remove_parts=self.remove_parts,
            storage_options=self.storage_options,
        )
        step_execution.context["merge.target"] = target
        step_execution.context["merge.parts"] = len(result.parts)
        return None
