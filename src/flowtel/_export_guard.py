"""Deadline-bounded, loss-counting wrappers around OpenTelemetry exporters.

Why: raw OpenTelemetry can hold a process hostage when the collector misbehaves. The OTLP
exporters retry for up to their timeout, ``BatchSpanProcessor.force_flush`` ignores its timeout
and ``TracerProvider.shutdown()`` waits up to 30 s, which in Kubernetes eats the whole
termination grace period. And when telemetry is lost nothing says so.

An :class:`ExportGuard` is shared by every exporter and batch processor of one configuration. It
holds the shutdown deadline (set once by :meth:`ExportGuard.begin_shutdown`; every guarded call
after that stops waiting at the deadline), the exact count of lost items and failed exports
(reported as the ``flowtel.telemetry.dropped`` and ``flowtel.telemetry.export.failures``
counters) and a rate-limited log of failures (one warning per signal and reason per interval,
with the number suppressed).

Each guarded exporter runs the real ``export``/``flush``/``shutdown`` on a helper thread and
waits at most until the deadline; a call that overruns is abandoned (it finishes or fails in the
background) and its items are counted as lost. At most one abandoned export per exporter is
ever outstanding: while it is stuck, later batches are dropped and counted instead of piling up
threads or memory.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from enum import Enum, StrEnum
from typing import Any, Final, Generic, TypeVar

from opentelemetry.metrics import CallbackOptions, Meter, Observation
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, MetricsData
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from flowtel import semconv

__all__ = [
    "DEFAULT_SHUTDOWN_TIMEOUT_S",
    "ExportGuard",
    "GuardedLogExporter",
    "GuardedMetricExporter",
    "GuardedSpanExporter",
    "LossReason",
    "TelemetrySignal",
]

_logger = logging.getLogger("flowtel.export")

DEFAULT_SHUTDOWN_TIMEOUT_S: Final = 3.0
"""Budget for ``Telemetry.shutdown()`` and the exit hook when none is given."""
DEFAULT_EXPORT_TIMEOUT_S: Final = 30.0
"""Longest a single export may take before it is abandoned (``OTEL_BSP_EXPORT_TIMEOUT``)."""
DEFAULT_LOG_INTERVAL_S: Final = 60.0
"""At most one failure warning per signal and reason in this interval."""


class TelemetrySignal(StrEnum):
    """The telemetry signal an item belongs to (value of ``flowtel.signal``)."""

    TRACES = "traces"
    METRICS = "metrics"
    LOGS = "logs"


class LossReason(StrEnum):
    """Why items were lost or an export failed (value of ``flowtel.reason``)."""

    QUEUE_FULL = "queue_full"
    """The batch queue was at capacity; the new item was not queued."""
    EXPORT_FAILED = "export_failed"
    """The exporter returned failure or raised (collector refused, 5xx, reset, ...)."""
    EXPORT_TIMEOUT = "export_timeout"
    """The export overran its timeout (or the previous one is still stuck) and was abandoned."""
    SHUTDOWN_TIMEOUT = "shutdown_timeout"
    """The shutdown budget ran out before the items could be exported."""


class _CallOutcome(Enum):
    DONE = "done"
    RAISED = "raised"
    TIMED_OUT = "timed_out"


_T = TypeVar("_T")


_POLL_S: Final = 0.02
"""How often a waiting caller re-reads the deadline (shutdown may start while it waits)."""
_MAX_RESERVE_S: Final = 0.25
"""Part of the shutdown budget kept back from exports so processors can stop in time."""


def _join_within(thread: threading.Thread, allowed_s: Callable[[], float]) -> bool:
    """Join ``thread`` while ``allowed_s()`` stays positive; True when it finished."""
    while thread.is_alive():
        remaining = allowed_s()
        if remaining <= 0:
            return False
        thread.join(min(remaining, _POLL_S))
    return True


class _BoundedCaller:
    """Runs a blocking call on a helper thread so the caller can stop waiting at a deadline.

    The allowance is re-read while waiting, so a shutdown that starts during a long export
    cuts it short. Threading contract: ``run(exclusive=True)`` calls are serialised by the
    caller's pipeline (one batch worker or metric reader per exporter); an overrunning call is
    remembered and later exclusive calls wait for it within their own allowance instead of
    starting another thread, so at most one abandoned call is outstanding per exporter.
    """

    __slots__ = ("_name", "_stuck")

    def __init__(self, name: str) -> None:
        self._name = name
        self._stuck: threading.Thread | None = None

    def run(
        self, fn: Callable[[], _T], allowed_s: Callable[[], float], *, exclusive: bool = True
    ) -> tuple[_CallOutcome, _T | BaseException | None]:
        stuck = self._stuck
        if exclusive and stuck is not None:
            if not _join_within(stuck, allowed_s):
                return _CallOutcome.TIMED_OUT, None
            self._stuck = None
        box: list[Any] = []

        def target() -> None:
            try:
                box.append((_CallOutcome.DONE, fn()))
            except BaseException as exc:  # reported to the caller, never raised
                box.append((_CallOutcome.RAISED, exc))

        ctx = contextvars.copy_context()
        thread = threading.Thread(target=ctx.run, args=(target,), name=self._name, daemon=True)
        thread.start()
        if not _join_within(thread, allowed_s) or not box:
            if exclusive:
                self._stuck = thread
            return _CallOutcome.TIMED_OUT, None
        outcome, value = box[0]
        return outcome, value


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
        _logger.warning(
            message + " (%d similar suppressed; next report in %.0fs at the earliest)",
            *args,
            suppressed,
            self._interval_s,
        )


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
        self._dropped: dict[tuple[TelemetrySignal, LossReason], int] = {}
        self._failures: dict[tuple[TelemetrySignal, LossReason], int] = {}
        self._log = _RateLimitedLog(log_interval_s, log_clock)

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
        """Forget the parent's shutdown deadline in a forked child (counters are kept)."""
        with self._lock:
            self._deadline = None
            self._export_deadline = None

    # -- accounting -----------------------------------------------------------------------
    def record_drop(self, signal: TelemetrySignal, reason: LossReason, count: int) -> None:
        """Count ``count`` items of ``signal`` lost for ``reason`` and log (rate-limited)."""
        if count <= 0:
            return
        with self._lock:
            key = (signal, reason)
            self._dropped[key] = self._dropped.get(key, 0) + count
        self._log.warn(
            (signal.value, reason.value),
            "flowtel dropped %d %s (%s)",
            count,
            _ITEM_NAMES[signal],
            reason.value,
        )

    def record_failure(self, signal: TelemetrySignal, reason: LossReason, detail: str = "") -> None:
        """Count one failed export batch of ``signal`` and log (rate-limited)."""
        with self._lock:
            key = (signal, reason)
            self._failures[key] = self._failures.get(key, 0) + 1
        self._log.warn(
            ("failure:" + signal.value, reason.value),
            "flowtel %s export failed (%s)%s",
            signal.value,
            reason.value,
            f": {detail}" if detail else "",
        )

    def dropped(
        self, signal: TelemetrySignal | None = None, reason: LossReason | None = None
    ) -> int:
        """Items lost so far, optionally for one signal and/or reason."""
        with self._lock:
            return _total(self._dropped, signal, reason)

    def failures(
        self, signal: TelemetrySignal | None = None, reason: LossReason | None = None
    ) -> int:
        """Failed export batches so far, optionally for one signal and/or reason."""
        with self._lock:
            return _total(self._failures, signal, reason)

    def instrument(self, meter: Meter) -> None:
        """Report the counts as ``flowtel.telemetry.dropped`` / ``.export.failures`` on ``meter``.

        Observable counters read the exact totals at collection time, so counting costs nothing
        on the hot path and works before the metric pipeline exists.
        """
        dropped = _metric_def(semconv.METRIC_TELEMETRY_DROPPED)
        failures = _metric_def(semconv.METRIC_TELEMETRY_EXPORT_FAILURES)
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
        self, counts: dict[tuple[TelemetrySignal, LossReason], int], _options: CallbackOptions
    ) -> Iterable[Observation]:
        with self._lock:
            items = list(counts.items())
        return [
            Observation(
                value,
                {semconv.TELEMETRY_SIGNAL: signal.value, semconv.TELEMETRY_REASON: reason.value},
            )
            for (signal, reason), value in items
        ]


