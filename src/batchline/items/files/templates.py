"""Path templates filled from job parameters, contexts and dates.

    render("out/{params.date:%Y/%m/%d}/trades-{context.partition}.csv", step_execution)

Names: ``params.X`` (job parameters), ``context.X`` (the step's context), ``job_context.X`` (the
job execution's), ``job.name``, ``job.execution_id``, ``job.instance_id``, ``step.name``,
``now`` and ``today`` (UTC, fixed for one render), and any key of ``values``. A format spec
after ``:`` is applied with ``format()`` (strftime for dates). A name with no value, or a value
that is None or empty, is an error naming it: a path is never built with a hole in it. Only
these names resolve; no attribute or index of a value is followed.

With ``confine=True`` (what the file tasks pass unless told otherwise) the values stay inside
the folder the template's literal text names before its first field: a parameter ``../x`` or
``/etc/x`` cannot point a copy, move or merge elsewhere. A template that opens with a field
hands that value the whole location and is not confined.
"""

from __future__ import annotations

import datetime as dt
import posixpath
import string
from collections.abc import Mapping
from typing import Any

from batchline.errors import ParameterError
from batchline.model import StepExecution

_FORMATTER = string.Formatter()


def namespace(
    step_execution: StepExecution | None, values: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """What a template may name, as a flat dict of dotted names."""
    now = dt.datetime.now(dt.UTC)
    names: dict[str, Any] = {"now": now, "today": now.date()}
    if step_execution is not None:
        names["step.name"] = step_execution.step_name
        names.update({f"params.{k}": v for k, v in step_execution.parameters.items()})
        names.update({f"context.{k}": v for k, v in step_execution.context.items()})
        job = step_execution.job_execution
        if job is not None:
            names["job.name"] = job.job_name
            names["job.execution_id"] = job.id
            names["job.instance_id"] = job.instance.id
            names.update({f"job_context.{k}": v for k, v in job.context.items()})
    names.update(values or {})
    return names


def render(
    template: str,
    step_execution: StepExecution | None = None,
    values: Mapping[str, Any] | None = None,
    *,
    confine: bool = False,
) -> str:
    """The template with every ``{name[:spec]}`` replaced; ParameterError naming a missing one,
    or (``confine``) one whose value leads out of the template's folder."""
    names = namespace(step_execution, values)
    out: list[str] = []
    used: list[tuple[str, str]] = []
    for literal, field, spec, conversion in _FORMATTER.parse(template):
        out.append(literal)
        if field is None:
            continue
        if conversion is not None or "[" in field or not field:
            raise ParameterError(f"path template {template!r}: unsupported field {{{field}}}")
        value = names.get(field)
        if value is None or value == "":
            known = ", ".join(sorted(n for n in names if n.split(".")[0] == field.split(".")[0]))
            raise ParameterError(
                f"path template {template!r}: no value for {field!r}"
                + (f" (known: {known})" if known else "")
            )
        text = format(value, spec or "")
        used.append((field, text))
        out.append(text)
    path = "".join(out)
    if confine and used:
        _confine(template, path, used)
    return path


def _confine(template: str, path: str, used: list[tuple[str, str]]) -> None:
    prefix = ""
    for literal, field, _, _ in _FORMATTER.parse(template):
        prefix += literal
        if field is not None:
            break
    if not prefix:
        return  # the template opens with a value: it names the whole location
    scheme, _, rest = prefix.rpartition("://")
    base = rest[: rest.rfind("/") + 1]  # "" is the current folder
    normal = posixpath.normpath(path[len(scheme) + 3 :] if scheme else path)
    if base:
        folder = posixpath.normpath(base)
        inside = normal == folder or normal.startswith(folder.rstrip("/") + "/")
    else:
        inside = not normal.startswith(("/", "~")) and normal != ".." and normal[:3] != "../"
    if inside:
        return
    field, value = next(((f, v) for f, v in used if _climbs(v)), used[0])
    where = f"the folder {prefix[: prefix.rfind('/') + 1]!r}" if base else "the current folder"
    raise ParameterError(
        f"path template {template!r}: {field}={value!r} makes the path {path!r}, outside "
        f"{where} (pass confine=False to allow it)"
    )


def _climbs(value: str) -> bool:
    parts = value.replace("\\", "/").split("/")
    return ".." in parts or value.startswith(("/", "~"))
