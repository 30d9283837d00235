"""Flat files: delimited, fixed-width and JSON Lines readers and writers, restartable by byte
offset; record mapping; storage through fsspec; checksums, merges, transfers, path templates.

Names load on first use (``batchline._lazy``), so importing this package costs nothing
until one is touched.
"""

import typing as _typing

from batchline import _lazy

_EXPORTS: dict[str, str] = {
    "ChecksumError": "batchline.items.files.checksums",
    "ChecksumTask": "batchline.items.files.checksums",
    "DelimitedReader": "batchline.items.files.delimited",
    "DelimitedWriter": "batchline.items.files.delimited",
    "DictMapper": "batchline.items.files.mapping",
    "Field": "batchline.items.files.mapping",
    "FixedWidthReader": "batchline.items.files.fixed_width",
    "FixedWidthWriter": "batchline.items.files.fixed_width",
    "JsonLinesReader": "batchline.items.files.jsonl",
    "JsonLinesWriter": "batchline.items.files.jsonl",
    "ListMapper": "batchline.items.files.mapping",
    "MergeError": "batchline.items.files.merge",
    "MergeTask": "batchline.items.files.merge",
    "RecordMapper": "batchline.items.files.mapping",
    "TransferError": "batchline.items.files.transfer",
    "TransferTask": "batchline.items.files.transfer",
    "VerifyChecksumTask": "batchline.items.files.checksums",
    "copy_file": "batchline.items.files.transfer",
    "file_digest": "batchline.items.files.checksums",
    "merge_files": "batchline.items.files.merge",
    "render": "batchline.items.files.templates",
    "verify_checksum": "batchline.items.files.checksums",
    "verify_ok_marker": "batchline.items.files.checksums",
    "write_checksum": "batchline.items.files.checksums",
    "write_ok_marker": "batchline.items.files.checksums",
}

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

if _typing.TYPE_CHECKING:
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
else:
    __getattr__, __dir__ = _lazy.exports(__name__, _EXPORTS, __all__)
