"""The public surface of flowtel.resilience: complete, sorted, and free of optional imports."""

from __future__ import annotations

import subprocess
import sys
import types
from pathlib import Path

from flowtel import resilience

SRC = str(Path(__file__).resolve().parents[2] / "src")


class TestPublicApi:
    def test_all_is_sorted_complete_and_resolvable(self) -> None:
        """__all__ is sorted, every name resolves, and no public name is missing from it."""
        assert list(resilience.__all__) == sorted(set(resilience.__all__))
        public = {
            name
            for name, value in vars(resilience).items()
            if not name.startswith("_")
            and not isinstance(value, types.ModuleType)
            and name != "annotations"
        }
        assert public == set(resilience.__all__)

    def test_no_optional_dependency_is_imported(self) -> None:
        """Importing and using flowtel.resilience never imports tenacity or httpx."""
        script = (
            "import sys, flowtel.resilience as r\n"
            "r.retry(2, clock=r.VirtualClock())(lambda: 1)()\n"
            "print(sorted(m for m in ('tenacity', 'httpx', 'sentry_sdk') if m in sys.modules))\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            timeout=60,
            env={"PYTHONPATH": SRC},
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "[]"


class TestDocsExample:
    def test_stacked_agent_example_runs(self) -> None:
        """examples/resilience_agent.py (shown in docs/resilience.md) runs and tells its story."""
        root = Path(__file__).resolve().parents[2]
        done = subprocess.run(
            [sys.executable, str(root / "examples" / "resilience_agent.py")],
            capture_output=True,
            text=True,
            timeout=60,
            env={"PYTHONPATH": SRC},
            check=False,
        )
        assert done.returncode == 0, done.stderr
        out = done.stdout
        assert "answer: echo: plan the trip" in out
        assert "step 3 failed: CircuitOpenError" in out
        assert "flowtel.resilience.delay_s=1.00" in out  # the Retry-After hint
        assert "flowtel.circuit_breaker.state{name=llm-api,state=open} 1" in out
        assert (
            "flowtel.resilience.calls{outcome=success_after_retry,strategy=retry,"
            "operation=llm.complete} 1" in out
        )
