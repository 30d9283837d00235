"""Item reader, processor and writer protocols, and adapters for plain Python objects.

A reader returns one item per ``read()`` and None at the end. A writer gets the chunk's items and
the Chunk (its transaction's connection, its number, the step execution). Either may also be an
ItemStream: ``open(context)`` restores its position, ``update(context)`` records it before each
commit, ``close()`` releases it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Iterator, Sequence, Sized
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
    """Returns the next item on each ``read()`` call, and None when there are no more.

    A reader that can resume after a restart is also an ``ItemStream``: it records its position
    in the step's context and finds it again on ``open``."""

    def read(self) -> I_co | None: ...


@runtime_checkable
class ItemProcessor(Protocol[I_contra, R_co]):
    """Turns an item into another, or into None to filter it out.

    A plain function of one argument works too (``StepBuilder.processor(fn)``)."""

    def process(self, item: I_contra) -> R_co | None: ...


@dataclass(slots=True)
class Chunk:
    """What a writer sees besides its items: the transaction's connection and where it is."""

    number: int
    connection: Any
    step_execution: StepExecution


@runtime_checkable
class ItemWriter(Protocol[I_contra]):
    """Writes a chunk's items, inside the chunk's transaction (``chunk.connection``).

    Called once per chunk; the items written are rolled back with the chunk when it fails."""

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

    def estimated_size(self) -> int | None:
        """The length of a list, range or other sized source (the dashboard's progress);
        None for one that cannot tell without reading it."""
        return len(self._source) if isinstance(self._source, Sized) else None

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
        self._wants_chunk = arity(fn) >= 2

    def write(self, items: Sequence[T], chunk: Chunk) -> None:
        made = self._fn(items, chunk) if self._wants_chunk else self._fn(items)
        if made is not None and callable(getattr(made, "write", None)):
            # ``lambda s: CsvWriter(...)`` is taken for a writer function (only a parameter
            # named step makes a factory): each chunk would make a writer and drop it, and
            # its items would count as written though none was.
            raise ConfigurationError(
                f"writer function {_name(self._fn)} returned {made!r} instead of writing: a "
                "function making a writer names its one parameter step (lambda step: ...) "
                "or is passed with .writer(..., factory=True)"
            )


def reader_size(reader: Any) -> int | None:
    """What a reader (or a reader spec such as a list) says its input holds: its
    ``estimated_size()``, or its length; None when it cannot tell or telling fails."""
    method = getattr(reader, "estimated_size", None)
    try:
        if callable(method):
            size = method()
            return int(size) if size is not None else None
        if isinstance(reader, Sized) and not isinstance(reader, str | bytes):
            return len(reader)
    except Exception:  # a size is a nicety: it never fails the step
        return None
    return None


def arity(fn: Callable[..., Any]) -> int:
    """How many positional arguments ``fn`` needs (2 when it takes *args). A parameter with a
    default is never filled by the framework: ``lambda items, out=out: ...`` binds ``out``."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return 1
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return 2
    return sum(1 for p in params if _positional(p) and p.default is p.empty)


def _positional(param: inspect.Parameter) -> bool:
    return param.kind in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD)


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


class WriterFactory:
    """Makes a fresh writer for each step execution (and so for each thread partition):
    ``make(step_execution)`` returns an ItemWriter or a function of (items[, chunk])."""

    def __init__(self, make: Callable[[StepExecution], Any]) -> None:
        self.make = make

    def __repr__(self) -> str:
        return f"WriterFactory({_name(self.make)})"


WriterSpec = Any  # ItemWriter | Callable[(items[, chunk])] | WriterFactory

# The one parameter of a function passed to ``.writer`` that makes it a factory, not a writer.
_FACTORY_PARAMETERS = frozenset({"step", "step_execution", "se"})


def as_writer(spec: Any, *, factory: bool | None = None) -> ItemWriter[Any] | WriterFactory:
    """A writer, a function of (items) or (items, chunk), or a factory: ``factory=True``, or a
    function whose one parameter is named ``step``, ``step_execution`` or ``se`` (or is
    annotated StepExecution), such as ``lambda step: DelimitedWriter(...)``."""
    if isinstance(spec, WriterFactory):
        return spec
    if factory or (factory is None and callable(spec) and _takes_step(spec)):
        if not callable(spec):
            raise ConfigurationError(f"writer factory {spec!r} is not callable")
        return WriterFactory(spec)
    if isinstance(spec, ItemWriter) and not isinstance(spec, type):
        return spec
    if callable(spec):
        return CallableWriter(spec)
    raise ConfigurationError(f"writer {spec!r} is neither an ItemWriter nor a callable")


def _takes_step(fn: Any) -> bool:
    if isinstance(fn, ItemWriter) and not isinstance(fn, type):
        return False
    try:
        # A parameter with a default is the caller's own (``lambda step, n=n: ...``).
        params = [p for p in inspect.signature(fn).parameters.values() if p.default is p.empty]
    except (TypeError, ValueError):
        return False
    if len(params) != 1 or not _positional(params[0]):
        return False
    annotation = params[0].annotation
    named = getattr(annotation, "__name__", annotation)
    return params[0].name in _FACTORY_PARAMETERS or named == "StepExecution"


def resolve_writer(spec: WriterSpec, step_execution: StepExecution) -> ItemWriter[Any]:
    """The writer for one step execution: the writer itself, or a fresh one from its factory."""
    if not isinstance(spec, WriterFactory):
        return spec  # type: ignore[no-any-return]
    made = spec.make(step_execution)
    usable = isinstance(made, ItemWriter) or callable(made)
    if not usable or isinstance(made, WriterFactory | type):
        raise ConfigurationError(
            f"writer factory {_name(spec.make)} returned {made!r}, not a writer or a function"
        )
    built = as_writer(made, factory=False)
    assert not isinstance(built, WriterFactory)
    return built


def _name(fn: Any) -> str:
    return getattr(fn, "__qualname__", repr(fn))
