"""Readers and writers: in memory, SQL, flat files, Parquet.

Names load on first use (``batchline._lazy``), so importing this package costs nothing
until one is touched.
"""

import typing as _typing

from batchline import _lazy

_EXPORTS: dict[str, str] = {
    "ChecksumTask": "batchline.items.files.checksums",
    "Chunk": "batchline.items.base",
    "CompositeWriter": "batchline.items.composite",
    "CsvRecordReader": "batchline.items.files.records",
    "CursorReader": "batchline.items.sql_readers",
    "DelimitedReader": "batchline.items.files.delimited",
    "DelimitedWriter": "batchline.items.files.delimited",
    "Field": "batchline.items.files.mapping",
    "FixedWidthReader": "batchline.items.files.fixed_width",
    "FixedWidthWriter": "batchline.items.files.fixed_width",
    "ItemProcessor": "batchline.items.base",
    "ItemReader": "batchline.items.base",
    "ItemStream": "batchline.items.base",
    "ItemWriter": "batchline.items.base",
    "IterableReader": "batchline.items.base",
    "JsonLinesReader": "batchline.items.files.jsonl",
    "JsonLinesWriter": "batchline.items.files.jsonl",
    "KeysetReader": "batchline.items.sql_readers",
    "ListMapper": "batchline.items.files.mapping",
    "ListReader": "batchline.items.memory",
    "ListWriter": "batchline.items.memory",
    "MergeTask": "batchline.items.files.merge",
    "MySqlLoadDataWriter": "batchline.items.mysql_load",
    "ParquetReader": "batchline.items.parquet",
    "ParquetWriter": "batchline.items.parquet",
    "PostgresCopyWriter": "batchline.items.postgres_copy",
    "RecordMapper": "batchline.items.files.mapping",
    "SqlInsertWriter": "batchline.items.sql",
    "SqlWriter": "batchline.items.sql_writers",
    "TransferTask": "batchline.items.files.transfer",
    "VerifyChecksumTask": "batchline.items.files.checksums",
    "render": "batchline.items.files.templates",
}

__all__ = [
    "ChecksumTask",
    "Chunk",
    "CompositeWriter",
    "CsvRecordReader",
    "CursorReader",
    "DelimitedReader",
    "DelimitedWriter",
    "Field",
    "FixedWidthReader",
    "FixedWidthWriter",
    "ItemProcessor",
    "ItemReader",
    "ItemStream",
    "ItemWriter",
    "IterableReader",
    "JsonLinesReader",
    "JsonLinesWriter",
    "KeysetReader",
    "ListMapper",
    "ListReader",
    "ListWriter",
    "MergeTask",
    "MySqlLoadDataWriter",
    "ParquetReader",
    "ParquetWriter",
    "PostgresCopyWriter",
    "RecordMapper",
    "SqlInsertWriter",
    "SqlWriter",
    "TransferTask",
    "VerifyChecksumTask",
    "render",
]

if _typing.TYPE_CHECKING:
    from batchline.items.base import (
        Chunk,
        ItemProcessor,
        ItemReader,
        ItemStream,
        ItemWriter,
        IterableReader,
    )
    from batchline.items.composite import CompositeWriter
    from batchline.items.files.checksums import ChecksumTask, VerifyChecksumTask
    from batchline.items.files.delimited import DelimitedReader, DelimitedWriter
    from batchline.items.files.fixed_width import FixedWidthReader, FixedWidthWriter
    from batchline.items.files.jsonl import JsonLinesReader, JsonLinesWriter
    from batchline.items.files.mapping import Field, ListMapper, RecordMapper
    from batchline.items.files.merge import MergeTask
    from batchline.items.files.records import CsvRecordReader
    from batchline.items.files.templates import render
    from batchline.items.files.transfer import TransferTask
    from batchline.items.memory import ListReader, ListWriter
    from batchline.items.mysql_load import MySqlLoadDataWriter
    from batchline.items.parquet import ParquetReader, ParquetWriter
    from batchline.items.postgres_copy import PostgresCopyWriter
    from batchline.items.sql import SqlInsertWriter
    from batchline.items.sql_readers import CursorReader, KeysetReader
    from batchline.items.sql_writers import SqlWriter
else:
    __getattr__, __dir__ = _lazy.exports(__name__, _EXPORTS, __all__)
