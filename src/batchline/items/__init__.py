"""Readers and writers: in memory, SQL, flat files, Parquet."""

from batchline.items.base import (
    Chunk,
    ItemProcessor,
    ItemReader,
    ItemStream,
    ItemWriter,
    IterableReader,
)
from batchline.items.files import (
    ChecksumTask,
    DelimitedReader,
    DelimitedWriter,
    Field,
    FixedWidthReader,
    FixedWidthWriter,
    JsonLinesReader,
    JsonLinesWriter,
    ListMapper,
    MergeTask,
    RecordMapper,
    TransferTask,
    VerifyChecksumTask,
    render,
)
from batchline.items.files.records import CsvRecordReader
from batchline.items.memory import ListReader, ListWriter
from batchline.items.parquet import ParquetReader, ParquetWriter
from batchline.items.postgres_copy import PostgresCopyWriter
from batchline.items.sql import SqlInsertWriter
from batchline.items.sql_readers import CursorReader, KeysetReader
from batchline.items.sql_writers import SqlWriter

__all__ = [
    "ChecksumTask",
    "Chunk",
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
