"""Processors written against pandas or polars, for columnar steps: the batch goes in as a
DataFrame and the frame that comes back becomes a batch again. pandas and polars are imported
only here, when such a processor runs."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

_NONE: Mapping[str, Any] = MappingProxyType({})


class pandas_processor:
    """``fn(DataFrame) -> DataFrame | None`` as a columnar processor (``batch.to_pandas()``:
    Arrow shares the memory where the column types allow).

    A column whose pandas dtype ``fn`` left as it came keeps its Arrow type on the way back,
    where pandas would infer another: a decimal's precision from the batch's values,
    ``large_string`` for ``string``, ``null`` for a column of None, and floats for an integer
    column holding nulls (numpy has no null integer), when ``fn`` left its values as they were.
    The batches of a step then share one schema, and 1 is not written back as 1.0."""

    def __init__(self, fn: Callable[[Any], Any]) -> None:
        self.fn = fn

    def process(self, batch: Any) -> Any:
        frame = batch.to_pandas()
        dtypes = frame.dtypes.to_dict()  # before fn, which may change the frame in place
        floats = _integers_as_floats(batch, frame)
        result = self.fn(frame)
        if type(result).__module__.split(".", 1)[0] != "pandas" or not hasattr(result, "columns"):
            return result  # None, a batch, or what as_batches will name as wrong
        rows = _positions(result.index, batch.num_rows) if floats else None
        integers = {
            name: batch.column(name).take(rows)
            for name, was in floats.items()
            if rows is not None and _untouched(result, name, was)
        }
        return pandas_batch(result, batch.schema, dtypes, integers)


def _positions(index: Any, rows: int) -> Any:
    """The result's row labels as positions in the batch (a filter or a sort keeps them), or
    None when they are something else (a groupby's keys, a new index)."""
    import pyarrow as pa

    labels = index.to_numpy()
    if labels.dtype.kind not in "iu" or (
        len(labels) and (labels.min() < 0 or labels.max() >= rows)
    ):
        return None
    return pa.array(labels, pa.int64())


def _integers_as_floats(batch: Any, frame: Any) -> dict[str, Any]:
    """The integer columns pandas holds as floats (they have nulls), as they came in. Only
    while the frame's index is the rows' positions: a row's label then says which value of the
    batch it holds."""
    import pyarrow as pa

    index = frame.index  # a RangeIndex from 0 by 1, told by its attributes (pandas is untyped)
    if not (getattr(index, "start", None) == 0 and getattr(index, "step", None) == 1):
        return {}  # an index pandas' metadata restored: labels are not positions
    return {
        field.name: frame[field.name].copy()
        for i, field in enumerate(batch.schema)
        if pa.types.is_integer(field.type)
        and batch.column(i).null_count
        and batch.schema.get_field_index(field.name) >= 0
    }


def _untouched(result: Any, name: str, was: Any) -> bool:
    """Whether ``result[name]`` holds the values it came in with, row for row (a filter keeps
    the index labels), so floats back to integers gives the values read, not a rounding."""
    column = result.get(name)
    if column is None or getattr(column, "ndim", 1) != 1:
        return False
    try:
        return bool(column.equals(was.reindex(column.index)))
    except ValueError:  # index labels repeated: rows no longer match one to one
        return False


def pandas_batch(
    frame: Any,
    schema: Any = None,
    dtypes: dict[Any, Any] | None = None,
    integers: Mapping[str, Any] = _NONE,
) -> Any:
    """A pandas frame as a record batch. Named index levels (a groupby's keys, ``set_index``)
    become columns again; an unnamed index (what a filter leaves) is dropped, never written as
    ``__index_level_0__``. With the ``schema`` and ``dtypes`` of the batch the frame came from,
    a column left in its dtype gets its type back, and each of the ``integers`` (columns left
    as they came) the Arrow values given for it (see ``pandas_processor``)."""
    import pyarrow as pa

    named = [
        level
        for level, name in enumerate(frame.index.names)
        if name is not None and name not in frame.columns
    ]
    if named:
        frame = frame.reset_index(level=named)
    try:
        batch = pa.RecordBatch.from_pandas(frame, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise ValueError(
            f"the processor's pandas DataFrame cannot be turned into Arrow: {_reason(exc)} "
            "(a column of mixed types? give it one type, e.g. .astype(str))"
        ) from exc
    if schema is None or dtypes is None:
        return batch
    return _types_kept(batch, frame, schema, dtypes, integers)


def _reason(exc: BaseException) -> str:
    # Arrow's pandas errors carry (detail, column) as args; one line, the column last.
    return "; ".join(str(arg) for arg in reversed(exc.args)) if exc.args else str(exc)


def _types_kept(
    batch: Any, frame: Any, schema: Any, dtypes: dict[Any, Any], integers: Mapping[str, Any]
) -> Any:
    import pyarrow as pa

    for index, field in enumerate(batch.schema):
        name = field.name
        if schema.get_field_index(name) < 0 or batch.schema.get_field_index(name) < 0:
            continue  # new, or a name held by several columns: nothing to match it with
        wanted = schema.field(name).type
        if field.type == wanted:
            continue
        if name not in integers and not _inferred_alike(field.type, wanted):
            continue
        column = frame[name]
        if getattr(column, "ndim", 1) != 1 or dtypes.get(name) != column.dtype:
            continue  # fn changed the column's dtype: its new type is what it meant
        try:
            # An integer column: the batch's own values at the rows kept, not pandas' floats
            # cast back (beyond 2**53 a float has already rounded them).
            kept = integers[name] if name in integers else batch.column(index).cast(wanted)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue  # values the old type cannot hold: keep what pandas made of them
        batch = batch.set_column(index, pa.field(name, wanted, field.nullable), kept)
    return batch


def _inferred_alike(inferred: Any, wanted: Any) -> bool:
    """Types pandas may infer for a column of ``wanted`` values it held as objects."""
    import pyarrow as pa

    if pa.types.is_null(inferred) or inferred.id == wanted.id:
        return True
    texts = (pa.types.is_string, pa.types.is_large_string)
    return any(a(inferred) and b(wanted) for a in texts for b in texts)


class polars_processor:
    """``fn(polars.DataFrame) -> polars.DataFrame | polars.LazyFrame | None`` as a columnar
    processor (``polars.from_arrow``: no copy for most column types); a LazyFrame returned is
    collected."""

    def __init__(self, fn: Callable[[Any], Any]) -> None:
        self.fn = fn

    def process(self, batch: Any) -> Any:
        try:
            import polars
        except ImportError:
            from batchline.errors import ConfigurationError

            raise ConfigurationError("polars_processor needs polars: pip install polars") from None
        result = self.fn(polars.from_arrow(batch))
        if isinstance(result, polars.LazyFrame):
            # A query over the frame given, deferred: polars users chain ``frame.lazy()...`` for
            # the optimizer and mean it run; refusing it would only ask for ``.collect()``.
            return result.collect()
        return result
