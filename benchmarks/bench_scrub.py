"""What scrubbing costs per span and per log record: this tree against the previous scrubber.

Run: ``PYTHONPATH=src python benchmarks/bench_scrub.py`` (add ``--quick`` for a smoke run).

"Before" is ``src/flowtel/_core/_scrub.py`` as committed at git ``HEAD`` (or ``--before REV``),
loaded from ``git show`` into a temporary module, so both run in the same process on the same
inputs. Both use their defaults. The work per item is what flowtel's pipeline asks of the
scrubber:

- span: the name, 6 attributes by key and value, an exception message and stack trace;
- log record: the message, 3 extras by key and value;
- log record with an exception: the same plus the exception message and stack trace.

Values are made unique per iteration (a counter in them), so neither side's memoisation hides
the scan; a second span row repeats the same values, as a busy endpoint does. Prints ns per
item (best of 5 interleaved rounds) and the after/before ratio.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from flowtel._core import _scrub as after_module

ROOT = Path(__file__).resolve().parents[1]
MODULE = "src/flowtel/_core/_scrub.py"


def load_before(rev: str) -> ModuleType:
    """The scrubber module as of ``rev``, imported from a temporary file."""
    source = subprocess.run(
        ["git", "show", f"{rev}:{MODULE}"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    path = Path(tempfile.mkdtemp()) / "flowtel_scrub_before.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("flowtel_scrub_before", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _stack(depth: int = 8) -> str:
    """A realistic stack trace text (about 1.5 KB: eight frames with source lines)."""

    def fail(level: int) -> None:
        if level == 0:
            raise ValueError("upstream returned 503 for order 42")
        fail(level - 1)

    try:
        fail(depth)
    except ValueError as exc:
        return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return ""


STACK = _stack()


def span_work(scrubber: Any, i: int) -> None:
    scrubber.scrub_text(f"GET /api/v1/orders/{i}")
    for key, value in (
        ("http.request.method", "GET"),
        ("url.path", f"/api/v1/orders/{i}"),
        ("flowtel.arg.order_id", str(i)),
        ("user.agent", f"python-httpx/0.27.{i}"),
        ("gen_ai.request.model", f"gpt-4o-mini-{i}"),
        ("flowtel.component", "orders"),
    ):
        scrubber.scrub_value(key, value)
    scrubber.scrub_text(f"upstream returned 503 for order {i}")
    scrubber.scrub_text(STACK + str(i))


def log_work(scrubber: Any, i: int) -> None:
    scrubber.scrub_text(f"order {i} placed for customer 7 in 12.5 ms")
    for key, value in (("order_id", str(i)), ("amount", f"{i}.99"), ("currency", "EUR")):
        scrubber.scrub_value(key, value)


def log_exc_work(scrubber: Any, i: int) -> None:
    log_work(scrubber, i)
    scrubber.scrub_text(f"upstream returned 503 for order {i}")
    scrubber.scrub_text(STACK + str(i))


_next = 0


def per_item_ns(work: Callable[[Any, int], None], scrubber: Any, n: int, unique: bool) -> float:
    """Mean ns per item; unique values never repeat, not even across rounds or sides."""
    global _next
    base, _next = _next, _next + n
    start = time.perf_counter_ns()
    for i in range(base, base + n):
        work(scrubber, i if unique else 0)
    return (time.perf_counter_ns() - start) / n


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--before", default="HEAD")
    args = parser.parse_args()
    n, rounds = (300, 3) if args.quick else (3000, 5)
    before = load_before(args.before).Scrubber()
    after = after_module.Scrubber()
    cases = (
        ("span (unique values)", span_work, True),
        ("span (repeated values)", span_work, False),
        ("log record", log_work, True),
        ("log record with exception", log_exc_work, True),
    )
    print(f"scrubbing cost per item, best of {rounds} rounds of {n} ({args.before} vs tree)")
    print(f"{'item':<28}{'before ns':>12}{'after ns':>12}{'after/before':>14}")
    for label, work, unique in cases:
        best = {"before": float("inf"), "after": float("inf")}
        for _ in range(rounds):
            for name, scrubber in (("before", before), ("after", after)):
                best[name] = min(best[name], per_item_ns(work, scrubber, n, unique))
        ratio = best["after"] / best["before"]
        print(f"{label:<28}{best['before']:>12,.0f}{best['after']:>12,.0f}{ratio:>14.2f}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
