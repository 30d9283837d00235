"""Fitting text from users and exceptions into the repository's columns on every backend.

MySQL/MariaDB's TEXT holds 65,535 *bytes*, so a message cut by characters overflows it once
its characters take more than one byte each (é: 2, 漢: 3, an emoji: 4), and the real cause is
replaced by a DataError about the column. PostgreSQL refuses NUL in text, and no driver encodes
a lone surrogate. So text is cut by its UTF-8 length, on a character boundary, after those are
made printable.
"""

from __future__ import annotations

import json

from batchline.errors import ExecutionContextError
from batchline.model import ExecutionContext

# Below MySQL's 65,535-byte TEXT with room for the marker.
MAX_TEXT_BYTES = 60_000
CUT_MARKER = " [...]"


def fit_text(text: str, max_bytes: int = MAX_TEXT_BYTES) -> str:
    """``text`` storable in a TEXT column: NUL as ``\\x00``, lone surrogates escaped, at most
    ``max_bytes`` bytes of UTF-8 (cut ones end with ``CUT_MARKER``)."""
    if "\x00" in text:
        text = text.replace("\x00", "\\x00")
    encoded = text.encode("utf-8", "backslashreplace")
    if len(encoded) <= max_bytes:
        return encoded.decode("utf-8")
    room = max_bytes - len(CUT_MARKER.encode())
    return encoded[:room].decode("utf-8", "ignore") + CUT_MARKER


def fit_chars(text: str, max_chars: int) -> str:
    """``text`` for a VARCHAR(max_chars) column (counted in characters on every backend)."""
    text = fit_text(text)
    return text if len(text) <= max_chars else text[: max_chars - 3] + "..."


# What a context column takes, in bytes of UTF-8 JSON: MySQL/MariaDB's TEXT, and elsewhere a bound
# that keeps a chunk commit (which writes the whole context) sane.
CONTEXT_LIMITS = {"mysql": 65_535, "mariadb": 65_535}
DEFAULT_CONTEXT_LIMIT = 16 * 1024 * 1024


def _shown(key: str, limit: int = 60) -> str:
    return repr(key) if len(key) <= limit else f"{key[:limit]!r}... ({len(key):,} characters)"


def context_json(context: ExecutionContext, limit: int, what: str) -> str:
    """The context as JSON, or ExecutionContextError naming ``what``, its size and its largest
    keys when it is over ``limit`` bytes: checked before the write, so the cause is ours."""
    text = context.to_json()
    size = len(text.encode("utf-8"))
    if size > limit:
        # An entry's size counts its key too: a key built from an object's repr can be the
        # large part (a writer given a StepExecution for its name).
        sizes = sorted(
            ((len(json.dumps(k)) + len(json.dumps(v, default=str)), k) for k, v in context.items()),
            reverse=True,
        )
        largest = ", ".join(f"{_shown(k)} ({n:,} bytes)" for n, k in sizes[:3])
        raise ExecutionContextError(
            f"{what} context is {size:,} bytes of JSON, over this repository's limit of "
            f"{limit:,}; largest keys: {largest}. Keep large data elsewhere and its key here"
        )
    return text
