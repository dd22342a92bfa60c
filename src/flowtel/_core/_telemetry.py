"""The :class:`Telemetry` handle ``configure_telemetry()`` returns, and which one is current.

The ground floor every feature may import: a feature asks :data:`HUB` for the configured
handle; it never imports the assembler (``flowtel._configure``), which imports the features.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from opentelemetry import metrics as metrics_api
from opentelemetry import trace as trace_api
from opentelemetry._logs import LoggerProvider as ApiLoggerProvider

from flowtel._core._settings import Settings

if TYPE_CHECKING:
    from flowtel._export._guard import ExportGuard

__all__ = ["HUB", "Telemetry", "current", "run_bounded"]

_log = logging.getLogger("flowtel")


def run_bounded(fn: Callable[[], object], timeout_s: float, what: str) -> bool:
    """Run ``fn`` in a daemon thread and wait at most ``timeout_s``.

    Why a thread: exporters' flush/shutdown can block on the network far longer than a
    Kubernetes grace period (retry loops, black-holed collectors). Waiting on a daemon thread
    bounds the caller; whatever is still in flight is abandoned, never awaited.
    Returns True when ``fn`` finished in time and returned a truthy value or None.
    """
    outcome: list[object] = []

    def target() -> None:
        try:
            outcome.append(fn())
        except Exception:
            _log.warning("flowtel: %s failed", what, exc_info=True)
            outcome.append(False)

    worker = threading.Thread(target=target, name=f"flowtel-{what}", daemon=True)
    worker.start()
    worker.join(max(timeout_s, 0.0))
    if worker.is_alive():
        _log.warning("flowtel: %s did not finish within %.1fs; abandoned", what, timeout_s)
        return False
    return bool(outcome) and outcome[0] is not False


class Telemetry:
    """The handle ``configure_telemetry()`` returns: providers, and bounded flush/shutdown.

    Thread-safe. ``shutdown`` is idempotent and runs the registered shutdown callbacks (newest
    first) before the providers, so feature modules can flush into still-open pipelines.
    """

    def __init__(
        self,
        settings: Settings,
        tracer_provider: trace_api.TracerProvider,
        meter_provider: metrics_api.MeterProvider,
        logger_provider: ApiLoggerProvider,
    ) -> None:
        self.settings = settings
        self.tracer_provider = tracer_provider
        self.meter_provider = meter_provider
        self.logger_provider = logger_provider
        self.tracer = tracer_provider.get_tracer("flowtel")
        self.meter = meter_provider.get_meter("flowtel")
        self.prometheus_port: int | None = None
        self.resource: Any = None
        """The SDK Resource shared by all three providers (None when the SDK is disabled)."""
        self.metric_readers: tuple[Any, ...] = ()
        """Every MetricReader of ``meter_provider``: the OTLP, Prometheus and given readers."""
        self.export_guard: ExportGuard | None = None
        """Deadline and loss accounting of the OTLP pipelines (None without OTLP export)."""
        self._callbacks: list[Callable[[], object]] = []
        self._closed = False
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        """False when ``OTEL_SDK_DISABLED=true`` made everything a no-op."""
        return not self.settings.sdk_disabled

    def add_shutdown_callback(self, callback: Callable[[], object]) -> None:
        """Run ``callback`` at shutdown, before the providers shut down (newest first)."""
        with self._lock:
            self._callbacks.append(callback)

    def force_flush(self, timeout_s: float | None = None) -> bool:
        """Export everything buffered; return False if that did not finish within the budget."""
        budget = self.settings.shutdown_timeout_s if timeout_s is None else timeout_s
        millis = int(budget * 1000)

        def flush() -> bool:
            ok = True
            for provider in (self.tracer_provider, self.meter_provider, self.logger_provider):
                flush_fn = getattr(provider, "force_flush", None)
                if flush_fn is not None:
                    ok = bool(flush_fn(millis)) and ok
            return ok

        return run_bounded(flush, budget, "force_flush")

    def shutdown(self, timeout_s: float | None = None) -> bool:
        """Flush and stop all pipelines within ``timeout_s`` (default ``shutdown_timeout_s``)."""
        with self._lock:
            if self._closed:
                return True
            self._closed = True
            callbacks = list(reversed(self._callbacks))
        budget = self.settings.shutdown_timeout_s if timeout_s is None else timeout_s
        if self.export_guard is not None:
            self.export_guard.begin_shutdown(budget)  # exports stop waiting at this deadline

        def stop() -> bool:
            for callback in callbacks:
                try:
                    callback()
                except Exception:
                    _log.warning("flowtel: shutdown callback failed", exc_info=True)
            for provider in (self.tracer_provider, self.meter_provider, self.logger_provider):
                stop_fn = getattr(provider, "shutdown", None)
                if stop_fn is not None:
                    stop_fn()
            return True

        return run_bounded(stop, budget, "shutdown")


class _Hub:
    """Which handle is current, and a generation bumped on every (re)configuration.

    One object, read as ``HUB.current`` / ``HUB.generation`` on hot paths (an attribute read,
    as cheap as a module global), written only by the assembler through :meth:`install`.
    """

    __slots__ = ("current", "generation")

    def __init__(self) -> None:
        self.current: Telemetry | None = None
        self.generation = 0

    def install(self, telemetry: Telemetry | None) -> None:
        self.current = telemetry
        self.generation += 1

    def invalidate(self) -> None:
        """Make every ``@traced`` site re-resolve its tracer and attribute preset."""
        self.generation += 1


HUB: Final = _Hub()


def current() -> Telemetry | None:
    """The handle installed by the last ``configure_telemetry()``, if any."""
    return HUB.current
