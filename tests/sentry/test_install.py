"""sentry-sdk is imported only when Sentry is configured."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[2] / "src")


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter with this checkout's ``src`` first on the path."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": SRC, "PATH": "/usr/bin:/bin"},
        check=False,
    )


class TestLazyImport:
    def test_importing_flowtel_and_the_bridge_module_does_not_import_sentry_sdk(self) -> None:
        """`import flowtel.sentry._bridge` alone leaves sentry_sdk out of sys.modules."""
        result = run_python(
            """
            import sys
            import flowtel, flowtel.sentry
            print("sentry_sdk" in sys.modules)
            """
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "False"


class TestDocsExample:
    def test_quickstart_example_prints_one_linked_event(self, tmp_path: Path) -> None:
        """examples/sentry_quickstart.py runs outside the repository and shows one linked event."""
        root = Path(__file__).resolve().parents[2]
        result = subprocess.run(
            [sys.executable, str(root / "examples" / "sentry_quickstart.py")],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,  # nothing from tests/ is importable: the example brings its endpoint
            env={"PYTHONPATH": SRC, "PATH": "/usr/bin:/bin"},
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert "Sentry events received: 1\n" in result.stdout
        assert "sk_live_" not in result.stdout
        trace_ids = {
            word.split("=")[1]
            for line in result.stdout.splitlines()
            for word in line.split()
            if word.startswith("trace_id=")
        }
        assert len(trace_ids) == 1
        assert f'"trace_id": "{trace_ids.pop()}"' in result.stdout
