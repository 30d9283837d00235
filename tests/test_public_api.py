"""The public API is what batchline/__init__.py exports, and __all__ says all of it.

Each lazy package keeps its names in one dict (``_EXPORTS``, name -> defining module); these
tests keep that dict, ``__all__``, the ``TYPE_CHECKING`` imports and ``docs/api.md`` in step,
and check that importing the package loads none of the heavy dependencies.
"""

from __future__ import annotations

import ast
import importlib
import importlib.resources
import inspect
import json
import re
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest

import batchline

ROOT = Path(__file__).resolve().parent.parent
LAZY_PACKAGES = [
    "batchline",
    "batchline.backfill",
    "batchline.items",
    "batchline.items.arrow",
    "batchline.items.files",
    "batchline.partitioners",
    "batchline.remote",
    "batchline.repository",
    "batchline.triggers",
]
# Plain constants a lazy package defines itself rather than through _EXPORTS.
EAGER = {"batchline": {"__version__"}, "batchline.repository": {"DEFAULT_URL"}}
HEAVY = [
    *("alembic", "apscheduler", "celery", "click", "fsspec", "kombu", "pyarrow", "rich"),
    "sqlalchemy",
    *("opentelemetry", "prometheus_client"),
    *("fastapi", "starlette", "pydantic", "uvicorn", "jinja2", "python_multipart", "httpx"),
]


def type_checking_imports(package: str) -> dict[str, str]:
    """Public name -> ``module[:attribute]`` as the package's TYPE_CHECKING block has it."""
    module = importlib.import_module(package)
    tree = ast.parse(inspect.getsource(module))
    found: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for stmt in node.body:
                assert isinstance(stmt, ast.ImportFrom) and stmt.module
                for alias in stmt.names:
                    public = alias.asname or alias.name
                    suffix = "" if public == alias.name else f":{alias.name}"
                    found[public] = stmt.module + suffix
    return found


def loaded_after(statement: str) -> list[str]:
    """The heavy top-level packages a fresh interpreter holds after running ``statement``."""
    probe = (
        f"{statement}\nimport json, sys\n"
        f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    loaded: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return loaded


class TestAll:
    def test_all_is_sorted_and_unique(self) -> None:
        """__all__ is sorted (case-sensitively) and has no duplicates."""
        assert batchline.__all__ == sorted(set(batchline.__all__))

    def test_every_public_name_is_in_all(self) -> None:
        """Once everything is loaded, every public non-module attribute is listed in __all__."""
        for name in batchline.__all__:
            getattr(batchline, name)
        public = {
            name
            for name, value in vars(batchline).items()
            if not name.startswith("_") and not isinstance(value, types.ModuleType)
        }
        assert public - set(batchline.__all__) == set()

    @pytest.mark.parametrize("name", batchline.__all__)
    def test_every_name_in_all_imports(self, name: str) -> None:
        """``from batchline import <name>`` works for every name in __all__."""
        namespace: dict[str, Any] = {}
        exec(f"from batchline import {name}", namespace)
        assert namespace[name] is getattr(batchline, name)

    def test_dir_lists_every_name(self) -> None:
        """dir(batchline) shows the public names before any of them is loaded."""
        assert set(batchline.__all__) <= set(dir(batchline))

    def test_unknown_name_is_an_attribute_error(self) -> None:
        """A name batchline does not export raises AttributeError naming it."""
        with pytest.raises(AttributeError, match="'batchline' has no attribute 'NoSuchThing'"):
            batchline.NoSuchThing  # type: ignore[attr-defined]  # noqa: B018

    def test_subpackages_are_attributes(self) -> None:
        """``import batchline`` then ``batchline.items.ListReader`` works, as it always did."""
        assert batchline.items.ListReader is batchline.ListReader

    def test_package_ships_py_typed(self) -> None:
        """py.typed is part of the package, so type checkers read its hints."""
        assert importlib.resources.files("batchline").joinpath("py.typed").is_file()


@pytest.mark.parametrize("package", LAZY_PACKAGES)
class TestExports:
    def test_all_is_the_exports(self, package: str) -> None:
        """__all__ is sorted and names exactly the _EXPORTS entries plus the eager constants."""
        module = importlib.import_module(package)
        expected = sorted({*module._EXPORTS, *EAGER.get(package, set())})
        assert module.__all__ == expected

    def test_type_checking_imports_match(self, package: str) -> None:
        """Type checkers see each name from the module _EXPORTS loads it from at run time."""
        module = importlib.import_module(package)
        assert type_checking_imports(package) == module._EXPORTS

    def test_exports_name_the_defining_module(self, package: str) -> None:
        """Each class and function comes from the module that defines it, not a re-export."""
        module = importlib.import_module(package)
        wrong = {}
        for name, target in module._EXPORTS.items():
            value = getattr(module, name)
            defined_in = getattr(value, "__module__", None)
            if defined_in is not None and defined_in != target.partition(":")[0]:
                wrong[name] = defined_in
        assert wrong == {}

    def test_import_loads_no_heavy_dependency(self, package: str) -> None:
        """Importing the package (not touching a name) loads none of the heavy dependencies."""
        assert loaded_after(f"import {package}") == []


class TestImportCost:
    def test_cli_help_loads_no_database_scheduler_or_files(self) -> None:
        """``batchline --help`` loads click and rich, and nothing of the database or triggers."""
        statement = (
            "from batchline.cli import main\n"
            "try:\n    main(['--help'], prog_name='batchline')\n"
            "except SystemExit:\n    pass"
        )
        assert loaded_after(statement) == ["click", "rich"]

    def test_a_job_on_local_files_loads_no_fsspec(self, tmp_path: Path) -> None:
        """A job reading and writing local paths opens them itself: fsspec (about 50 ms of
        every job process's start) is loaded only for URLs and storage options."""
        source, target = tmp_path / "in.csv", tmp_path / "out.csv"
        source.write_text("id,name\n1,a\n2,b\n")
        statement = (
            "from batchline import DelimitedReader, DelimitedWriter, Engine, JobBuilder, "
            "StepBuilder\n"
            f"step = StepBuilder('copy').chunk(10).reader(DelimitedReader({str(source)!r}))"
            f".writer(DelimitedWriter({str(target)!r}, fields=['id', 'name']))\n"
            f"with Engine('sqlite:///{tmp_path / 'repo.db'}') as engine:\n"
            "    assert engine.start(JobBuilder('j').step(step).build()).status.name == "
            "'COMPLETED'"
        )
        loaded = loaded_after(statement)
        assert target.read_text().splitlines() == ["1,a", "2,b"]
        assert "fsspec" not in loaded and "sqlalchemy" in loaded


class TestDocs:
    def test_api_doc_lists_exactly_all(self) -> None:
        """docs/api.md has one row per name in __all__, in the same order, naming its module."""
        text = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
        rows = re.findall(r"^\| `([^`]+)` \| .+ \| `([^`]+)` \|$", text, flags=re.MULTILINE)
        assert [name for name, _ in rows] == batchline.__all__
        modules = {name: module for name, module in rows}
        expected = {n: t.partition(":")[0] for n, t in batchline._EXPORTS.items()}
        assert {n: m for n, m in modules.items() if n in expected} == expected
