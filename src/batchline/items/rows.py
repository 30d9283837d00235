"""Turning items into database rows: mappings, dataclasses, objects, sequences."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from operator import attrgetter, itemgetter
from typing import Any

from batchline.errors import ConfigurationError


def as_dict(item: Any, columns: Sequence[str] | None = None) -> dict[str, Any]:
    """The item as a column -> value dict (only ``columns`` when given)."""
    if isinstance(item, Mapping):
        return {c: item[c] for c in columns} if columns else dict(item)
    if dataclasses.is_dataclass(item) and not isinstance(item, type):
        names = columns or [f.name for f in dataclasses.fields(item)]
        return {c: getattr(item, c) for c in names}
    if isinstance(item, list | tuple):
        if not columns or len(columns) != len(item):
            raise ConfigurationError(
                f"a {type(item).__name__} item of {len(item)} values needs as many column names"
            )
        return dict(zip(columns, item, strict=True))
    if columns:
        return {c: getattr(item, c) for c in columns}
    try:
        return dict(vars(item))
    except TypeError:
        raise ConfigurationError(f"cannot turn a {type(item).__name__} into a row") from None


def tuple_getter(sample: Any, columns: Sequence[str] | None) -> Callable[[Any], Sequence[Any]]:
    """A fast function from items shaped like ``sample`` to tuples of values in column order."""
    if isinstance(sample, list | tuple):
        return _same
    if not columns:
        raise ConfigurationError(
            f"{type(sample).__name__} items need the column names to take their values in order"
        )
    if isinstance(sample, Mapping):
        get: Callable[[Any], Any] = itemgetter(*columns)
    else:
        get = attrgetter(*columns)
    if len(columns) == 1:
        return lambda item: (get(item),)
    return get


def _same(item: Any) -> Sequence[Any]:
    return item  # type: ignore[no-any-return]
