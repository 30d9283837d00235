"""Mapping records (lists of strings, or JSON objects) to items: dicts, lists, dataclasses, classes.

A RecordMapper says, per field, where the value comes from (header name or position), how its
text becomes a value (int, Decimal, date with a format, bool with its words...), its default and
whether it is required. For a dataclass or a NamedTuple the fields, types and defaults come from
the class itself; ``Field`` entries override them. A class with ``model_validate`` (a pydantic
model) gets the named values and does its own conversion; nothing here imports pydantic.

The conversion is planned once per target and compiled once per header (``compiled.py``): one
generated function per record shape that converts each field inline and calls the target once.
The per-field reference path (``reference_bind``, ``reference_from_mapping``) stays: the
compiled function hands it any record it does not take in stride, so every error is the
reference's own.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Generic, Protocol, TypeVar

from batchline.errors import ConfigurationError
from batchline.items.files.compiled import FieldPlan, compile_mapping, compile_values, first_field
from batchline.items.files.converters import FieldError, converter

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)

__all__ = [  # converter and FieldError are re-exported: readers and users import them here
    "MISSING",
    "DictMapper",
    "Field",
    "FieldError",
    "ListMapper",
    "Mapper",
    "RecordMapper",
    "as_list",
    "as_mapper",
    "converter",
]


class _Missing(enum.Enum):
    MISSING = "MISSING"


MISSING = _Missing.MISSING


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


class RecordMapper(Generic[T]):
    """Maps each record to ``target(**fields)``: a dataclass, a NamedTuple, a class, a function,
    or a model. ``bind`` compiles one function per header; ``reference_bind`` is the slow,
    field-by-field path it falls back on (and the definition of what a mapping means)."""

    def __init__(self, target: Callable[..., T], *fields: Field, empty_is_missing: bool = True):
        self.target = target
        self.fields = fields
        self.empty_is_missing = empty_is_missing
        self._validate = getattr(target, "model_validate", None)
        self._plans = self._plan()
        self._from_mapping: Callable[[Mapping[str, Any]], T] | None = None
        self.source = ""  # the last compiled function's code, for the curious

    def _plan(self) -> list[FieldPlan]:
        declared: dict[str, Field] = {}
        hints: dict[str, Any] = {}
        target = self.target
        if dataclasses.is_dataclass(target) and isinstance(target, type):
            hints = _hints(target)
            for attr in dataclasses.fields(target):
                if not attr.init:
                    continue
                default: Any = MISSING
                if attr.default is not dataclasses.MISSING:
                    default = attr.default
                elif attr.default_factory is not dataclasses.MISSING:
                    default = attr.default_factory()
                declared[attr.name] = Field(attr.name, default=default, required=default is MISSING)
        elif isinstance(target, type) and issubclass(target, tuple) and hasattr(target, "_fields"):
            hints = _hints(target)  # a NamedTuple
            defaults: dict[str, Any] = getattr(target, "_field_defaults", {})
            for name in target._fields:
                default = defaults.get(name, MISSING)
                declared[name] = Field(name, default=default, required=default is MISSING)
        elif not self.fields and self._validate is None:
            raise ConfigurationError(
                f"{_name(target)} is not a dataclass: list its fields with Field(...)"
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
            plans.append(
                FieldPlan(
                    f.name,
                    label,
                    source,
                    converter(inner, f.format),
                    f.default,
                    required,
                    optional,
                    inner,
                    f.format,
                )
            )
        return plans

    def bind(self, names: Sequence[str] | None) -> Callable[[list[str]], T]:
        """The compiled mapping of records (lists of text) laid out as ``names``."""
        if self._validate is not None and not self.fields:
            return self.reference_bind(names)
        slow = self.reference_bind(names)
        compiled = compile_values(
            list(zip(self._plans, self._positions(names), strict=True)),
            slow,
            self._constructor(),
            empty_is_missing=self.empty_is_missing,
            missing=MISSING,
        )
        self.source = compiled.source
        return compiled.function

    def from_mapping(self, record: Mapping[str, Any]) -> T:
        compiled = self._from_mapping
        if compiled is None:
            if self._validate is not None and not self.fields:
                compiled = self.reference_from_mapping
            else:
                made = compile_mapping(
                    self._plans,
                    self.reference_from_mapping,
                    self._constructor(),
                    empty_is_missing=self.empty_is_missing,
                    missing=MISSING,
                )
                compiled, self.source = made.function, made.source
            self._from_mapping = compiled
        return compiled(record)

    # --- the reference: field by field ------------------------------------------------------

    def reference_bind(self, names: Sequence[str] | None) -> Callable[[list[str]], T]:
        """Field-by-field mapping: what the compiled function must agree with, and its fallback
        for every record it does not take in stride (so errors are always these)."""
        if self._validate is not None and not self.fields:
            if names is None:
                raise ConfigurationError(f"{_name(self.target)} needs field names (a header)")
            keys = tuple(names)
            return lambda values: self.reference_from_mapping(dict(zip(keys, values, strict=False)))
        positions = list(zip(self._plans, self._positions(names), strict=True))
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

    def reference_from_mapping(self, record: Mapping[str, Any]) -> T:
        if self._validate is not None and not self.fields:
            return self._build(dict(record))
        kwargs: dict[str, Any] = {}
        for plan in self._plans:
            key = plan.source if isinstance(plan.source, str) else plan.name
            kwargs[plan.name] = self._value(plan, record.get(key))
        return self._build(kwargs)

    def _positions(self, names: Sequence[str] | None) -> list[int | None]:
        index = {name: i for i, name in enumerate(names or ())}
        positions: list[int | None] = []
        for plan in self._plans:
            if isinstance(plan.source, int):
                positions.append(plan.source)
                continue
            position = index.get(plan.source)
            if position is None and plan.required:
                raise ConfigurationError(
                    f"{_name(self.target)}.{plan.name}: no column {plan.source!r} "
                    f"in {list(names or [])}"
                )
            positions.append(position)
        return positions

    def _constructor(self) -> tuple[Callable[..., Any], bool]:
        """What the compiled function calls, and whether it takes keywords (else one dict)."""
        if self._validate is not None:
            return self._build, False
        return self.target, True

    def _value(self, plan: FieldPlan, raw: Any) -> Any:
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
            raise FieldError(first_field(exc, kwargs), str(exc)) from None


def _unwrap_optional(kind: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(kind)
    if origin is typing.Union or origin is types.UnionType:
        args = [a for a in typing.get_args(kind) if a is not type(None)]
        if len(args) == 1:
            return args[0], len(args) < len(typing.get_args(kind))
    return kind, False


def _hints(target: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(target)
    except Exception:  # unresolvable annotations: treat them as text
        return {}


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
