"""Mapping records (lists of strings, or JSON objects) to items: dicts, lists, dataclasses, classes.

A RecordMapper says, per field, where the value comes from (header name or position), how its
text becomes a value (int, Decimal, date with a format, bool with its words...), its default and
whether it is required. For a dataclass the fields, types and defaults come from the class
itself; ``Field`` entries override them. A class with ``model_validate`` (a pydantic model) gets
the named values and does its own conversion; nothing here imports pydantic.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any, Generic, Protocol, TypeVar

from batchline.errors import ConfigurationError

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


class _Missing(enum.Enum):
    MISSING = "MISSING"


MISSING = _Missing.MISSING
_TRUE = ("true", "t", "yes", "y", "1")
_FALSE = ("false", "f", "no", "n", "0")


class FieldError(ValueError):
    """A value that could not be mapped; the reader adds the file and line."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclasses.dataclass(frozen=True, slots=True)
class Field:
    """One attribute of the item: where its value is, how to convert it, what if it is absent.

    ``type`` is int, float, Decimal, date, datetime, bool, str, an Enum, or any callable taking
    the text. ``format`` is a strptime format for dates, or ``"yes/no"`` words for a bool.
    """

    name: str
    source: str | int | None = None
    type: Any = None
    format: str | None = None
    default: Any = MISSING
    required: bool = True


def converter(kind: Any, fmt: str | None = None) -> Callable[[str], Any]:
    """A function from text to ``kind``, raising ValueError with a message that shows the text."""
    if kind is None or kind is str or kind is Any:
        return _identity
    if kind is bool:
        return _bool_parser(fmt)
    if kind is dt.datetime:
        return _strptime(fmt) if fmt else _checked(dt.datetime.fromisoformat, "a datetime")
    if kind is dt.date:
        if fmt:
            parse = _strptime(fmt)
            return lambda text: parse(text).date()
        return _checked(dt.date.fromisoformat, "a date YYYY-MM-DD")
    if kind is Decimal:
        return _decimal
    if kind is int:
        return _checked(int, "an integer")
    if kind is float:
        return _checked(float, "a number")
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return _checked(kind, f"one of {[m.value for m in kind]}")
    if callable(kind):
        return typing.cast(Callable[[str], Any], kind)
    raise ConfigurationError(f"cannot convert text to {kind!r}: give a callable as the type")


def _identity(text: str) -> str:
    return text


def _checked(fn: Callable[[str], Any], what: str) -> Callable[[str], Any]:
    def convert(text: str) -> Any:
        try:
            return fn(text.strip())
        except ValueError:
            raise ValueError(f"{text!r} is not {what}") from None

    return convert


def _decimal(text: str) -> Decimal:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise ValueError(f"{text!r} is not a decimal number") from None
    if not value.is_finite():
        raise ValueError(f"{text!r} is not a finite decimal number")
    return value


def _strptime(fmt: str) -> Callable[[str], dt.datetime]:
    def parse(text: str) -> dt.datetime:
        try:
            return dt.datetime.strptime(text.strip(), fmt)
        except ValueError:
            raise ValueError(f"{text!r} does not match the format {fmt!r}") from None

    return parse


def _bool_parser(fmt: str | None) -> Callable[[str], bool]:
    if fmt:
        yes, _, no = fmt.partition("/")
        true, false = {yes.strip().lower()}, {no.strip().lower()}
    else:
        true, false = set(_TRUE), set(_FALSE)

    def parse(text: str) -> bool:
        low = text.strip().lower()
        if low in true:
            return True
        if low in false:
            return False
        raise ValueError(f"{text!r} is not a boolean ({'/'.join(sorted(true | false))})")

    return parse


class Mapper(Protocol[T_co]):
    """Turns records into items. ``bind`` is called once the field names are known."""

    def bind(self, names: Sequence[str] | None) -> Callable[[list[str]], T_co]: ...

    def from_mapping(self, record: Mapping[str, Any]) -> T_co: ...


class DictMapper:
    """The default: a dict of header name to text (a list when the file has no names)."""

    def bind(self, names: Sequence[str] | None) -> Callable[[list[str]], Any]:
        if names is None:
            return as_list
        keys = tuple(names)
        return lambda values: dict(zip(keys, values, strict=False))

    def from_mapping(self, record: Mapping[str, Any]) -> Any:
        return record


class ListMapper:
    """Records as lists of strings, whatever the names: the cheapest item."""

    def bind(self, names: Sequence[str] | None) -> Callable[[list[str]], Any]:
        return as_list

    def from_mapping(self, record: Mapping[str, Any]) -> Any:
        return list(record.values())


def as_list(values: list[str]) -> list[str]:
    """The record as it is (ListMapper's mapping; the reader skips the call for it)."""
    return values


@dataclasses.dataclass(slots=True)
class _Plan:
    name: str
    label: str
    source: str | int
    convert: Callable[[str], Any]
    default: Any
    required: bool
    optional: bool  # the type admits None: an empty value becomes None


