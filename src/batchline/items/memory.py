"""An in-memory writer, for tests and small jobs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Generic, TypeVar

from batchline.items.base import Chunk

T = TypeVar("T")


class ListWriter(Generic[T]):
    """Appends every written item to ``items``; not transactional (a rolled-back chunk stays)."""

    def __init__(self) -> None:
        self.items: list[T] = []
        self.chunks: list[int] = []

    def write(self, items: Sequence[T], chunk: Chunk) -> None:
        self.items.extend(items)
        self.chunks.append(len(items))

    def __repr__(self) -> str:
        return f"ListWriter({len(self.items)} items)"
