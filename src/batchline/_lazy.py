"""Lazy re-exports for package ``__init__`` modules (PEP 562).

A package lists its public names in one dict, name -> defining module (``"module:attribute"``
when the public name differs), and gets a module ``__getattr__`` that imports the defining
module on first use. ``import batchline`` then costs nothing but this file, and a program pays
for SQLAlchemy, rich, fsspec or APScheduler only when it touches a name that needs them.
Type checkers do not run this: each package also imports its names under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def exports(
    package: str, names: Mapping[str, str], public: list[str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``, loading ``names`` on first access.

    An unknown name that is a submodule is imported too, as the eager ``__init__`` used to make
    ``import batchline; batchline.items.ListReader`` work.
    """
    namespace = sys.modules[package].__dict__

    def __getattr__(name: str) -> Any:
        target = names.get(name)
        if target is None:
            return _submodule(package, name)
        module_name, _, attribute = target.partition(":")
        value = getattr(importlib.import_module(module_name), attribute or name)
        namespace[name] = value  # later lookups are plain attribute reads
        return value

    def __dir__() -> list[str]:
        return sorted({*public, *namespace})

    return __getattr__, __dir__


def _submodule(package: str, name: str) -> Any:
    if not name.startswith("_"):
        try:
            return importlib.import_module(f"{package}.{name}")
        except ModuleNotFoundError as err:
            if err.name != f"{package}.{name}":
                raise  # the submodule exists but needs something missing: say so
    raise AttributeError(f"module {package!r} has no attribute {name!r}")
