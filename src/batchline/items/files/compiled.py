"""Record mappers compiled per target and header: one generated function per record shape.

A RecordMapper's reference path converts field by field (a call, a few tests and a dict entry
per field, then ``target(**kwargs)``): 30-40 µs for a 10-field record. The function generated
here does the same work inline: one local per field, each converted by the C function that
gives the reference's value (``int``, ``Decimal``, ``date.fromisoformat``, a bool word table),
then one call of the target with keywords.

Whatever the fast code does not take in stride (an empty required value, a value the C
function refuses, a short record) goes to the reference function for the same record, which
either accepts it (`` 2024-01-01`` with spaces) or raises the FieldError naming the field. So
the compiled function and the reference agree on every record, errors included
(tests/items/test_compiled_mapping.py checks that with hypothesis).

No text from data or headers ever becomes code: field names, keys, converters and defaults are
passed in as closure constants (``_k3``, ``_c3``, ``_d3``); a field name is written as a
keyword argument only when it is a plain identifier (else the call takes one dict).
"""

from __future__ import annotations

import inspect
import keyword
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from batchline.items.files.converters import (
    FieldError,
    bool_words,
    fast_converter,
    is_identity,
)

# What a converter raises for a value it refuses (as the reference catches).
CONVERSION_ERRORS = (ValueError, TypeError, ArithmeticError)


@dataclass(slots=True)
class FieldPlan:
    """One field, planned once per target: where, how, and what if it is absent."""

    name: str
    label: str  # how errors name it: the column name, or the field name for a position
    source: str | int
    convert: Callable[[str], Any]  # the reference converter
    default: Any
    required: bool
    optional: bool  # the type admits None: an empty value becomes None
    kind: Any = None  # the type the text becomes (Optional unwrapped)
    format: str | None = None


@dataclass(frozen=True, slots=True)
class Compiled:
    function: Callable[..., Any]
    source: str


class _Refused(ValueError):
    """Raised inside the generated code: hand this record to the reference."""


def first_field(exc: Exception, names: Iterable[str]) -> str:
    """The first field name the target's error message mentions ("?" if none)."""
    text = str(exc)
    return next((name for name in names if name in text), "?")


def compile_values(
    fields: list[tuple[FieldPlan, int | None]],
    reference: Callable[[list[str]], Any],
    constructor: tuple[Callable[..., Any], bool],
    *,
    empty_is_missing: bool,
    missing: Any,
) -> Compiled:
    """A function from a record (a list of text, field ``i`` at ``values[at]``) to the item."""
    code = _Code(reference, missing)
    needed = max((at + 1 for _, at in fields if at is not None), default=0)
    body = [
        "def map_values(values):",
        f"    if len(values) < {needed}:",
        "        return _reference(values)",
        "    try:",
    ]
    for index, (plan, at) in enumerate(fields):
        local = f"a{index}"
        if at is None:  # a column the header lacks (never a required one)
            body.append(f"        {local} = {code.absent(plan, index)}")
            continue
        body.append(f"        {local} = values[{at}]")
        body.extend(code.convert(plan, index, local, empty_is_missing, "        "))
    body += [
        "        pass",  # a target without fields still makes a valid try block
        "    except _ERRORS:",
        "        return _reference(values)",
    ]
    body += code.construct([plan for plan, _ in fields], constructor)
    return code.compile(body, "map_values")


def compile_mapping(
    plans: list[FieldPlan],
    reference: Callable[[Mapping[str, Any]], Any],
    constructor: tuple[Callable[..., Any], bool],
    *,
    empty_is_missing: bool,
    missing: Any,
) -> Compiled:
    """A function from a mapping (a JSON object) to the item; values that are not text
    (JSON already typed them) are taken as they are, as the reference does."""
    code = _Code(reference, missing)
    body = ["def map_record(record):", "    get = record.get", "    try:"]
    for index, plan in enumerate(plans):
        local = f"a{index}"
        key = code.constant("k", index, plan.source if isinstance(plan.source, str) else plan.name)
        body.append(f"        {local} = get({key})")
        body.append(f"        if {local}.__class__ is _str:")
        body.extend(code.convert(plan, index, local, empty_is_missing, "            "))
        body.append(f"        elif {local} is None:")
        body.append(f"            {local} = {code.absent(plan, index)}")
        body.append(f"        elif _isinstance({local}, _str):")  # a str subclass: be exact
        body.append("            raise _Refused")
    body += ["        pass", "    except _ERRORS:", "        return _reference(record)"]
    body += code.construct(plans, constructor)
    return code.compile(body, "map_record")


