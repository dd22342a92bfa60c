"""The README's first command runs this demo; it must keep working and show what it recorded."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

DEMO = Path(__file__).parents[1] / "examples" / "demo.py"


class TestDemo:
    def test_demo_prints_spans_probes_and_error_stats(self) -> None:
        """The demo serves real HTTP, shows /startup 503 then 200, spans and exact error stats."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "FLOWTEL_"))}
        env["FLOWTEL_CONSOLE_COLORS"] = "false"
        result = subprocess.run(
            [sys.executable, str(DEMO)], env=env, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, result.stderr
        out = result.stdout
        assert "/startup while the service started: 503 -> 200" in out
        assert re.search(r"✗ agent_service\.retrieve .*error=\"LookupError", out)
        assert "POST /ask 'an unknown topic'   -> 404" in out
        assert "requests made: 4, 2 client errors (4xx), 0 server errors (5xx)" in out
        assert "get_error_stats().entries: 4 requests, 0 failed (0.0%)" in out
        assert re.search(r"get_error_stats\(\): \d+ operations, 2 failed", out)
        assert '"state": "READY"' in out
        assert "✓ flowtel.shutdown " in out
        assert "httpx: HTTP Request" not in out  # library INFO records stay out by default
        assert re.search(r"agent answer +3 +1 +[\d.]+ms +[\d.]+ms", out)  # console summary
        assert "\nNext steps\n" in out and "flowtel doctor" in out


class TestTracingQuickstart:
    def test_docs_example_output(self) -> None:
        """docs/tracing.md's example prints nested spans, the failure, and scrubs the token."""
        script = DEMO.parent / "tracing_quickstart.py"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "FLOWTEL_"))}
        result = subprocess.run(
            [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        assert re.fullmatch(r"[0-9a-f]{8}   ✓ fraud_check \d+\.\d\dms order_id=o-1", lines[0])
        assert "✗ __main__.charge" in lines[3] and "token=[REDACTED]" in lines[3]
        assert "· exception" in lines[4]
        assert lines[6].startswith("── flowtel summary")
        assert "tok_live_4242" not in result.stdout
