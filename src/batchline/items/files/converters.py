"""Text to values: the conversions a RecordMapper applies to a field (int, Decimal, dates...).

``converter`` is the reference: it strips the text and raises a ValueError whose message shows
it. ``fast_converter`` is what a compiled mapper calls first: the bare C function where one
gives the same value for every text it accepts (``int``, ``float``, ``date.fromisoformat``...),
so a good value costs one call; whatever it refuses is handed back to the reference, which then
either accepts it (`` 2024-01-01`` with spaces) or raises the error with its message.
"""

from __future__ import annotations

import datetime as dt
import enum
import typing
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from batchline.errors import ConfigurationError


class FieldError(ValueError):
    """A value that could not be mapped; the reader adds the file and line."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


TRUE_WORDS = ("true", "t", "yes", "y", "1")
FALSE_WORDS = ("false", "f", "no", "n", "0")


def converter(kind: Any, fmt: str | None = None) -> Callable[[str], Any]:
    """A function from text to ``kind``, raising ValueError with a message that shows the text."""
    if kind is None or kind is str or kind is Any:
        return identity
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


def is_identity(kind: Any) -> bool:
    """True when the text is the value (no conversion at all)."""
    return kind is None or kind is str or kind is Any


def fast_converter(kind: Any, fmt: str | None) -> Callable[[str], Any] | None:
    """A C-speed function that returns exactly what ``converter(kind, fmt)`` returns for every
    text it accepts, and raises ValueError/TypeError/ArithmeticError for the rest; None when
    there is none (the reference converter is then called directly). Decimal is not here: the
    compiled mapper inlines it with its finiteness check."""
    if kind is int:
        return int  # int() strips the same whitespace as str.strip()
    if kind is float:
        return float
    if kind is dt.date and not fmt:
        return dt.date.fromisoformat  # refuses surrounding spaces: the reference strips them
    if kind is dt.datetime and not fmt:
        return dt.datetime.fromisoformat
    return None


def bool_words(fmt: str | None) -> dict[str, bool]:
    """The exact words a boolean field accepts without stripping, as a lookup table."""
    true, false = _words(fmt)
    reference = _bool_parser(fmt)
    table: dict[str, bool] = {}
    for words, value in ((true, True), (false, False)):
        for word in words:
            for form in (word, word.upper(), word.capitalize()):
                try:
                    if reference(form) is value:  # only forms the reference reads the same
                        table[form] = value
                except ValueError:
                    pass
    return table


def identity(text: str) -> str:
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


def _words(fmt: str | None) -> tuple[set[str], set[str]]:
    if fmt:
        yes, _, no = fmt.partition("/")
        return {yes.strip().lower()}, {no.strip().lower()}
    return set(TRUE_WORDS), set(FALSE_WORDS)


def _bool_parser(fmt: str | None) -> Callable[[str], bool]:
    true, false = _words(fmt)

    def parse(text: str) -> bool:
        low = text.strip().lower()
        if low in true:
            return True
        if low in false:
            return False
        raise ValueError(f"{text!r} is not a boolean ({'/'.join(sorted(true | false))})")

    return parse