_ITEM_NAMES: Final = {
    TelemetrySignal.TRACES: "spans",
    TelemetrySignal.METRICS: "metric points",
    TelemetrySignal.LOGS: "log records",
}


def _total(
    counts: dict[tuple[TelemetrySignal, LossReason], int],
    signal: TelemetrySignal | None,
    reason: LossReason | None,
) -> int:
    return sum(
        v
        for (s, r), v in counts.items()
        if (signal is None or s is signal) and (reason is None or r is reason)
    )


def _metric_def(name: str) -> semconv.MetricDef:
    return next(m for m in semconv.METRICS if m.name == name)


_B = TypeVar("_B")


class _GuardCore(Generic[_B]):
    """The shared logic of the three guarded exporters (composition keeps their ABCs clean)."""

    def __init__(
        self,
        guard: ExportGuard,
        signal: TelemetrySignal,
        count: Callable[[_B], int],
        is_success: Callable[[object], bool],
        name: str,
    ) -> None:
        self.guard = guard
        self.signal = signal
        self._count = count
        self._is_success = is_success
        self._caller = _BoundedCaller(f"flowtel-export-{signal.value}-{name}")
        self._control = _BoundedCaller(f"flowtel-export-control-{signal.value}-{name}")

    def _allowance(self, cap_s: float | None) -> Callable[[], float]:
        guard = self.guard
        cap = guard.export_timeout_s if cap_s is None else cap_s
        started = time.monotonic()
        return lambda: guard.remaining_s(cap - (time.monotonic() - started))

    def export(self, batch: _B, call: Callable[[], object], cap_s: float | None = None) -> bool:
        """Run ``call`` within the guard's limits; count and log any loss. True on success."""
        guard = self.guard
        allowed_s = self._allowance(cap_s)
        if allowed_s() <= 0:
            guard.record_drop(self.signal, self._timeout_reason(), self._count(batch))
            return False
        started = time.monotonic()
        outcome, value = self._caller.run(call, allowed_s)
        if outcome is _CallOutcome.DONE and self._is_success(value):
            return True
        if outcome is _CallOutcome.TIMED_OUT:
            reason = self._timeout_reason()
            waited_s = time.monotonic() - started
            guard.record_failure(self.signal, reason, f"no answer within {waited_s:.2f}s")
        else:
            reason = LossReason.EXPORT_FAILED
            detail = type(value).__name__ if outcome is _CallOutcome.RAISED else "exporter failure"
            guard.record_failure(self.signal, reason, detail)
        guard.record_drop(self.signal, reason, self._count(batch))
        return False

    def _timeout_reason(self) -> LossReason:
        return LossReason.SHUTDOWN_TIMEOUT if self.guard.closing else LossReason.EXPORT_TIMEOUT

    def control(self, call: Callable[[], object], cap_s: float) -> bool:
        """Run a flush/shutdown ``call``, waiting for it at most ``cap_s``."""
        started = time.monotonic()

        def allowed_s() -> float:
            return cap_s - (time.monotonic() - started)

        outcome, value = self._control.run(call, allowed_s, exclusive=False)
        return outcome is _CallOutcome.DONE and value is not False

    def stop(self, call: Callable[[], object]) -> None:
        """Shut the wrapped exporter down within what is left of the budget (at least 20 ms,
        so a stuck export is always told to abort)."""
        self.guard.begin_shutdown()
        self.control(call, max(self.guard.shutdown_remaining_s(), _POLL_S))