class RecordMapper(Generic[T]):
    """Maps each record to ``target(**fields)``: a dataclass, a class, a function, or a model."""

    def __init__(self, target: Callable[..., T], *fields: Field, empty_is_missing: bool = True):
        self.target = target
        self.fields = fields
        self.empty_is_missing = empty_is_missing
        self._validate = getattr(target, "model_validate", None)
        self._plans = self._plan()

    def _plan(self) -> list[_Plan]:
        declared: dict[str, Field] = {}
        hints: dict[str, Any] = {}
        if dataclasses.is_dataclass(self.target) and isinstance(self.target, type):
            try:
                hints = typing.get_type_hints(self.target)
            except Exception:  # unresolvable annotations: treat them as text
                hints = {}
            for attr in dataclasses.fields(self.target):
                if not attr.init:
                    continue
                default: Any = MISSING
                if attr.default is not dataclasses.MISSING:
                    default = attr.default
                elif attr.default_factory is not dataclasses.MISSING:
                    default = attr.default_factory()
                declared[attr.name] = Field(attr.name, default=default, required=default is MISSING)
        elif not self.fields and self._validate is None:
            raise ConfigurationError(
                f"{_name(self.target)} is not a dataclass: list its fields with Field(...)"
            )
        for f in self.fields:
            base = declared.get(f.name)
            if base is not None and f.default is MISSING and base.default is not MISSING:
                f = dataclasses.replace(f, default=base.default, required=False)
            declared[f.name] = f
        plans = []
        for f in declared.values():
            kind = f.type if f.type is not None else hints.get(f.name)
            inner, optional = _unwrap_optional(kind)
            source = f.source if f.source is not None else f.name
            label = source if isinstance(source, str) else f.name
            required = f.required and f.default is MISSING and not optional
            convert = converter(inner, f.format)
            plans.append(_Plan(f.name, label, source, convert, f.default, required, optional))
        return plans

    def bind(self, names: Sequence[str] | None) -> Callable[[list[str]], T]:
        if self._validate is not None and not self.fields:
            if names is None:
                raise ConfigurationError(f"{_name(self.target)} needs field names (a header)")
            keys = tuple(names)
            return lambda values: self.from_mapping(dict(zip(keys, values, strict=False)))
        index = {name: i for i, name in enumerate(names or ())}
        positions: list[tuple[_Plan, int | None]] = []
        for plan in self._plans:
            if isinstance(plan.source, int):
                positions.append((plan, plan.source))
                continue
            position = index.get(plan.source)
            if position is None and plan.required:
                raise ConfigurationError(
                    f"{_name(self.target)}.{plan.name}: no column {plan.source!r} "
                    f"in {list(names or [])}"
                )
            positions.append((plan, position))
        value, build = self._value, self._build

        def map_values(values: list[str]) -> T:
            count = len(values)
            return build(
                {
                    plan.name: value(plan, values[at] if at is not None and at < count else None)
                    for plan, at in positions
                }
            )

        return map_values

    def from_mapping(self, record: Mapping[str, Any]) -> T:
        if self._validate is not None and not self.fields:
            return self._build(dict(record))
        kwargs: dict[str, Any] = {}
        for plan in self._plans:
            key = plan.source if isinstance(plan.source, str) else plan.name
            kwargs[plan.name] = self._value(plan, record.get(key))
        return self._build(kwargs)

    def _value(self, plan: _Plan, raw: Any) -> Any:
        if raw is None or (self.empty_is_missing and raw == ""):
            if plan.default is not MISSING:
                return plan.default
            if plan.optional or not plan.required:
                return None
            raise FieldError(plan.label, "a value is required")
        if not isinstance(raw, str):
            return raw  # JSON already typed it
        try:
            return plan.convert(raw)
        except (ValueError, TypeError, ArithmeticError) as exc:
            raise FieldError(plan.label, str(exc) or f"{raw!r} is not valid") from None

    def _build(self, kwargs: dict[str, Any]) -> T:
        if self._validate is not None:
            try:
                return typing.cast(T, self._validate(kwargs))
            except Exception as exc:  # a pydantic ValidationError: name its first field
                errors = getattr(exc, "errors", None)
                loc = errors()[0].get("loc", ("?",)) if callable(errors) else ("?",)
                message = str(exc).splitlines()[-1].strip() if str(exc) else type(exc).__name__
                raise FieldError(str(loc[0]) if loc else "?", message) from None
        try:
            return self.target(**kwargs)
        except (TypeError, ValueError) as exc:
            raise FieldError(_first_field(exc, kwargs), str(exc)) from None


def _first_field(exc: Exception, kwargs: dict[str, Any]) -> str:
    text = str(exc)
    return next((name for name in kwargs if name in text), "?")


def _unwrap_optional(kind: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(kind)
    if origin is typing.Union or origin is types.UnionType:
        args = [a for a in typing.get_args(kind) if a is not type(None)]
        if len(args) == 1:
            return args[0], len(args) < len(typing.get_args(kind))
    return kind, False


def _name(target: Any) -> str:
    return getattr(target, "__qualname__", repr(target))


def as_mapper(spec: Any) -> Mapper[Any]:
    """None -> DictMapper; a Mapper as is; a class or function -> RecordMapper."""
    if spec is None:
        return DictMapper()
    if hasattr(spec, "bind") and hasattr(spec, "from_mapping"):
        return typing.cast(Mapper[Any], spec)
    if callable(spec):
        return RecordMapper(spec)
    raise ConfigurationError(f"mapper {spec!r} is neither a Mapper nor a class or function")
