"""How the pages show text that comes from data: times, names, messages.

- Times are rendered as ``<time datetime="...Z">`` in UTC, labelled; ``static/app.js`` shows
  them in the viewer's zone (labelled too) with UTC a click away.
- Every data-derived text is isolated (``<bdi>``) so right-to-left or isolate characters in it
  cannot reorder the words around it; in names (of jobs, steps, parameters, tokens) the
  bidirectional controls are also shown escaped (``[U+202E]``), so a name cannot pose as
  another by reversing itself.
- A name put in a URL's path keeps its slashes (``/jobs/reports/daily``) unless one of its
  segments is ``.`` or ``..``: the browser would resolve those, so a job named
  ``../jobs/payroll`` would link to, and its Start button start, another job.
"""

from __future__ import annotations

import datetime as dt
import re
from urllib.parse import quote

from markupsafe import Markup, escape

# Explicit embeddings, overrides and isolates, the marks, and the Arabic letter mark.
BIDI_CONTROLS = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_DIGITS = re.compile(r"(\d+)")


def visible(text: object) -> str:
    """``text`` with each bidirectional control spelled out as ``[U+XXXX]``: for names, and
    for places (SVG labels, titles) where markup cannot isolate."""
    return BIDI_CONTROLS.sub(lambda m: f"[U+{ord(m[0]):04X}]", str(text))


def isolated(text: object) -> Markup:
    """Text from data, escaped, in a ``<bdi>`` of its own (the direction of its own first
    strong character, its controls unable to reach past it)."""
    return Markup("<bdi>%s</bdi>") % escape(str(text))


def name(text: object) -> Markup:
    """A name: isolated, and its bidirectional controls shown rather than obeyed."""
    return Markup('<bdi class="name">%s</bdi>') % escape(visible(text))


def in_path(text: object) -> str:
    """``text`` percent-encoded as one part of a URL's path; its slashes kept, unless a segment
    is a dot segment (then every slash is encoded, and the server's router, which decodes
    the path, still sees the name). A whole name of ``.`` or ``..`` cannot be linked this way:
    browsers resolve ``%2E`` too."""
    value = str(text)
    dots = any(segment in (".", "..") for segment in value.split("/"))
    return quote(value, safe="" if dots else "/")


def when(moment: dt.datetime | None) -> Markup | str:
    """A moment as ``<time>`` in UTC, labelled; naive times are the repository's UTC."""
    if moment is None:
        return "-"
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
    return Markup('<time datetime="%sZ">%s UTC</time>') % (
        moment.isoformat(timespec="seconds"),
        moment.strftime("%Y-%m-%d %H:%M:%S"),
    )


def natural(text: str) -> tuple[object, ...]:
    """A sort key reading runs of digits as numbers: ``part:2`` before ``part:10``."""
    parts = _DIGITS.split(text)  # text, digits, text, digits, ..., text
    return tuple(int(p) if k % 2 else p for k, p in enumerate(parts))
