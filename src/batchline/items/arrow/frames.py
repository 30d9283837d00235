"""Processors written against pandas or polars, for columnar steps: the batch goes in as a
DataFrame and the frame that comes back becomes a batch again. pandas and polars are imported
only here, when such a processor runs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class pandas_processor:
    """``fn(DataFrame) -> DataFrame | None`` as a columnar processor (``batch.to_pandas()``:
    Arrow shares the memory where the column types allow)."""

    def __init__(self, fn: Callable[[Any], Any]) -> None:
        self.fn = fn

    def process(self, batch: Any) -> Any:
        return self.fn(batch.to_pandas())


class polars_processor:
    """``fn(polars.DataFrame) -> polars.DataFrame | None`` as a columnar processor
    (``polars.from_arrow``: no copy for most column types)."""

    def __init__(self, fn: Callable[[Any], Any]) -> None:
        self.fn = fn

    def process(self, batch: Any) -> Any:
        try:
            import polars
        except ImportError:
            from batchline.errors import ConfigurationError

            raise ConfigurationError("polars_processor needs polars: pip install polars") from None
        return self.fn(polars.from_arrow(batch))
