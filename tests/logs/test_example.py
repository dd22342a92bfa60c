"""examples/logging_quickstart.py (the docs/logging.md console example) runs and correlates."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import flowtel

ROOT = Path(__file__).resolve().parents[2]
SRC = str(Path(flowtel.__file__).resolve().parents[1])


class TestQuickstartExample:
    def test_log_lines_share_the_span_short_trace_id(self) -> None:
        """Both log lines inside the span are printed under it, with its 8-digit trace prefix."""
        result = subprocess.run(
            [sys.executable, str(ROOT / "examples" / "logging_quickstart.py")],
            capture_output=True,
            text=True,
            timeout=60,
            env={"PYTHONPATH": SRC, "PATH": "/usr/bin:/bin"},
            check=False,
        )
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        (span_line,) = [line for line in lines if "✓ checkout" in line]
        short = span_line.split()[0]
        under = [line for line in lines if line.startswith(f"{short}     │ ")]
        assert [line.split()[3] for line in under if line.split()[2][:1].isdigit()] == [
            "INFO",
            "ERROR",
        ]
        assert "KeyError: 'sku'" in under[-1]  # the traceback stays under the span too
        assert lines.index(span_line) == len(under)  # the span line closes its block
        assert "hunter2" not in result.stdout and "tok_4242" not in result.stdout
        assert any(line.endswith("WARNING orders.api: no span here") for line in lines)
