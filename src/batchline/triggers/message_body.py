"""A message's body as job parameters: a JSON object, keys in the command line's syntax.

``{"trade_date:date": "2026-11-28", "region": "EU", "limit": 500}`` gives the parameters
``batchline start JOB trade_date:date=2026-11-28 region=EU limit:int=500`` would: a key may
name its type (``NAME:TYPE``, converted by ``batchline.parameters`` like a command-line
value); without one, a JSON string, integer, number or boolean keeps its own type. The body is
parsed as JSON and nothing else (never unpickled or evaluated), whatever content type the
message claims; anything else is a ``MessageRefused`` whose text names what was wrong.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import math
from typing import Any

from batchline.errors import BatchlineError, ParameterError
from batchline.parameters import JobParameter, JobParameters, ParamValue, parse_parameter


class MessageRefused(BatchlineError):
    """A message that can never start the job as it is: its body, or its parameters."""


def _refuse_constant(name: str) -> Any:
    # Python's json takes NaN and Infinity; no other JSON reader does, nor the repository.
    raise ValueError(f"{name} is not JSON")


def undecodable(content_encoding: object) -> str | None:
    """Why a body declared in ``content_encoding`` cannot be read, or None when it can: no
    encoding, kombu's ``binary``, or a codec Python knows."""
    if content_encoding is None or content_encoding == "binary":
        return None
    if not isinstance(content_encoding, str):
        return f"content-encoding {content_encoding!r} is not a name"
    try:
        codec = codecs.lookup(content_encoding)
    except LookupError:
        return f"content-encoding {content_encoding[:60]!r} is unknown"
    if not getattr(codec, "_is_text_encoding", True):  # zlib, base64: not how text is sent
        return f"content-encoding {content_encoding[:60]!r} is not a text encoding"
    return None


def decode(body: bytes) -> dict[str, Any]:
    """The body's JSON object; MessageRefused for anything else."""
    try:
        data = json.loads(body, parse_constant=_refuse_constant)
    except (ValueError, UnicodeDecodeError) as err:
        raise MessageRefused(f"body is not JSON ({err}): {preview(body)}") from None
    if not isinstance(data, dict):
        raise MessageRefused(
            f"body is JSON {type(data).__name__}, not an object of job parameters: {preview(body)}"
        )
    return data


def parameters_of(body: bytes, *, identifying: bool = False) -> JobParameters:
    """The job parameters a body carries (``identifying`` says whether they name the instance)."""
    params: dict[str, ParamValue | JobParameter] = {}
    for key, value in decode(body).items():
        name, param = _parameter(key, value, identifying)
        if name in params:
            raise MessageRefused(f"parameter {name!r} given twice (as {key!r})")
        params[name] = param
    return JobParameters(params)


def _parameter(key: str, value: object, identifying: bool) -> tuple[str, JobParameter]:
    if isinstance(value, str):
        _check_text(key, value)
    if isinstance(value, float) and not math.isfinite(value):
        raise MessageRefused(f"parameter {key!r}: {value} is not a finite number")
    if ":" in key:
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise MessageRefused(
                f"parameter {key!r}: a typed value is given as text, not {value!r}"
            )
        return parse_parameter(f"{key}={value}", identifying=identifying)
    if not isinstance(value, str | int | float | bool):
        raise MessageRefused(
            f"parameter {key!r}: {json.dumps(value)[:60]} is not a parameter value "
            "(a string, number or boolean; NAME:date or NAME:datetime for dates)"
        )
    name, _ = parse_parameter(f"{key}=", identifying=identifying)  # checks the name
    return name, JobParameter(value, identifying)


def _check_text(what: str, text: str) -> None:
    # JSON escapes can spell a NUL or a lone surrogate, which the repository cannot store.
    if any(c == "\x00" or 0xD800 <= ord(c) <= 0xDFFF for c in text):
        raise ParameterError(f"parameter {what!r}: {text[:40]!r} holds a NUL or a lone surrogate")


def identity(message_id: object, body: bytes) -> str:
    """The message's identity: its ``message_id`` property, else a SHA-256 of its body."""
    if isinstance(message_id, str) and message_id:
        _check_text("message_id", message_id)
        return message_id
    return "sha256:" + hashlib.sha256(body).hexdigest()


def preview(body: bytes) -> str:
    """The start of a body, for an error message."""
    return repr(body[:60]) + ("..." if len(body) > 60 else "")
