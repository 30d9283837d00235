"""Which field of a CSV record the csv module refused, found in one pass over the record.

The csv module says what went wrong but not where. Parsing ever longer prefixes to find out
costs time quadratic in the field count (a 32,000-field line took 15 s), so this walks the record
once with the same rules as the csv module's reader (CPython's ``_csv.c`` state machine) for the
dialect's delimiter, quote, escape, ``doublequote`` and ``skipinitialspace``.
"""

from __future__ import annotations

import csv
from typing import Any

_LINE_END = "\r\n"


def failing_field(text: str, dialect: Any, limit: int) -> int | None:
    """The 1-based position of the first field a strict parse of ``text`` fails on, or None.

    A field fails when a closing quote is followed by anything but the delimiter or the line
    end, when a quoted field is still open at the end, when a line break inside an unquoted
    field is followed by more text, or when it holds more than ``limit`` characters.
    """
    delimiter = dialect.delimiter
    quote = dialect.quotechar if dialect.quoting != csv.QUOTE_NONE else None
    escape = dialect.escapechar
    double = dialect.doublequote
    n = len(text)
    i = 0
    field = 1
    while True:
        if dialect.skipinitialspace:
            while i < n and text[i] == " ":
                i += 1
        length = 0
        if quote is not None and i < n and text[i] == quote:
            i += 1
            while True:
                if i >= n:
                    return field  # the quote never closes
                c = text[i]
                if c == escape:
                    i += 2
                elif c != quote:
                    i += 1
                elif double and i + 1 < n and text[i + 1] == quote:
                    i += 2
                else:
                    i += 1
                    break
                length += 1
            if length > limit:
                return field
            if i < n and text[i] not in _LINE_END and text[i] != delimiter and double:
                return field  # strict: only a delimiter or the line end may follow the quote
        # Unquoted (or, without doublequote, the rest after a closing quote).
        while i < n:
            c = text[i]
            if c == delimiter or c in _LINE_END:
                break
            i += 2 if c == escape else 1
            length += 1
        if length > limit:
            return field
        if i >= n:
            return None
        if text[i] == delimiter:
            i += 1
            field += 1
            continue
        return field if text[i:].strip(_LINE_END) else None  # a line break before more text
