"""The console's closing table: calls, errors and p50/p95 duration per operation.

Built from the spans the console saw (sampled spans of this process), in bounded memory: at most
``_MAX_OPERATIONS`` rows and ``_MAX_SAMPLES`` durations per row (a uniform reservoir beyond that,
so p50/p95 stay estimates of the whole run). The exact, pre-sampling numbers remain
``flowtel.get_error_stats()`` and the ``flowtel.operation.*`` metrics.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field
from typing import Final

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode

from flowtel import semconv

__all__ = ["OperationSummary"]

_MAX_OPERATIONS: Final = 200
_MAX_SAMPLES: Final = 2048
_OTHER: Final = ("(other)", "")


@dataclass
class _Row:
    calls: int = 0
    errors: int = 0
    samples: list[float] = field(default_factory=list)


def _percentile(sorted_ms: list[float], q: float) -> float:
    """Nearest-rank percentile (what a reader checks by hand)."""
    if not sorted_ms:
        return 0.0
    rank = max(1, -(-len(sorted_ms) * q // 100))
    return sorted_ms[int(rank) - 1]


class OperationSummary:
    """Counts finished spans per (component, operation); thread-safe, bounded."""

    def __init__(self) -> None:
        self._rows: dict[tuple[str, str], _Row] = {}
        self._lock = threading.Lock()
        self._random = random.Random(0)

    def add(self, span: ReadableSpan) -> None:
        """Count one finished span."""
        attrs = span.attributes or {}
        component = attrs.get(semconv.COMPONENT)
        operation = attrs.get(semconv.OPERATION)
        key = (str(component), str(operation)) if component and operation else (span.name, "")
        duration_ms = ((span.end_time or 0) - (span.start_time or 0)) / 1e6
        failed = span.status.status_code is StatusCode.ERROR
        with self._lock:
            row = self._rows.get(key)
            if row is None:
                if len(self._rows) >= _MAX_OPERATIONS:
                    key = _OTHER
                row = self._rows.setdefault(key, _Row())
            row.calls += 1
            row.errors += failed
            if len(row.samples) < _MAX_SAMPLES:
                row.samples.append(duration_ms)
            else:
                slot = self._random.randrange(row.calls)
                if slot < _MAX_SAMPLES:
                    row.samples[slot] = duration_ms

    def render(self) -> str:
        """The table, or ``""`` when no span was seen."""
        with self._lock:
            rows = sorted((k, r.calls, r.errors, sorted(r.samples)) for k, r in self._rows.items())
        if not rows:
            return ""
        names = [f"{c} {o}".strip() for (c, o), *_ in rows]
        width = max(24, *(len(n) for n in names))
        out = [
            "── flowtel summary (spans printed above, by operation) ──",
            f"{'operation':<{width}} {'calls':>6} {'errors':>6} {'p50':>10} {'p95':>10}",
        ]
        for name, (_, calls, errors, samples) in zip(names, rows, strict=True):
            p50, p95 = _percentile(samples, 50), _percentile(samples, 95)
            out.append(f"{name:<{width}} {calls:>6} {errors:>6} {p50:>8.2f}ms {p95:>8.2f}ms")
        return "\n".join(out) + "\n"
