"""Built-in partitioners, none of which loads every key into memory, and their readers.

Each returns the partitions' first contexts; a worker step's reader factory reads its slice from
the context keys named in ``ranges`` (``partition.min``, ...) and ``files`` (``partition.file``,
...), or uses the matching reader's ``for_partition``.
"""

from batchline.partitioners.files import FileRangePartitioner, FilesPartitioner, LineRangeReader
from batchline.partitioners.ranges import IntegerRangePartitioner, KeyRangePartitioner
from batchline.partitioners.table import TablePartitioner, TableRangeReader

__all__ = [
    "FileRangePartitioner",
    "FilesPartitioner",
    "IntegerRangePartitioner",
    "KeyRangePartitioner",
    "LineRangeReader",
    "TablePartitioner",
    "TableRangeReader",
]
