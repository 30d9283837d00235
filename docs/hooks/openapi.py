"""MkDocs hook: the REST API reference, generated from the web app's OpenAPI schema.

``reference/rest.md`` holds a marker line; on every build this hook builds the FastAPI app
`batchline serve` runs (``batchline.web.app.create_app``) against a throwaway SQLite repository,
takes ``app.openapi()`` and puts Markdown in the marker's place: an entry per operation (method,
path, summary, the scope its token needs, parameters, request body fields, responses) and the
schemas the bodies refer to. No server runs and no network is needed.

``openapi_schema()`` and ``render(schema)`` are what tests/test_docs_reference.py calls too.
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path
from typing import Any

MARKER = "<!-- openapi: generated from the schema by docs/hooks/openapi.py -->"
METHODS = ("get", "post", "put", "patch", "delete")
# Every API route asks its token for a scope by method: reading needs read, changing needs
# operate (batchline.web.auth.Guard; tests/test_docs_reference.py checks each operation).
SCOPES = {"get": "read", "post": "operate", "put": "operate", "patch": "operate",
          "delete": "operate"}  # fmt: skip
REF = "#/components/schemas/"


def openapi_schema() -> dict[str, Any]:
    """The OpenAPI schema of `batchline serve`'s app, built on a throwaway SQLite repository."""
    from batchline import Engine
    from batchline.repository.tokens import TokenStore
    from batchline.web.app import create_app

    with tempfile.TemporaryDirectory(prefix="batchline-openapi-") as folder:
        engine = Engine(f"sqlite:///{Path(folder) / 'repository.db'}")
        try:
            app = create_app(engine, TokenStore(engine.repository.engine))  # type: ignore[attr-defined]
            return app.openapi()
        finally:
            engine.close()


def _text(value: Any) -> str:
    """One table cell: reST double backticks as Markdown code, no newlines, pipes escaped."""
    text = re.sub(r"``(.+?)``", r"`\1`", str(value or ""))
    return " ".join(text.split()).replace("|", "\\|")


def _anchor(name: str) -> str:
    return "schema-" + re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def _type(schema: dict[str, Any]) -> str:
    """A short type: string, integer, array of Execution, string or null, one of "a", "b"."""
    if "$ref" in schema:
        name = schema["$ref"].removeprefix(REF)
        return f"[{name}](#{_anchor(name)})"
    if "anyOf" in schema or "oneOf" in schema:
        options = [_type(s) for s in schema.get("anyOf", schema.get("oneOf", []))]
        return " or ".join(dict.fromkeys(options))
    if "allOf" in schema and len(schema["allOf"]) == 1:
        return _type(schema["allOf"][0])
    if "enum" in schema:
        return "one of " + ", ".join(f"`{v}`" for v in schema["enum"])
    kind = schema.get("type", "any")
    if kind == "array":
        return f"array of {_type(schema.get('items', {}))}"
    if kind == "object" and "additionalProperties" in schema:
        extra = schema["additionalProperties"]
        return "object" if extra is True else f"object of {_type(extra)}"
    if "format" in schema:
        return f"{kind} ({schema['format']})"
    return str(kind)


def _limits(schema: dict[str, Any]) -> str:
    """Bounds and defaults worth a reader's knowing, from the schema or its non-null option."""
    found = []
    for s in [schema, *schema.get("anyOf", [])]:
        for key, label in (("minimum", ">="), ("maximum", "<="), ("exclusiveMinimum", ">")):
            if key in s:
                number = s[key]
                shown = int(number) if isinstance(number, float) and number.is_integer() else number
                found.append(f"{label} {shown}")
        if "maxLength" in s:
            found.append(f"at most {s['maxLength']} characters")
        if "pattern" in s:
            found.append(f"matches `{s['pattern']}`")
    if "default" in schema and schema["default"] is not None:
        found.append(f"default `{json.dumps(schema['default'])}`")
    return "; ".join(found)


def _describe(schema: dict[str, Any], description: str | None = None) -> str:
    parts = [_text(description or schema.get("description", ""))]
    limits = _limits(schema)
    if limits:
        parts.append(f"({limits})")
    return " ".join(p for p in parts if p)


def _fields(schema: dict[str, Any]) -> list[str]:
    required = set(schema.get("required", []))
    rows = ["| field | type | required | description |", "| --- | --- | --- | --- |"]
    for name, prop in schema.get("properties", {}).items():
        rows.append(
            f"| `{name}` | {_type(prop)} | {'yes' if name in required else 'no'} "
            f"| {_describe(prop)} |"
        )
    return rows


def _operation(method: str, path: str, op: dict[str, Any], schemas: dict[str, Any]) -> list[str]:
    slug = re.sub(r"[^a-z0-9]+", "-", f"{method} {path}".lower()).strip("-")
    out = [f"### `{method.upper()} {path}` {{ #{slug} }}", ""]
    summary = op.get("summary", "")
    out += [f"**{_text(summary)}**" if summary else "", ""]
    if op.get("description"):
        out += [_text(op["description"]), ""]
    out += [f"Scope: `{SCOPES[method]}`.", ""]
    params = op.get("parameters", [])
    if params:
        out += ["| parameter | in | type | required | description |",
                "| --- | --- | --- | --- | --- |"]  # fmt: skip
        for p in params:
            schema = p.get("schema", {})
            required = "yes" if p.get("required") else "no"
            described = _describe(schema, p.get("description"))
            out.append(
                f"| `{p['name']}` | {p['in']} | {_type(schema)} | {required} | {described} |"
            )
        out.append("")
    body = op.get("requestBody")
    if body:
        for media, content in body.get("content", {}).items():
            schema = content.get("schema", {})
            required = "required" if body.get("required") else "optional"
            out += [f"Request body ({required}), `{media}`: {_type(schema)}.", ""]
            target = schema
            if "$ref" in schema:
                target = schemas.get(schema["$ref"].removeprefix(REF), {})
            if target.get("properties"):
                out += [*_fields(target), ""]
    out += ["| status | meaning | body |", "| --- | --- | --- |"]
    for status, answer in sorted(op.get("responses", {}).items()):
        bodies = [
            f"`{media}` {_type(content.get('schema', {}))}"
            for media, content in answer.get("content", {}).items()
        ]
        out.append(f"| {status} | {_text(answer.get('description'))} | {'; '.join(bodies)} |")
    out.append("")
    return out


def render(schema: dict[str, Any]) -> str:
    """The Markdown of every operation and every schema, in the schema's order."""
    schemas = schema.get("components", {}).get("schemas", {})
    out = ["## Operations", ""]
    for path, operations in schema.get("paths", {}).items():
        for method, op in operations.items():
            if method in METHODS:
                out += _operation(method, path, op, schemas)
    out += ["## Schemas", "", "The bodies the operations take and answer with.", ""]
    for name, body in schemas.items():
        out += [f"### {name} {{ #{_anchor(name)} }}", ""]
        if body.get("description"):
            out += [_text(body["description"]), ""]
        if body.get("properties"):
            out += [*_fields(body), ""]
        elif "enum" in body:
            out += [", ".join(f"`{v}`" for v in body["enum"]), ""]
    return "\n".join(out).rstrip() + "\n"


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    if page.file.src_uri != "reference/rest.md":
        return markdown
    if MARKER not in markdown:
        raise ValueError(f"reference/rest.md lacks the marker line {MARKER!r}")
    return markdown.replace(MARKER, render(openapi_schema()))


def on_files(files: Any, config: Any) -> Any:
    """Keep the hooks themselves out of the built site."""
    for file in [f for f in files if f.src_uri.startswith("hooks/")]:
        files.remove(file)
    return files
