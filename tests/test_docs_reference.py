"""The reference pages stay true to the code.

- docs/reference/api.md has one ``::: batchline.<name>`` directive per name in
  ``batchline.__all__`` and none for anything else, and every public name has a docstring of its
  own (not one inherited from ``object`` or a builtin, not the signature a dataclass makes up);
- docs/reference/configuration.md's table names every ``BATCHLINE_*`` environment variable the
  source reads;
- docs/reference/rest.md, as the MkDocs hook builds it, shows every path of the OpenAPI schema.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib.util
import inspect
import re
from collections import Counter
from pathlib import Path
from types import ModuleType

import pytest

import batchline

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
SRC = ROOT / "src" / "batchline"
DIRECTIVE = re.compile(r"^:::\s+batchline\.(\S+)\s*$", re.MULTILINE)


def own_docstring(name: str) -> str | None:
    """The docstring ``name`` carries itself, or None.

    A class's own ``__doc__`` (from its ``__dict__``: not ``object``'s, not a base's); a
    dataclass's made-up ``Name(field: type, ...)`` does not count. A function's ``__doc__``. A
    module constant (``__version__``) has the string literal right after its assignment, as
    mkdocstrings reads it.
    """
    obj = getattr(batchline, name)
    if inspect.isclass(obj):
        doc = obj.__dict__.get("__doc__")
        if doc and dataclasses.is_dataclass(obj) and doc.startswith(f"{obj.__name__}("):
            return None
        return doc
    if inspect.isfunction(obj) or inspect.isbuiltin(obj):
        return obj.__doc__
    tree = ast.parse((SRC / "__init__.py").read_text(encoding="utf-8"))
    for node, following in zip(tree.body, tree.body[1:], strict=False):
        targets = node.targets if isinstance(node, ast.Assign) else []
        assigned = any(isinstance(t, ast.Name) and t.id == name for t in targets)
        if (
            assigned
            and isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
        ):
            return str(following.value.value)
    return None


def directives() -> list[str]:
    return DIRECTIVE.findall((DOCS / "reference" / "api.md").read_text(encoding="utf-8"))


class TestPythonApi:
    @pytest.mark.parametrize("name", batchline.__all__)
    def test_public_name_has_a_docstring(self, name: str) -> None:
        doc = own_docstring(name)
        assert doc and doc.strip(), f"batchline.{name} has no docstring of its own"

    def test_every_public_name_has_a_directive(self) -> None:
        missing = sorted(set(batchline.__all__) - set(directives()))
        assert not missing, f"docs/reference/api.md has no '::: batchline.<name>' for {missing}"

    def test_every_directive_names_a_public_name(self) -> None:
        extra = sorted(set(directives()) - set(batchline.__all__))
        assert not extra, f"docs/reference/api.md documents names not in __all__: {extra}"

    def test_no_name_twice(self) -> None:
        twice = sorted(n for n, c in Counter(directives()).items() if c > 1)
        assert not twice, f"docs/reference/api.md documents {twice} more than once"


def source_variables() -> set[str]:
    """Every ``BATCHLINE_[A-Z_]+`` string in src/batchline."""
    found: set[str] = set()
    for path in SRC.rglob("*"):
        if path.suffix in {".py", ".html", ".js", ".toml", ".cfg", ".ini", ".txt", ".mako"}:
            text = path.read_text(encoding="utf-8", errors="replace")
            found.update(m.rstrip("_") for m in re.findall(r"BATCHLINE_[A-Z_]+", text))
    return found


class TestConfiguration:
    def test_every_variable_is_in_the_table(self) -> None:
        page = (DOCS / "reference" / "configuration.md").read_text(encoding="utf-8")
        rows = "\n".join(line for line in page.splitlines() if line.startswith("|"))
        listed = set(re.findall(r"`(BATCHLINE_[A-Z_]+)`", rows))
        missing = sorted(source_variables() - listed)
        assert not missing, f"docs/reference/configuration.md's table lacks {missing}"

    def test_table_names_only_real_variables(self) -> None:
        page = (DOCS / "reference" / "configuration.md").read_text(encoding="utf-8")
        listed = set(re.findall(r"`(BATCHLINE_[A-Z_]+)`", page))
        unknown = sorted(listed - source_variables())
        assert not unknown, f"docs/reference/configuration.md names {unknown}: not in src"


def openapi_hook() -> ModuleType:
    spec = importlib.util.spec_from_file_location("openapi_hook", DOCS / "hooks" / "openapi.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class TestRestApi:
    def test_every_path_is_on_the_page(self) -> None:
        pytest.importorskip("fastapi")
        hook = openapi_hook()
        schema = hook.openapi_schema()
        markdown = hook.render(schema)
        assert schema["paths"], "the schema has no paths"
        for path, operations in schema["paths"].items():
            for method in operations:
                if method in hook.METHODS:
                    heading = f"`{method.upper()} {path}`"
                    assert heading in markdown, f"{heading} is not on the REST page"

    def test_the_page_has_the_marker(self) -> None:
        hook = openapi_hook()
        page = (DOCS / "reference" / "rest.md").read_text(encoding="utf-8")
        assert page.count(hook.MARKER) == 1

    def test_each_operation_needs_the_scope_the_page_gives(self, tmp_path: Path) -> None:
        """No token: 401, whatever the body; a read token on an operation the page gives the
        operate scope: 403."""
        pytest.importorskip("fastapi")
        pytest.importorskip("httpx")
        from fastapi.testclient import TestClient

        from batchline import Engine
        from batchline.repository.tokens import TokenStore
        from batchline.web.app import create_app

        hook = openapi_hook()
        with Engine(f"sqlite:///{tmp_path / 'repository.db'}") as engine:
            tokens = TokenStore(engine.repository.engine)  # type: ignore[attr-defined]
            reader = {"Authorization": f"Bearer {tokens.create('reader', 'read')}"}
            app = create_app(engine, tokens)
            client = TestClient(app)
            for path, operations in app.openapi()["paths"].items():
                url = re.sub(r"\{[^}]+\}", "1", path)
                for method in operations:
                    alone = client.request(method, url, json={}).status_code
                    assert alone == 401, f"{method} {path} without a token: {alone}"
                    scoped = client.request(method, url, json={}, headers=reader).status_code
                    if hook.SCOPES[method] == "operate" and alone == 401:
                        assert scoped == 403, f"{method} {path} with a read token: {scoped}"
                    else:
                        assert scoped not in (401, 403), f"{method} {path}: read got {scoped}"
