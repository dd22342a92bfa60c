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
        """Both log lines inside the span end with the span line's 8-digit trace prefix."""
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
        (span_line,) = [line for line in lines if "checkout" in line]
        short = span_line.split()[0]
        tagged = [line for line in lines if line.endswith(f"[trace {short}]")]
        assert [line.split()[1] for line in tagged] == ["INFO", "ERROR"]
        assert "KeyError: 'sku'" in result.stdout
        assert "hunter2" not in result.stdout and "tok_4242" not in result.stdout
        assert lines[-1].endswith("WARNING orders.api: no span here")
