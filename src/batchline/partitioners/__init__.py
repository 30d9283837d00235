"""Built-in partitioners, none of which loads every key into memory, and their readers.

Each returns the partitions' first contexts; a worker step's reader factory reads its slice from
the context keys named in ``ranges`` (``partition.min``, ...) and ``files`` (``partition.file``,
...), or uses the matching reader's ``for_partition``.

Names load on first use (``batchline._lazy``), so importing this package costs nothing
until one is touched.
"""

import typing as _typing

from batchline import _lazy

_EXPORTS: dict[str, str] = {
    "FileRangePartitioner": "batchline.partitioners.files",
    "FilesPartitioner": "batchline.partitioners.files",
    "IntegerRangePartitioner": "batchline.partitioners.ranges",
    "KeyRangePartitioner": "batchline.partitioners.ranges",
    "LineRangeReader": "batchline.partitioners.files",
    "TablePartitioner": "batchline.partitioners.table",
    "TableRangeReader": "batchline.partitioners.table",
}

__all__ = [
    "FileRangePartitioner",
    "FilesPartitioner",
    "IntegerRangePartitioner",
    "KeyRangePartitioner",
    "LineRangeReader",
    "TablePartitioner",
    "TableRangeReader",
]

if _typing.TYPE_CHECKING:
    from batchline.partitioners.files import FileRangePartitioner, FilesPartitioner, LineRangeReader
    from batchline.partitioners.ranges import IntegerRangePartitioner, KeyRangePartitioner
    from batchline.partitioners.table import TablePartitioner, TableRangeReader
else:
    __getattr__, __dir__ = _lazy.exports(__name__, _EXPORTS, __all__)
