"""Immutable results of :func:`flowtel.errors.get_error_stats`: two levels, one window.

Why separate from the processor: these are plain values a health check or a log line can hold on
to; they never reference the live counters, so reading them needs no lock. Per-operation
figures are computed on first access from column copies taken under the lock: a query that
only reads the totals costs the same at 10 and at 10,000 operations.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from types import MappingProxyType
from typing import NamedTuple, NoReturn

from flowtel.errors._buckets import Key, KeyTotals
from flowtel.errors._window import Totals, key_counts

__all__ = [
    "ErrorStats",
    "LevelStats",
    "OperationStats",
    "build_level",
    "build_stats",
    "dimension_stats",
    "empty_stats",
]


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


def _rate(errors: int, total: int) -> float:
    return errors / total if total else 0.0


def _ordered(per_key: Mapping[Key, OperationStats]) -> Mapping[Key, OperationStats]:
    items = sorted(per_key.items(), key=lambda i: (-i[1].errors, -i[1].error_rate, i[0]))
    return MappingProxyType(dict(items))


class _Lazy(Mapping[Key, OperationStats]):
    """``by_operation`` computed on first access (outside the processor's lock)."""

    __slots__ = ("_compute", "_data")

    def __init__(self, compute: Callable[[], Mapping[Key, OperationStats]]) -> None:
        self._compute: Callable[[], Mapping[Key, OperationStats]] | None = compute
        self._data: Mapping[Key, OperationStats] | None = None

    def _get(self) -> Mapping[Key, OperationStats]:
        compute = self._compute
        if compute is not None:
            self._data, self._compute = compute(), None
        return self._data if self._data is not None else MappingProxyType({})

    def __getitem__(self, key: Key) -> OperationStats:
        return self._get()[key]

    def __iter__(self) -> Iterator[Key]:
        return iter(self._get())

    def __len__(self) -> int:
        return len(self._get())

    def __repr__(self) -> str:
        return f"mappingproxy({dict(self._get())!r})"


@dataclass(frozen=True, slots=True)
class LevelStats:
    """Calls and errors at one level (entries or operations) over the queried window.

    Attributes:
        total: finished entries (or operations) in the window.
        errors: failed ones.
        handled: handled errors reported with :func:`record_error` (operation level only).
        error_rate: ``errors / total``, 0.0 when ``total`` is 0.
        by_type: failures per error type, most frequent first.
        by_operation: per (component, operation), most failing first.
        by_dimension: per ``error_dimensions`` attribute, per value (``None``: spans without
            it; ``_other``: values beyond the cap), most failing first; ``handled`` is 0.
            Service-wide: empty for a query filtered by component or operation.
    """

    total: int = 0
    errors: int = 0
    handled: int = 0
    error_rate: float = 0.0
    by_type: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    by_operation: Mapping[Key, OperationStats] = field(default_factory=lambda: MappingProxyType({}))
    by_dimension: Mapping[str, Mapping[str | None, OperationStats]] = field(
        default_factory=lambda: MappingProxyType({})
    )

    def top(self, n: int = 5) -> tuple[tuple[Key, OperationStats], ...]:
        """The ``n`` keys with the most errors (ties: higher rate first), errors only."""
        return _top(self.by_operation, n)

    def exceeds(self, rate: float = 0.05, min_calls: int = 20) -> bool:
        """True when at least ``min_calls`` were seen and the error rate is above ``rate``."""
        return self.total >= min_calls and self.error_rate > rate


def _top(
    by_operation: Mapping[Key, OperationStats], n: int
) -> tuple[tuple[Key, OperationStats], ...]:
    failing = [item for item in by_operation.items() if item[1].errors]
    failing.sort(key=lambda item: (-item[1].errors, -item[1].error_rate, item[0]))
    return tuple(failing[:n])


@dataclass(frozen=True, slots=True)
class ErrorStats:
    """An immutable snapshot of calls and errors over the last minutes, at two levels.

    ``entries`` is the service's own error rate: one count per request, job or message (local
    root spans and SERVER/CONSUMER spans), whatever the depth of the exception. Use it for
    health checks and alerts. ``operations`` counts every span; the top-level fields below are
    the operation level, as in earlier releases.

    Attributes:
        total: finished operations in the window.
        errors: failed operations (span status ERROR).
        handled: handled errors reported with :func:`record_error`.
        error_rate: ``errors / total``, 0.0 when ``total`` is 0.
        window: the time actually covered: whole buckets, so at least the requested minutes
            unless the processor is younger than that or the request is longer than its window.
        by_type: failed operations per error type, most frequent first.
        by_operation: per (component, operation), most failing first.
        entries: the entry level (requests, jobs, messages).
        by_dimension: failed operations per ``error_dimensions`` value (see
            :class:`LevelStats`); ``stats.entries.by_dimension`` says which users a failure hit.
    """

    total: int
    errors: int
    handled: int
    error_rate: float
    window: timedelta
    by_type: Mapping[str, int]
    by_operation: Mapping[Key, OperationStats]
    entries: LevelStats = field(default_factory=LevelStats)
    by_dimension: Mapping[str, Mapping[str | None, OperationStats]] = field(
        default_factory=lambda: MappingProxyType({})
    )

    @property
    def operations(self) -> LevelStats:
        """The operation level (every span) as a :class:`LevelStats`."""
        return LevelStats(
            self.total,
            self.errors,
            self.handled,
            self.error_rate,
            self.by_type,
            self.by_operation,
            self.by_dimension,
        )

    def top(self, n: int = 5) -> tuple[tuple[Key, OperationStats], ...]:
        """The ``n`` operations with the most errors (ties: higher rate first), errors only."""
        return _top(self.by_operation, n)

    def exceeds(self, rate: float = 0.05, min_calls: int = 20) -> bool:
        """True when at least ``min_calls`` operations were seen and their error rate is above
        ``rate``. ``min_calls`` keeps a health check from flapping on one failure out of two.
        For the service's rate use ``stats.entries.exceeds(...)``."""
        return self.total >= min_calls and self.error_rate > rate

    def __await__(self) -> NoReturn:
        """``await get_error_stats()`` is a mistake worth a clear message, not a bare TypeError."""
        raise TypeError(
            "flowtel.get_error_stats() is synchronous (and cheap): call it without 'await'; "
            "it returns ErrorStats directly"
        )


def empty_stats(window_s: float = 0.0) -> ErrorStats:
    return ErrorStats(
        0, 0, 0, 0.0, timedelta(seconds=window_s), MappingProxyType({}), MappingProxyType({})
    )


def _types(by_type: Mapping[str, int]) -> Mapping[str, int]:
    return MappingProxyType(dict(sorted(by_type.items(), key=lambda i: (-i[1], i[0]))))


def _from_keys(per_key: Mapping[Key, KeyTotals]) -> LevelStats:
    total = errors = handled = 0
    by_type: dict[str, int] = {}
    operations = {}
    for key, (k_total, k_errors, k_handled, k_by_type) in per_key.items():
        total, errors, handled = total + k_total, errors + k_errors, handled + k_handled
        for error_type, n in k_by_type.items():
            by_type[error_type] = by_type.get(error_type, 0) + n
        operations[key] = OperationStats(k_total, k_errors, k_handled, _rate(k_errors, k_total))
    return LevelStats(
        total, errors, handled, _rate(errors, total), _types(by_type), _ordered(operations)
    )


def build_level(
    totals: Totals, columns: list[Key] | None, per_key: Mapping[Key, KeyTotals] | None
) -> LevelStats:
    """One level: from per-key totals (a filtered query), else lazily from the column copies."""
    if per_key is not None:
        return _from_keys(per_key)
    keys = columns or []

    def compute() -> Mapping[Key, OperationStats]:
        out = {}
        for column, key in enumerate(keys):
            calls, errors, handled = key_counts(totals, column)
            if calls or handled:
                out[key] = OperationStats(calls, errors, handled, _rate(errors, calls))
        return _ordered(out)

    return LevelStats(
        totals.calls,
        totals.errors,
        totals.handled,
        _rate(totals.errors, totals.calls),
        _types(totals.types),
        _Lazy(compute),
    )


def dimension_stats(
    counts: Mapping[str, Mapping[str | None, tuple[int, int]]],
) -> Mapping[str, Mapping[str | None, OperationStats]]:
    """Per dimension, per value: (total, errors) as :class:`OperationStats`, most failing first."""
    out = {}
    for name, values in counts.items():
        items = sorted(values.items(), key=lambda i: (-i[1][1], -i[1][0], str(i[0])))
        out[name] = MappingProxyType(
            {value: OperationStats(t, e, 0, _rate(e, t)) for value, (t, e) in items}
        )
    return MappingProxyType(out)


def build_stats(operations: LevelStats, entries: LevelStats, window_s: float) -> ErrorStats:
    return ErrorStats(
        total=operations.total,
        errors=operations.errors,
        handled=operations.handled,
        error_rate=operations.error_rate,
        window=timedelta(seconds=window_s),
        by_type=operations.by_type,
        by_operation=operations.by_operation,
        entries=entries,
        by_dimension=operations.by_dimension,
    )
