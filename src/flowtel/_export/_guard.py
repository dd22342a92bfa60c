"""Shared deadline and loss accounting for flowtel's export pipelines.

Why: raw OpenTelemetry can hold a process hostage when the collector misbehaves. The OTLP
exporters retry for up to their timeout, ``BatchSpanProcessor.force_flush`` ignores its timeout
and ``TracerProvider.shutdown()`` waits up to 30 s, which in Kubernetes eats the whole
termination grace period. And when telemetry is lost nothing says so.

An :class:`ExportGuard` is shared by every exporter and batch processor of one configuration. It
holds the shutdown deadline (set once by :meth:`ExportGuard.begin_shutdown`; every guarded call
after that stops waiting at the deadline), the exact count of lost items and failed exports
(reported as the ``flowtel.telemetry.dropped`` and ``flowtel.telemetry.export.failures``
counters) and a rate-limited log of failures (one warning per signal and reason per interval,
with the number suppressed). The exporters that honour it live in
:mod:`flowtel._guarded_exporters`, the batch processors in :mod:`flowtel._batch_processor`.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Final, Literal

from opentelemetry.metrics import CallbackOptions, Meter, Observation

from flowtel import semconv
from flowtel._core._options import DEFAULT_BATCH_EXPORT_TIMEOUT_S, DEFAULT_SHUTDOWN_TIMEOUT_S

__all__ = [
    "DEFAULT_SHUTDOWN_TIMEOUT_S",
    "ExportGuard",
    "LossReason",
    "TelemetrySignal",
]

_logger = logging.getLogger("flowtel.export")

DEFAULT_EXPORT_TIMEOUT_S: Final = DEFAULT_BATCH_EXPORT_TIMEOUT_S
"""Longest a single export may take before it is abandoned (``OTEL_BSP_EXPORT_TIMEOUT``)."""
DEFAULT_LOG_INTERVAL_S: Final = 60.0
"""At most one failure warning per signal and reason in this interval."""


if TYPE_CHECKING:  # annotations only: building ``Literal`` types at import costs process start
    Signal = Literal["traces", "metrics", "logs"]
    Reason = Literal[
        "queue_full", "export_failed", "export_timeout", "shutdown_timeout", "after_shutdown"
    ]


class TelemetrySignal:
    """The telemetry signal an item belongs to (value of ``flowtel.signal``).

    String constants typed as literals, not an Enum: creating Enum classes costs process start
    more than they give here, where the values only become metric attributes and log text.
    """

    TRACES: Final = "traces"
    METRICS: Final = "metrics"
    LOGS: Final = "logs"


class LossReason:
    """Why items were lost or an export failed (value of ``flowtel.reason``)."""

    QUEUE_FULL: Final = "queue_full"
    """The batch queue was at capacity; the new item was not queued."""
    EXPORT_FAILED: Final = "export_failed"
    """The exporter returned failure or raised (collector refused, 5xx, reset, ...)."""
    EXPORT_TIMEOUT: Final = "export_timeout"
    """The export overran its timeout (or the previous one is still stuck) and was abandoned."""
    SHUTDOWN_TIMEOUT: Final = "shutdown_timeout"
    """The shutdown budget ran out before the items could be exported."""
    AFTER_SHUTDOWN: Final = "after_shutdown"
    """The item ended after its pipeline shut down (``Telemetry.shutdown()``, or a span that
    started before a reconfiguration and ended after the old pipeline closed)."""


_MAX_RESERVE_S: Final = 0.25
"""Part of the shutdown budget kept back from exports so processors can stop in time."""


class _RateLimitedLog:
    """Logs a warning per key at most once per interval, counting what it suppressed."""

    def __init__(self, interval_s: float, clock: Callable[[], float]) -> None:
        self._interval_s = interval_s
        self._clock = clock
        self._lock = threading.Lock()
        self._next_at: dict[tuple[str, str], float] = {}
        self._suppressed: dict[tuple[str, str], int] = {}

    def warn(self, key: tuple[str, str], message: str, *args: object) -> None:
        now = self._clock()
        with self._lock:
            if now < self._next_at.get(key, float("-inf")):
                self._suppressed[key] = self._suppressed.get(key, 0) + 1
                return
            self._next_at[key] = now + self._interval_s
            suppressed = self._suppressed.pop(key, 0)
        # logging.Handler.handleError already contains failures of a broken logging setup.
        if suppressed:
            _logger.warning(
                message + " (+%d similar in the last %.0fs)", *args, suppressed, self._interval_s
            )
        else:
            _logger.warning(message, *args)


class ExportGuard:
    """Deadline and loss accounting shared by one configuration's exporters and processors.

    Thread-safe: counters and the deadline are guarded by one lock; the hot path of a batch
    processor only touches it when an item is actually dropped.

    Args:
        shutdown_timeout_s: budget used when shutdown starts without an explicit timeout (the
            exit hook, ``TracerProvider.shutdown()``).
        export_timeout_s: longest one export call may take before it is abandoned.
        log_interval_s: minimum time between two failure warnings for one signal and reason.
        log_clock: monotonic clock of the warning rate limiter, injectable for tests.
    """

    def __init__(
        self,
        *,
        shutdown_timeout_s: float = DEFAULT_SHUTDOWN_TIMEOUT_S,
        export_timeout_s: float = DEFAULT_EXPORT_TIMEOUT_S,
        log_interval_s: float = DEFAULT_LOG_INTERVAL_S,
        log_clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.shutdown_timeout_s = shutdown_timeout_s
        self.export_timeout_s = export_timeout_s
        self._lock = threading.Lock()
        self._deadline: float | None = None
        self._export_deadline: float | None = None
        self._dropped: dict[tuple[Signal, Reason], int] = {}
        self._failures: dict[tuple[Signal, Reason], int] = {}
        self._log = _RateLimitedLog(log_interval_s, log_clock)
        if hasattr(os, "register_at_fork"):
            weak_self = weakref.ref(self)

            def _after_in_child() -> None:
                guard = weak_self()
                if guard is not None:
                    guard.reset_after_fork()

            os.register_at_fork(after_in_child=_after_in_child)

    # -- deadline -------------------------------------------------------------------------
    def begin_shutdown(self, timeout_s: float | None = None) -> float:
        """Start the shutdown clock (first call wins) and return the seconds left in it.

        Every guarded export stops waiting shortly before the deadline (a small reserve lets
        processors stop their workers and exporters in time); items not exported by then are
        dropped and counted as ``shutdown_timeout``.
        """
        budget = self.shutdown_timeout_s if timeout_s is None else max(0.0, timeout_s)
        with self._lock:
            if self._deadline is None:
                self._deadline = time.monotonic() + budget
                self._export_deadline = self._deadline - min(_MAX_RESERVE_S, budget * 0.2)
        return self.shutdown_remaining_s()

    @property
    def closing(self) -> bool:
        """True once shutdown has started."""
        return self._deadline is not None

    def remaining_s(self, cap_s: float | None = None) -> float:
        """Seconds an export may still wait: ``cap_s`` (default: the export timeout), never
        past the shutdown deadline minus its reserve. Zero or less means "do not wait"."""
        limit = self.export_timeout_s if cap_s is None else cap_s
        deadline = self._export_deadline
        if deadline is None:
            return limit
        return min(limit, deadline - time.monotonic())

    def shutdown_remaining_s(self) -> float:
        """Seconds left of the shutdown budget (infinite before shutdown starts)."""
        deadline = self._deadline
        return float("inf") if deadline is None else deadline - time.monotonic()

    def reset_after_fork(self) -> None:
        """Start a forked child afresh: no deadline, zero counts (the parent reports its own)."""
        self._lock = threading.Lock()
        self._deadline = None
        self._export_deadline = None
        self._dropped = {}
        self._failures = {}

    # -- accounting -----------------------------------------------------------------------
    def record_drop(self, signal: Signal, reason: Reason, count: int) -> None:
        """Count ``count`` items of ``signal`` lost for ``reason`` and log (rate-limited)."""
        if count <= 0:
            return
        with self._lock:
            key = (signal, reason)
            self._dropped[key] = self._dropped.get(key, 0) + count
        self._log.warn(
            (signal, reason),
            "flowtel dropped %d %s (%s)",
            count,
            _ITEM_NAMES[signal],
            reason,
        )

    def record_failure(self, signal: Signal, reason: Reason, detail: str = "") -> None:
        """Count one failed export batch of ``signal`` and log (rate-limited)."""
        with self._lock:
            key = (signal, reason)
            self._failures[key] = self._failures.get(key, 0) + 1
        self._log.warn(
            ("failure:" + signal, reason),
            "flowtel %s export failed (%s)%s",
            signal,
            reason,
            f": {detail}" if detail else "",
        )

    def dropped(
        self, signal: Signal | str | None = None, reason: Reason | str | None = None
    ) -> int:
        """Items lost so far, optionally for one signal and/or reason (enum or its value)."""
        with self._lock:
            return _total(self._dropped, signal, reason)

    def failures(
        self, signal: Signal | str | None = None, reason: Reason | str | None = None
    ) -> int:
        """Failed export batches so far, optionally for one signal and/or reason."""
        with self._lock:
            return _total(self._failures, signal, reason)

    def instrument(self, meter: Meter) -> None:
        """Report the counts as ``flowtel.telemetry.dropped`` / ``.export.failures`` on ``meter``.

        Observable counters read the exact totals at collection time, so counting costs nothing
        on the hot path and works before the metric pipeline exists.
        """
        dropped = semconv.metric(semconv.METRIC_TELEMETRY_DROPPED)
        failures = semconv.metric(semconv.METRIC_TELEMETRY_EXPORT_FAILURES)
        meter.create_observable_counter(
            dropped.name,
            callbacks=[lambda options: self._observe(self._dropped, options)],
            unit=dropped.unit,
            description=dropped.description,
        )
        meter.create_observable_counter(
            failures.name,
            callbacks=[lambda options: self._observe(self._failures, options)],
            unit=failures.unit,
            description=failures.description,
        )

    def _observe(
        self, counts: dict[tuple[Signal, Reason], int], _options: CallbackOptions
    ) -> Iterable[Observation]:
        with self._lock:
            items = list(counts.items())
        return [
            Observation(
                value,
                {semconv.TELEMETRY_SIGNAL: signal, semconv.TELEMETRY_REASON: reason},
            )
            for (signal, reason), value in items
        ]


_ITEM_NAMES: Final = {
    TelemetrySignal.TRACES: "spans",
    TelemetrySignal.METRICS: "metric points",
    TelemetrySignal.LOGS: "log records",
}


def _total(
    counts: dict[tuple[Signal, Reason], int],
    signal: Signal | str | None,
    reason: Reason | str | None,
) -> int:
    return sum(
        v
        for (s, r), v in counts.items()
        if (signal is None or s == signal) and (reason is None or r == reason)
    )
