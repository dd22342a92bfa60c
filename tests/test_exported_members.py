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
            and name != "annotations"
        }
        assert public <= set(flowtel.__all__), public - set(flowtel.__all__)

    def test_public_objects_come_from_public_modules(self) -> None:
        """Users never need a _private module: each exported object says where it lives."""
        for name in flowtel.__all__:
            module = getattr(getattr(flowtel, name), "__module__", "flowtel")
            assert module.startswith("flowtel"), (name, module)