class _Code:
    """The namespace and lines of one generated function."""

    def __init__(self, reference: Callable[..., Any], missing: Any) -> None:
        self.missing = missing
        self.names: dict[str, Any] = {
            "_reference": reference,
            "_ERRORS": CONVERSION_ERRORS,
            "_Refused": _Refused,
            "_Decimal": Decimal,
            "_str": str,
            "_isinstance": isinstance,
            "_target_error": _target_error,
            "_refuse": _refuse,
        }

    def constant(self, prefix: str, index: int, value: Any) -> str:
        name = f"_{prefix}{index}"
        self.names[name] = value
        return name

    def absent(self, plan: FieldPlan, index: int) -> str:
        """The expression for a missing value: its default, None, or a refusal."""
        if plan.default is not self.missing:
            return self.constant("d", index, plan.default)
        if plan.optional or not plan.required:
            return "None"
        return "_refuse()"

    def convert(
        self, plan: FieldPlan, index: int, local: str, empty_is_missing: bool, pad: str
    ) -> list[str]:
        """Lines that turn ``local`` (text) into the field's value, in place."""
        absent = self.absent(plan, index)
        lines: list[str]
        if empty_is_missing:
            if is_identity(plan.kind):
                return [f"{pad}if not {local}:", f"{pad}    {local} = {absent}"]
            lines = [f"{pad}if {local}:"]
            inner = pad + "    "
        else:
            # Only None is missing; values from files are always text, so there is no test.
            if is_identity(plan.kind):
                return [f"{pad}pass"]
            lines, inner = [], pad
        if plan.kind is Decimal:
            lines += [
                f"{inner}{local} = _Decimal({local})",
                f"{inner}if not {local}.is_finite():",
                f"{inner}    raise _Refused",
            ]
        elif plan.kind is bool:
            table = self.constant("b", index, bool_words(plan.format))
            lines += [
                f"{inner}{local} = {table}.get({local})",
                f"{inner}if {local} is None:",
                f"{inner}    raise _Refused",
            ]
        else:
            fast = fast_converter(plan.kind, plan.format)
            function = self.constant("c", index, fast if fast is not None else plan.convert)
            lines.append(f"{inner}{local} = {function}({local})")
        if empty_is_missing:
            lines += [f"{pad}else:", f"{pad}    {local} = {absent}"]
        return lines

    def construct(
        self, plans: list[FieldPlan], constructor: tuple[Callable[..., Any], bool]
    ) -> list[str]:
        """Lines that build the item from the locals: keywords, or one dict of constant keys."""
        target, keywords = constructor
        self.names["_target"] = target
        self.names["_field_names"] = tuple(plan.name for plan in plans)
        if keywords and _positional(target, [plan.name for plan in plans]):
            call = f"_target({', '.join(f'a{i}' for i in range(len(plans)))})"
        elif keywords and all(_plain_identifier(plan.name) for plan in plans):
            arguments = ", ".join(f"{plan.name}=a{i}" for i, plan in enumerate(plans))
            call = f"_target({arguments})"
        else:
            pairs = ", ".join(
                f"{self.constant('n', i, plan.name)}: a{i}" for i, plan in enumerate(plans)
            )
            call = f"_target(**{{{pairs}}})" if keywords else f"_target({{{pairs}}})"
        if not keywords:  # the model's own _build names the field of its errors
            return [f"    return {call}"]
        return [
            "    try:",
            f"        return {call}",
            "    except (TypeError, ValueError) as exc:",
            "        raise _target_error(exc, _field_names) from None",
        ]

    def compile(self, body: list[str], name: str) -> Compiled:
        source = "\n".join(body) + "\n"
        namespace = dict(self.names)
        exec(compile(source, "<batchline compiled mapper>", "exec"), namespace)
        return Compiled(namespace[name], source)


def _refuse() -> Any:
    raise _Refused


def _target_error(exc: Exception, names: tuple[str, ...]) -> FieldError:
    return FieldError(first_field(exc, names), str(exc))


def _positional(target: Callable[..., Any], names: list[str]) -> bool:
    """True when ``target(*values)`` means ``target(**dict(zip(names, values)))``: the names are
    its first parameters, in order, each positional, and the rest have defaults."""
    try:
        parameters = list(inspect.signature(target).parameters.values())
    except (TypeError, ValueError):
        return False
    if len(parameters) < len(names):
        return False
    ordered = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.POSITIONAL_ONLY)
    for parameter, name in zip(parameters, names, strict=False):
        if parameter.name != name or parameter.kind not in ordered:
            return False
        if parameter.kind is inspect.Parameter.POSITIONAL_ONLY:
            return False  # the reference passes keywords: a positional-only name would fail
    rest = parameters[len(names) :]
    return all(
        p.default is not inspect.Parameter.empty
        or p.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
        for p in rest
    )


def _plain_identifier(name: str) -> bool:
    """A name that can be written as a keyword argument as it is (and nothing else)."""
    return (
        isinstance(name, str)
        and name.isidentifier()
        and name.isascii()
        and not keyword.iskeyword(name)
        and name != "__debug__"
    )
