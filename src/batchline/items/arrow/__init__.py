"""Columnar readers and writers (the ``arrow`` extra): record batches for ``.columnar(n)`` steps.

Names load on first use (``batchline._lazy``): pyarrow is imported only when one is touched.
"""

import typing as _typing

from batchline import _lazy

_EXPORTS: dict[str, str] = {
    "ArrowCsvReader": "batchline.items.arrow.readers",
    "ArrowCsvWriter": "batchline.items.arrow.writers",
    "ArrowJsonReader": "batchline.items.arrow.readers",
    "ArrowParquetReader": "batchline.items.arrow.parquet",
    "ArrowParquetWriter": "batchline.items.arrow.parquet",
    "ArrowSqlWriter": "batchline.items.arrow.writers",
    "pandas_processor": "batchline.items.arrow.frames",
    "polars_processor": "batchline.items.arrow.frames",
}
__all__ = [
    "ArrowCsvReader",
    "ArrowCsvWriter",
    "ArrowJsonReader",
    "ArrowParquetReader",
    "ArrowParquetWriter",
    "ArrowSqlWriter",
    "pandas_processor",
    "polars_processor",
]

if _typing.TYPE_CHECKING:
    from batchline.items.arrow.frames import pandas_processor, polars_processor
    from batchline.items.arrow.parquet import ArrowParquetReader, ArrowParquetWriter
    from batchline.items.arrow.readers import ArrowCsvReader, ArrowJsonReader
    from batchline.items.arrow.writers import ArrowCsvWriter, ArrowSqlWriter
else:
    __getattr__, __dir__ = _lazy.exports(__name__, _EXPORTS, __all__)
