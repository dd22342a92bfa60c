"""Immutable results of :func:`flowtel.errors.get_error_stats`.

Why separate from the processor: these are plain values a health check or a log line can hold on
to; they never reference the live counters, so reading them needs no lock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from types import MappingProxyType
from typing import NamedTuple

from flowtel.errors._buckets import Key, KeyTotals

__all__ = ["ErrorStats", "OperationStats", "build_stats", "empty_stats"]


class OperationStats(NamedTuple):
    """Calls and errors of one (component, operation) over the queried window.

    Attributes:
        total: finished operations (spans), sampled or not.
        errors: those whose span status was ERROR.
        handled: errors reported with :func:`record_error`; not part of ``total`` or ``errors``.
        error_rate: ``errors / total``, 0.0 when there were no calls.
    """

    total: int
    errors: int
    handled: int
    error_rate: float


@dataclass(frozen=True, slots=True)
class ErrorStats:
    """An immutable snapshot of calls and errors over the last minutes.

    Attributes:
        total: finished operations in the window.
        errors: failed operations (span status ERROR).
        handled: handled errors reported with :func:`record_error`.
        error_rate: ``errors / total``, 0.0 when ``total`` is 0.
        window: the time actually covered: whole buckets, so at least the requested minutes
            unless the processor is younger than that or the request is longer than its window.
        by_type: failed operations per error type, most frequent first.
        by_operation: per (component, operation), most failing first.
    """

    total: int
    errors: int
    handled: int
    error_rate: float
    window: timedelta
    by_type: Mapping[str, int]
    by_operation: Mapping[Key, OperationStats]

    def top(self, n: int = 5) -> tuple[tuple[Key, OperationStats], ...]:
        """The ``n`` operations with the most errors (ties: higher rate first), errors only."""
        failing = [item for item in self.by_operation.items() if item[1].errors]
        failing.sort(key=lambda item: (-item[1].errors, -item[1].error_rate, item[0]))
        return tuple(failing[:n])

    def exceeds(self, rate: float = 0.05, min_calls: int = 20) -> bool:
        """True when at least ``min_calls`` calls were seen and the error rate is above ``rate``.

        ``min_calls`` keeps a health check from flapping on one failure out of two calls.
        """
        return self.total >= min_calls and self.error_rate > rate


def _rate(errors: int, total: int) -> float:
    return errors / total if total else 0.0


def empty_stats(window_s: float = 0.0) -> ErrorStats:
    return ErrorStats(0, 0, 0, 0.0, timedelta(seconds=window_s), MappingProxyType({}),
                      MappingProxyType({}))  # fmt: skip


def build_stats(per_key: dict[Key, KeyTotals], window_s: float) -> ErrorStats:
    total = errors = handled = 0
    by_type: dict[str, int] = {}
    operations = []
    for key, (k_total, k_errors, k_handled, k_by_type) in per_key.items():
        total += k_total
        errors += k_errors
        handled += k_handled
        for error_type, n in k_by_type.items():
            by_type[error_type] = by_type.get(error_type, 0) + n
        rate = k_errors / k_total if k_total else 0.0
        stats = OperationStats(k_total, k_errors, k_handled, rate)
        operations.append((-k_errors, -rate, key, stats))
    operations.sort()
    ordered_types = sorted(by_type.items(), key=lambda i: (-i[1], i[0]))
    return ErrorStats(
        total=total,
        errors=errors,
        handled=handled,
        error_rate=_rate(errors, total),
        window=timedelta(seconds=window_s),
        by_type=MappingProxyType(dict(ordered_types)),
        by_operation=MappingProxyType({op[2]: op[3] for op in operations}),
    )
