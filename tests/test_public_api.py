"""The public API is what batchline/__init__.py exports, and __all__ says all of it."""

from __future__ import annotations

import importlib.resources
import types

import batchline


class TestAll:
    def test_all_is_sorted_and_unique(self) -> None:
        """__all__ is sorted (case-sensitively) and has no duplicates."""
        assert batchline.__all__ == sorted(set(batchline.__all__))

    def test_every_public_name_is_in_all(self) -> None:
        """Every public non-module attribute of the package is listed in __all__."""
        public = {
            name
            for name, value in vars(batchline).items()
            if not name.startswith("_") and not isinstance(value, types.ModuleType)
        }
        assert public - set(batchline.__all__) == set()

    def test_every_name_in_all_exists(self) -> None:
        """Every name in __all__ can be imported from batchline."""
        missing = [name for name in batchline.__all__ if not hasattr(batchline, name)]
        assert missing == []

    def test_package_ships_py_typed(self) -> None:
        """py.typed is part of the package, so type checkers read its hints."""
        assert importlib.resources.files("batchline").joinpath("py.typed").is_file()
