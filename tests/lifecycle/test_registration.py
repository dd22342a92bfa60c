"""The three registration functions take the same shapes and name a wrong keyword clearly."""

from __future__ import annotations

import subprocess
import sys

import pytest

from flowtel.lifecycle import (
    Lifecycle,
    StartupOrchestrator,
    register_readiness_check,
    register_shutdown_hook,
    register_startup_check,
)

from ._process import ROOT

SHAPES = """
from flowtel.lifecycle import (default_lifecycle, default_orchestrator, default_readiness,
    register_readiness_check as r, register_shutdown_hook as h, register_startup_check as s)

for register in (r, h, s):
    @register
    def bare(): return None
    @register(name="called", timeout_s=1)
    def called(): return None
    @register("named", timeout_s=1)
    def named(): return None
    register(lambda: None, name="direct")
    register("direct_named", lambda: None)

print(sorted(c.name for c in default_readiness().checks))
print(sorted(default_lifecycle().hook_order()))
print(sorted(c.name for c in default_orchestrator().checks))
"""


class TestShapes:
    def test_every_shape_registers_on_every_registry(self) -> None:
        """Bare, called, name-first, direct and direct-with-name all register (a fresh process,
        so the process-wide registries of this one stay untouched)."""
        out = subprocess.run(
            [sys.executable, "-c", SHAPES], cwd=ROOT, capture_output=True, text=True, timeout=60,
            env={"PYTHONPATH": f"{ROOT / 'src'}", "PATH": ""},
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        expected = str(["bare", "called", "direct", "direct_named", "named"])
        assert out.stdout.splitlines() == [expected] * 3

    @pytest.mark.parametrize(
        ("register", "typo", "closest"),
        [
            (register_startup_check, "timout_s", "timeout_s"),
            (register_readiness_check, "intervl_s", "interval_s"),
            (register_shutdown_hook, "depends", "depends_on"),
        ],
    )
    def test_a_wrong_keyword_names_the_accepted_ones(
        self, register: object, typo: str, closest: str
    ) -> None:
        """TypeError names the function, the closest keyword and every accepted one."""
        name = getattr(register, "__name__", "")
        with pytest.raises(TypeError, match=rf"{name}\(\).*'{typo}'.*did you mean '{closest}'"):
            register(**{typo: 1})  # type: ignore[operator]

    def test_methods_take_the_same_shapes(self) -> None:
        """Lifecycle.register_shutdown_hook and StartupOrchestrator.check agree with them."""
        lifecycle = Lifecycle(StartupOrchestrator())

        @lifecycle.register_shutdown_hook
        def close_pool() -> None:
            return None

        lifecycle.register_shutdown_hook("close_http", lambda: None, depends_on=["close_pool"])
        assert lifecycle.hook_order() == ["close_http", "close_pool"]
        with pytest.raises(TypeError, match="did you mean 'timeout_s'"):
            StartupOrchestrator().check(timeout=2)