def _millis_to_s(timeout_millis: float | None, default_s: float) -> float:
    return default_s if timeout_millis is None else max(0.0, timeout_millis / 1000.0)


class GuardedSpanExporter(SpanExporter):
    """A :class:`SpanExporter` whose calls never outlive the guard's deadlines.

    Threading contract: ``export`` is called by one batch worker at a time (as the SDK
    requires); ``force_flush`` and ``shutdown`` may be called from any thread, also while an
    export is stuck, and abort it by shutting the wrapped exporter down.
    """

    def __init__(self, exporter: SpanExporter, guard: ExportGuard) -> None:
        self.exporter = exporter
        self._core: _GuardCore[Sequence[ReadableSpan]] = _GuardCore(
            guard,
            TelemetrySignal.TRACES,
            len,
            lambda r: r is SpanExportResult.SUCCESS,
            type(exporter).__name__,
        )

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Export within the deadline; on failure the spans are counted as dropped."""
        ok = self._core.export(spans, lambda: self.exporter.export(spans))
        return SpanExportResult.SUCCESS if ok else SpanExportResult.FAILURE

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Flush the wrapped exporter, waiting at most ``timeout_millis``."""
        cap_s = min(_millis_to_s(timeout_millis, 30.0), self._core.guard.shutdown_remaining_s())
        return self._core.control(lambda: self.exporter.force_flush(timeout_millis), cap_s)

    def shutdown(self) -> None:
        """Shut the wrapped exporter down (aborting a stuck export) within the deadline."""
        self._core.stop(self.exporter.shutdown)


