"""Item reader, processor and writer protocols, and adapters for plain Python objects.

A reader returns one item per ``read()`` and None at the end. A writer gets the chunk's items and
the Chunk (its transaction's connection, its number, the step execution). Either may also be an
ItemStream: ``open(context)`` restores its position, ``update(context)`` records it before each
commit, ``close()`` releases it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, runtime_checkable

from batchline.errors import ConfigurationError, ItemReadError
from batchline.model import ExecutionContext

if TYPE_CHECKING:
    from batchline.model import StepExecution

T = TypeVar("T")
R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)
I_co = TypeVar("I_co", covariant=True)
I_contra = TypeVar("I_contra", contravariant=True)


@runtime_checkable
class ItemReader(Protocol[I_co]):
    def read(self) -> I_co | None: ...


@runtime_checkable
class ItemProcessor(Protocol[I_contra, R_co]):
    def process(self, item: I_contra) -> R_co | None: ...


@dataclass(slots=True)
class Chunk:
    """What a writer sees besides its items: the transaction's connection and where it is."""

    number: int
    connection: Any
    step_execution: StepExecution


@runtime_checkable
class ItemWriter(Protocol[I_contra]):
    def write(self, items: Sequence[I_contra], chunk: Chunk) -> None: ...


@runtime_checkable
class ItemStream(Protocol):
    """A reader or writer with state: ``open`` restores it, ``update`` records it just before
    each commit, ``close`` releases it. A stream may also have ``complete()``, called once the
    step has completed and never otherwise: where a writer finishes its output (a footer)."""

    def open(self, context: ExecutionContext) -> None: ...

    def update(self, context: ExecutionContext) -> None: ...

    def close(self) -> None: ...


class IterableReader(Generic[T]):
    """Reads any iterable; restarts by skipping the items counted as read at the last commit.

    A re-iterable (list, range) is iterated afresh at each open. A one-shot iterator (a generator)
    is accepted only from a factory, which makes a fresh one for every execution.
    """

    def __init__(self, items: Iterable[T], name: str = "reader") -> None:
        self._source = items
        self._key = f"{name}.count"
        self._iterator: Iterator[T] | None = None
        self._count = 0

    def open(self, context: ExecutionContext) -> None:
        self._iterator = iter(self._source)
        self._count = int(context.get(self._key, 0))
        for _ in range(self._count):
            if next(self._iterator, _END) is _END:
                break

    def read(self) -> T | None:
        if self._iterator is None:
            self.open(ExecutionContext())
        assert self._iterator is not None
        item = next(self._iterator, _END)
        if item is _END:
            return None
        self._count += 1
        if item is None:  # None means the end of the input to the step: a None item cannot pass
            raise ItemReadError(f"item {self._count} of the iterable is None")
        return item  # type: ignore[return-value]

    def update(self, context: ExecutionContext) -> None:
        context[self._key] = self._count

    def close(self) -> None:
        self._iterator = None


_END = object()


class CallableProcessor(Generic[T, R]):
    def __init__(self, fn: Callable[[T], R | None]) -> None:
        # The function itself serves as the bound method: no extra call per item.
        self.process: Callable[[T], R | None] = fn


class CallableWriter(Generic[T]):
    """A function of (items) or (items, chunk) used as a writer."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self._fn = fn
        self._wants_chunk = _arity(fn) >= 2

    def write(self, items: Sequence[T], chunk: Chunk) -> None:
        if self._wants_chunk:
            self._fn(items, chunk)
        else:
            self._fn(items)


def _arity(fn: Callable[..., Any]) -> int:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return 1
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return 2
    return sum(1 for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD))


ReaderSpec = Any  # ItemReader | Iterable | Callable[[StepExecution], ItemReader | Iterable]


def resolve_reader(spec: ReaderSpec, step_execution: StepExecution) -> ItemReader[Any]:
    """A fresh reader for one step execution, from a reader, an iterable, or a factory."""
    if isinstance(spec, ItemReader) and not isinstance(spec, type):
        return spec
    if isinstance(spec, Iterable) and not isinstance(spec, str | bytes):
        if iter(spec) is spec:
            raise ConfigurationError(
                "a generator or iterator can be read only once, so a restart would find it "
                "empty: pass a list, or a factory (a callable taking the StepExecution) that "
                "returns a fresh one"
            )
        return IterableReader(spec)
    if callable(spec):
        made = spec(step_execution)
        if made is None or isinstance(made, str | bytes):
            raise ConfigurationError(
                f"reader factory {_name(spec)} returned {made!r}, not a reader or iterable"
            )
        if isinstance(made, Iterable) and not isinstance(made, ItemReader):
            return IterableReader(made)
        return resolve_reader(made, step_execution)
    raise ConfigurationError(f"reader {spec!r} is neither an ItemReader, an iterable nor a factory")


def as_processor(spec: Any) -> ItemProcessor[Any, Any] | None:
    if spec is None or isinstance(spec, ItemProcessor):
        return spec
    if callable(spec):
        return CallableProcessor(spec)
    raise ConfigurationError(f"processor {spec!r} is neither an ItemProcessor nor a callable")


def as_writer(spec: Any) -> ItemWriter[Any]:
    if isinstance(spec, ItemWriter):
        return spec
    if callable(spec):
        return CallableWriter(spec)
    raise ConfigurationError(f"writer {spec!r} is neither an ItemWriter nor a callable")


def _name(fn: Any) -> str:
    return getattr(fn, "__qualname__", repr(fn))
