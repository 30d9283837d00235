"""Flat files: delimited, fixed-width and JSON Lines readers and writers, restartable by byte
offset; record mapping; storage through fsspec; checksums, merges, transfers, path templates."""

from batchline.items.files.checksums import (
    ChecksumError,
    ChecksumTask,
    VerifyChecksumTask,
    file_digest,
    verify_checksum,
    verify_ok_marker,
    write_checksum,
    write_ok_marker,
)
from batchline.items.files.delimited import DelimitedReader, DelimitedWriter
from batchline.items.files.fixed_width import FixedWidthReader, FixedWidthWriter
from batchline.items.files.jsonl import JsonLinesReader, JsonLinesWriter
from batchline.items.files.mapping import DictMapper, Field, ListMapper, RecordMapper
from batchline.items.files.merge import MergeError, MergeTask, merge_files
from batchline.items.files.templates import render
from batchline.items.files.transfer import TransferError, TransferTask, copy_file

__all__ = [
    "ChecksumError",
    "ChecksumTask",
    "DelimitedReader",
    "DelimitedWriter",
    "DictMapper",
    "Field",
    "FixedWidthReader",
    "FixedWidthWriter",
    "JsonLinesReader",
    "JsonLinesWriter",
    "ListMapper",
    "MergeError",
    "MergeTask",
    "RecordMapper",
    "TransferError",
    "TransferTask",
    "VerifyChecksumTask",
    "copy_file",
    "file_digest",
    "merge_files",
    "render",
    "verify_checksum",
    "verify_ok_marker",
    "write_checksum",
    "write_ok_marker",
]
