"""The layering of docs/architecture.md, checked on the import graph of the source tree.

Every import counts, including those inside functions: a lazy import is still a dependency.
Only imports under ``if TYPE_CHECKING:`` are left out (they do not run).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "batchline"

# What the steps layer (core) may not reach: the interface layer and the concrete repository.
ABOVE_STEPS = (
    "batchline.job",
    "batchline.flow",
    "batchline.registry",
    "batchline.engine",
    "batchline.builders",
    "batchline.workers",
    "batchline.remote",
    "batchline.loader",
    "batchline.cli",
    "batchline.triggers",
    "batchline.progress",
    "batchline.demo",
    "batchline.repository.sql",
)


FOUNDATION_MODULES = {"model", "status", "parameters", "errors", "transaction", "pools", "logging"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(path: Path, module: str, *, typing_too: bool = False) -> set[str]:
    """The batchline modules a source file imports at run time (resolved to module names);
    with ``typing_too``, those under ``TYPE_CHECKING`` as well."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node) and not typing_too:
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("batchline"))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            if base.startswith("batchline"):
                for alias in node.names:
                    candidate = f"{base}.{alias.name}"
                    found.add(candidate if candidate in ALL_MODULES else base)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    found.discard(module)
    return found


ALL_MODULES = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
GRAPH = {name: _imports(path, name) for name, path in ALL_MODULES.items()}
# A closed layer is closed to type checkers too: steps/ names nothing above it.
TYPED_GRAPH = {n: _imports(p, n, typing_too=True) for n, p in ALL_MODULES.items()}


def _reaches(target: str, prefix: str) -> bool:
    return target == prefix or target.startswith(prefix + ".")


class TestLayers:
    def test_the_graph_is_read(self) -> None:
        """The graph holds the modules and edges this test reasons about (it can fail)."""
        assert "batchline.steps.chunk" in GRAPH
        assert "batchline.steps.base" in GRAPH["batchline.steps.chunk"]
        assert "batchline.steps.partition" in GRAPH["batchline.workers"]

    @pytest.mark.parametrize(
        "module", sorted(m for m in GRAPH if m.startswith("batchline.steps")), ids=str
    )
    def test_steps_import_nothing_above_them(self, module: str) -> None:
        """No module under steps/ imports the interface layer or the concrete SQL repository,
        not even for type checking."""
        bad = sorted(t for t in TYPED_GRAPH[module] for p in ABOVE_STEPS if _reaches(t, p))
        assert not bad, f"{module} imports from a layer above it: {bad}"

    def test_partition_modules_do_not_import_each_other(self) -> None:
        """The partition step and the thread handler depend one way only."""
        assert "batchline.steps.partition_threads" not in GRAPH["batchline.steps.partition"]

    def test_no_two_modules_import_each_other(self) -> None:
        """No import cycle between any two modules (a package and its own submodules aside),
        not even one side of it for type checking only."""
        pairs = sorted(
            (a, b)
            for a, targets in TYPED_GRAPH.items()
            for b in targets
            if a < b
            and a in TYPED_GRAPH.get(b, ())
            and not (_reaches(b, a) or _reaches(a, b))  # a package re-exporting a submodule
        )
        assert not pairs, f"modules that import each other: {pairs}"

    def test_foundation_imports_no_core_or_interface(self) -> None:
        """model, status, parameters, errors, repository, transaction, pools and logging know
        nothing of steps, items, builders or the CLI."""
        foundation = [
            m
            for m in GRAPH
            if _reaches(m, "batchline.repository")
            or (m != "batchline" and m.split(".")[1] in FOUNDATION_MODULES)
        ]
        upper = ("batchline.steps", "batchline.items", *ABOVE_STEPS[:-1])
        bad = {m: sorted(t for t in GRAPH[m] for p in upper if _reaches(t, p)) for m in foundation}
        assert not {m: v for m, v in bad.items() if v}
