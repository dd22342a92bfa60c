"""Run every benchmark in this folder, one after the other, and print their reports.

``make bench`` calls this. Each benchmark measures raw OpenTelemetry in the same run and reports
ratios; absolute times depend on the machine, ratios much less. ``docs/performance.md`` quotes the
output of one such run.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent


def main() -> int:
    failed = 0
    for script in sorted(HERE.glob("bench_*.py")):
        print(f"\n===== {script.name} =====", flush=True)
        start = time.perf_counter()
        result = subprocess.run([sys.executable, str(script)], cwd=HERE.parent)
        print(f"({script.name}: {time.perf_counter() - start:.1f} s, exit {result.returncode})")
        failed += result.returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
