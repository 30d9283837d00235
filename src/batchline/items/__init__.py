"""Readers and writers."""

from batchline.items.base import (
    Chunk,
    ItemProcessor,
    ItemReader,
    ItemStream,
    ItemWriter,
    IterableReader,
)
from batchline.items.memory import ListWriter
from batchline.items.sql import SqlInsertWriter

__all__ = [
    "Chunk",
    "ItemProcessor",
    "ItemReader",
    "ItemStream",
    "ItemWriter",
    "IterableReader",
    "ListWriter",
    "SqlInsertWriter",
]
