"""Exporters that never outlive the :class:`~flowtel._export_guard.ExportGuard` deadlines.

Each guarded exporter runs the real ``export`` on its own long-lived worker thread (``flush``
and ``shutdown`` on a thread each) and waits at most until its allowance runs out (the export
timeout, or the shutdown deadline once shutdown starts, re-read while waiting). A call that
overruns is abandoned: it finishes or fails in the background and its items are counted as
lost. At most one abandoned export per exporter is ever outstanding; while it is stuck, later
batches are dropped and counted instead of piling up threads or memory.

Span, log and metric exporters also scrub secrets from what they are handed (see
:mod:`flowtel._export._scrub`), so data recorded through the plain OpenTelemetry API is covered;
flowtel's OTLP/gRPC span exporter scrubs while it encodes (:mod:`flowtel._export._encode`), so
its spans are not walked twice.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from queue import SimpleQueue
from typing import TYPE_CHECKING, Any, Final, Generic, Literal, TypeVar

from opentelemetry import context as otel_context
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, MetricsData
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from flowtel._export._guard import ExportGuard, LossReason, TelemetrySignal

__all__ = ["GuardedLogExporter", "GuardedMetricExporter", "GuardedSpanExporter"]


if TYPE_CHECKING:
    from flowtel._export._guard import Reason, Signal

    # How a bounded call ended: plain strings, as an Enum class would cost process start more.
    _CallOutcome = Literal["done", "raised", "timed_out"]


_T = TypeVar("_T")


_POLL_S: Final = 0.02
"""How often a waiting caller re-reads the deadline (shutdown may start while it waits)."""


def _suppress_instrumentation() -> None:
    """The exporter's own HTTP calls must not be traced by ``instrument=["requests"]``.

    Called first on every helper thread, in that thread's own context: nothing to detach.
    """
    otel_context.attach(otel_context.set_value(otel_context._SUPPRESS_INSTRUMENTATION_KEY, True))


class _Call:
    """One call handed to a helper thread, and its outcome once ``done`` is set."""

    __slots__ = ("done", "fn", "result")

    def __init__(self, fn: Callable[[], object]) -> None:
        self.fn: Callable[[], object] | None = fn
        self.done = threading.Event()
        self.result: tuple[_CallOutcome, Any] = ("timed_out", None)

    def run(self) -> None:
        fn, self.fn = self.fn, None  # the batch it closes over is freed as soon as it ran
        try:
            if fn is not None:
                self.result = ("done", fn())
        except BaseException as exc:  # reported to the caller, never raised
            self.result = ("raised", exc)
        finally:
            del fn
            self.done.set()

    def wait(self, allowed_s: Callable[[], float]) -> bool:
        """Wait while ``allowed_s()`` stays positive; True when the call finished."""
        done = self.done
        while not done.is_set():
            remaining = allowed_s()
            if remaining <= 0:
                return False
            done.wait(min(remaining, _POLL_S))
        return True


def _serve(calls: SimpleQueue[_Call | None]) -> None:
    _suppress_instrumentation()
    while True:
        call = calls.get()
        if call is None:
            return
        call.run()
        del call  # hold no finished batch while waiting for the next one


def _run_once(call: _Call) -> None:
    _suppress_instrumentation()
    call.run()


class _BoundedCaller:
    """Runs blocking calls on a helper thread so the caller can stop waiting at a deadline.

    Exports go to one long-lived worker thread per exporter (a thread per export costs more
    than encoding a small batch); flush and shutdown (``exclusive=False``, rare, and allowed
    to run while an export is stuck) get a thread each. The allowance is re-read while
    waiting, so a shutdown that starts during a long export cuts it short.

    Threading contract: ``run(exclusive=True)`` calls are serialised by the caller's pipeline
    (one batch worker or metric reader per exporter). An overrunning call is remembered and
    later exclusive calls wait for it within their own allowance instead of queueing behind
    it, so at most one abandoned call is outstanding per exporter. :meth:`close` lets the
    worker exit once its current call returns; a forked child starts its own worker.
    """

    __slots__ = ("_calls", "_closed", "_last", "_name", "_pid", "_worker")

    def __init__(self, name: str) -> None:
        self._name = name
        self._calls: SimpleQueue[_Call | None] = SimpleQueue()
        self._last: _Call | None = None
        self._worker: threading.Thread | None = None
        self._pid = 0
        self._closed = False

    def run(
        self, fn: Callable[[], _T], allowed_s: Callable[[], float], *, exclusive: bool = True
    ) -> tuple[_CallOutcome, _T | BaseException | None]:
        call = _Call(fn)
        if not exclusive or self._closed:
            thread = threading.Thread(target=_run_once, args=(call,), name=self._name, daemon=True)
            thread.start()
        else:
            if self._pid != os.getpid():
                self._restart()  # first use, or a forked child: the parent's thread is gone
            last = self._last
            if last is not None and not last.wait(allowed_s):
                return "timed_out", None
            self._last = call
            self._calls.put(call)
        if not call.wait(allowed_s):
            return "timed_out", None
        return call.result

    def _restart(self) -> None:
        self._pid = os.getpid()
        self._calls = SimpleQueue()
        self._last = None
        self._worker = threading.Thread(
            target=_serve, args=(self._calls,), name=self._name, daemon=True
        )
        self._worker.start()

    def close(self) -> None:
        """Let the worker exit after its current call; later calls get a thread each."""
        self._closed = True
        if self._worker is not None and self._pid == os.getpid():
            self._calls.put(None)


_B = TypeVar("_B")


class _GuardCore(Generic[_B]):
    """The shared logic of the three guarded exporters (composition keeps their ABCs clean)."""

    def __init__(
        self,
        guard: ExportGuard,
        signal: Signal,
        count: Callable[[_B], int],
        is_success: Callable[[object], bool],
        name: str,
    ) -> None:
        self.guard = guard
        self.signal = signal
        self._count = count
        self._is_success = is_success
        self._caller = _BoundedCaller(f"flowtel-export-{signal}-{name}")
        self._control = _BoundedCaller(f"flowtel-export-control-{signal}-{name}")

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
        if outcome == "done" and self._is_success(value):
            return True
        if outcome == "timed_out":
            reason = self._timeout_reason()
            waited_s = time.monotonic() - started
            guard.record_failure(self.signal, reason, f"no answer within {waited_s:.2f}s")
        else:
            reason = LossReason.EXPORT_FAILED
            detail = type(value).__name__ if outcome == "raised" else "exporter failure"
            guard.record_failure(self.signal, reason, detail)
        guard.record_drop(self.signal, reason, self._count(batch))
        return False

    def _timeout_reason(self) -> Reason:
        return LossReason.SHUTDOWN_TIMEOUT if self.guard.closing else LossReason.EXPORT_TIMEOUT

    def flush(self, flush: Callable[[int], object], timeout_millis: int) -> bool:
        """``flush(timeout_millis)`` within the smaller of that and the shutdown budget."""
        cap_s = min(_millis_to_s(timeout_millis, 30.0), self.guard.shutdown_remaining_s())
        return self.control(lambda: flush(timeout_millis), cap_s)

    def control(self, call: Callable[[], object], cap_s: float) -> bool:
        """Run a flush/shutdown ``call``, waiting for it at most ``cap_s``."""
        started = time.monotonic()

        def allowed_s() -> float:
            return cap_s - (time.monotonic() - started)

        outcome, value = self._control.run(call, allowed_s, exclusive=False)
        return outcome == "done" and value is not False

    def stop(self, call: Callable[[], object]) -> None:
        """Shut the wrapped exporter down within what is left of the budget (at least 20 ms,
        so a stuck export is always told to abort)."""
        self.guard.begin_shutdown()
        self.control(call, max(self.guard.shutdown_remaining_s(), _POLL_S))
        self._caller.close()


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
        self._scrubs = getattr(exporter, "scrubs_on_export", False) is True
        self._core: _GuardCore[Sequence[ReadableSpan]] = _GuardCore(
            guard,
            TelemetrySignal.TRACES,
            len,
            lambda r: r is SpanExportResult.SUCCESS,
            type(exporter).__name__,
        )

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Export within the deadline; on failure the spans are counted as dropped."""
        exporter = self.exporter
        if self._scrubs:  # flowtel's OTLP exporter scrubs while it encodes
            ok = self._core.export(spans, lambda: exporter.export(spans))
        else:
            from flowtel._export._scrub import scrub_spans  # loads on the first export

            ok = self._core.export(spans, lambda: exporter.export(scrub_spans(spans)))
        return SpanExportResult.SUCCESS if ok else SpanExportResult.FAILURE

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Flush the wrapped exporter, waiting at most ``timeout_millis``."""
        return self._core.flush(self.exporter.force_flush, timeout_millis)

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
        from flowtel._export._scrub import scrub_log_records  # loads on the first export

        ok = self._core.export(batch, lambda: self.exporter.export(scrub_log_records(batch)))
        return LogRecordExportResult.SUCCESS if ok else LogRecordExportResult.FAILURE

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Flush the wrapped exporter, waiting at most ``timeout_millis``."""
        return self._core.flush(self.exporter.force_flush, timeout_millis)

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
        from flowtel._export._scrub import scrub_metrics  # loads on the first export

        cap_s = min(_millis_to_s(timeout_millis, 10.0), self._core.guard.export_timeout_s)
        ok = self._core.export(
            metrics_data,
            lambda: self.exporter.export(
                scrub_metrics(metrics_data), timeout_millis=timeout_millis, **kwargs
            ),
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
