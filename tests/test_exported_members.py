"""The public API is exactly flowtel.__all__: sorted, importable, complete."""

from __future__ import annotations

import types

import flowtel


class TestPublicApi:
    def test_all_is_sorted_and_unique(self) -> None:
        """__all__ is sorted and has no duplicates."""
        assert list(flowtel.__all__) == sorted(set(flowtel.__all__))

    def test_every_name_resolves(self) -> None:
        """Every name in __all__ is an attribute of the package."""
        for name in flowtel.__all__:
            assert getattr(flowtel, name) is not None, name

    def test_no_public_name_missing_from_all(self) -> None:
        """Every public, non-module attribute of flowtel is listed in __all__."""
        public = {
            name
            for name, value in vars(flowtel).items()
            if not name.startswith("_")
            and not isinstance(value, types.ModuleType)
            and name not in ("annotations", "TYPE_CHECKING", "Any")
        }
        assert public <= set(flowtel.__all__), public - set(flowtel.__all__)

    def test_lazy_names_match_their_modules(self) -> None:
        """Every lazily loaded name is the object its public module defines."""
        import importlib

        for name, module in flowtel._LAZY.items():
            assert name in flowtel.__all__
            assert getattr(flowtel, name) is getattr(importlib.import_module(module), name)

    def test_all_is_small(self) -> None:
        """The top-level API stays small (about 20 names); the rest lives in public modules."""
        assert len(flowtel.__all__) <= 24
