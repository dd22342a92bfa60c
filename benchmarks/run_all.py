"""Run the benchmarks and print their reports; ``--quick`` runs the short set and writes a table.

``make bench`` runs every ``bench_*.py`` in full. ``make bench-quick`` (and CI) runs the short
versions of the headline rows (``BENCH_QUICK=1``) and writes ``benchmarks/results.md``: every
ratio against its anchor, measured in the same run, with the target it is held to. Nothing
here gates: shared machines are noisy, so CI prints the table and moves on.
``docs/performance.md`` quotes full runs.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent
QUICK_SET = ("bench_defaults.py", "bench_errors.py", "bench_sampling.py", "bench_scrub.py")
QUICK_TIMEOUT_S = 300

#: key: (what is measured, anchor, target, True when higher is better)
TARGETS: dict[str, tuple[str, str, float, bool]] = {
    "success_sync": ("successful @traced call, sync", "raw SDK pipeline", 0.8, False),
    "success_async": ("successful @traced call, async", "raw SDK pipeline", 0.8, False),
    "failing": ("failing call", "raw span recording the exception", 1.0, False),
    "nested_10": ("exception through 10 nested frames", "raw equivalent", 1.5, False),
    "nested_50": ("exception through 50 nested frames", "raw equivalent", 1.5, False),
    "log_record": ("log record inside a span", "SDK LoggingHandler", 1.0, False),
    "sampled_0_1": ("call at sample_rate=0.1, counted", "raw ratio sampler", 1.0, False),
    "export_throughput": ("export throughput, 4 threads", "raw BatchSpanProcessor", 1.5, True),
    "encoding": ("OTLP encoding per span", "raw spans, same attributes", 1.0, False),
}
_RESULT = re.compile(r"^(?:RESULT|RATIO)\s+(\S+)\s+([0-9.]+)\s*$")


def run(
    script: Path, env: dict[str, str], timeout_s: float | None, args: list[str]
) -> tuple[int, str]:
    start = time.perf_counter()
    try:
        proc = subprocess.run(
            [sys.executable, str(script), *args],
            cwd=HERE.parent,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
        code, out = proc.returncode, proc.stdout + proc.stderr[-2000:]
    except subprocess.TimeoutExpired as exc:
        captured = exc.stdout or ""
        text = captured.decode() if isinstance(captured, bytes) else captured
        code, out = -1, text + f"\n(timed out after {timeout_s:.0f} s)"
    print(out, end="")
    print(f"({script.name}: {time.perf_counter() - start:.1f} s, exit {code})", flush=True)
    return code, out


def table(results: dict[str, dict[str, float]], outputs: dict[str, str]) -> str:
    lines = [
        "# Benchmark results (quick run)",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}. Each ratio is flowtel over its anchor, both measured in "
        "the same run on the defaults (median of paired rounds). Quick runs are short and "
        "noisy: `docs/performance.md` quotes full runs.",
        "",
        "| benchmark | row | ratio | anchor | target | met |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for script, rows in results.items():
        for key, ratio in rows.items():
            what, anchor, target, higher = TARGETS.get(key, (key, "see the script", 0.0, False))
            if target:
                met = ratio >= target if higher else ratio <= target
                goal = f"{'≥' if higher else '≤'} {target:.2f}x"
                verdict = "yes" if met else "no"
            else:
                goal, verdict = "", ""
            lines.append(f"| {script} | {what} | {ratio:.2f}x | {anchor} | {goal} | {verdict} |")
    for script, out in outputs.items():
        tail = "\n".join(out.strip().splitlines()[-30:])
        lines += ["", f"## {script}", "", "```text", tail, "```"]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="short runs; write results.md")
    args = parser.parse_args()
    env = dict(os.environ)
    if args.quick:
        env["BENCH_QUICK"] = "1"
        scripts = [HERE / name for name in QUICK_SET if (HERE / name).exists()]
    else:
        scripts = sorted(HERE.glob("bench_*.py"))
    failed = 0
    results: dict[str, dict[str, float]] = {}
    outputs: dict[str, str] = {}
    for script in scripts:
        print(f"\n===== {script.name} =====", flush=True)
        extra = ["--quick"] if args.quick else []
        code, out = run(script, env, QUICK_TIMEOUT_S if args.quick else None, extra)
        outputs[script.name] = out
        failed += code != 0
        rows = {m[1]: float(m[2]) for m in map(_RESULT.match, out.splitlines()) if m}
        if rows:
            results[script.name] = rows
    if args.quick:
        text = table(results, outputs)
        (HERE / "results.md").write_text(text)
        print("\n" + text)
        return 0  # a report, never a gate
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