class GuardedLogExporter(LogRecordExporter):
    """A :class:`LogRecordExporter` whose calls never outlive the guard's deadlines.

    Same threading contract as :class:`GuardedSpanExporter`.
    """

    def __init__(self, exporter: LogRecordExporter, guard: ExportGuard) -> None:
        self.exporter = exporter
        self._core: _GuardCore[Sequence[ReadableLogRecord]] = _GuardCore(
            guard,
            TelemetrySignal.LOGS,
            len,
            lambda r: r is LogRecordExportResult.SUCCESS,
            type(exporter).__name__,
        )

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        """Export within the deadline; on failure the records are counted as dropped."""
        ok = self._core.export(batch, lambda: self.exporter.export(batch))
        return LogRecordExportResult.SUCCESS if ok else LogRecordExportResult.FAILURE

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Flush the wrapped exporter, waiting at most ``timeout_millis``."""
        cap_s = min(_millis_to_s(timeout_millis, 30.0), self._core.guard.shutdown_remaining_s())
        return self._core.control(lambda: self.exporter.force_flush(timeout_millis), cap_s)

    def shutdown(self) -> None:
        """Shut the wrapped exporter down (aborting a stuck export) within the deadline."""
        self._core.stop(self.exporter.shutdown)


def _count_points(data: MetricsData) -> int:
    return sum(
        len(metric.data.data_points)
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for metric in sm.metrics
    )


class GuardedMetricExporter(MetricExporter):
    """A :class:`MetricExporter` whose calls never outlive the guard's deadlines.

    The SDK's OTLP metric exporter ignores the ``timeout_millis`` the reader passes; this
    wrapper enforces it. Threading contract: the reader serialises ``export``; ``shutdown``
    may run concurrently and aborts a stuck export.
    """

    def __init__(self, exporter: MetricExporter, guard: ExportGuard) -> None:
        super().__init__(
            preferred_temporality=exporter._preferred_temporality,
            preferred_aggregation=exporter._preferred_aggregation,
        )
        self.exporter = exporter
        self._core: _GuardCore[MetricsData] = _GuardCore(
            guard,
            TelemetrySignal.METRICS,
            _count_points,
            lambda r: r is MetricExportResult.SUCCESS,
            type(exporter).__name__,
        )

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        """Export within ``timeout_millis`` and the deadline; count lost points on failure."""
        cap_s = min(_millis_to_s(timeout_millis, 10.0), self._core.guard.export_timeout_s)
        ok = self._core.export(
            metrics_data,
            lambda: self.exporter.export(metrics_data, timeout_millis=timeout_millis, **kwargs),
            cap_s,
        )
        return MetricExportResult.SUCCESS if ok else MetricExportResult.FAILURE

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        """Flush the wrapped exporter, waiting at most ``timeout_millis``."""
        cap_s = min(_millis_to_s(timeout_millis, 10.0), self._core.guard.shutdown_remaining_s())
        return self._core.control(lambda: self.exporter.force_flush(timeout_millis), cap_s)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        """Shut the wrapped exporter down within ``timeout_millis`` and the deadline."""
        # The SDK passes 30 s by default; the guard's budget wins.
        self._core.stop(lambda: self.exporter.shutdown(timeout_millis=timeout_millis, **kwargs))
