"""The :class:`Telemetry` handle ``configure_telemetry()`` returns, and which one is current.

The ground floor every feature may import: a feature asks :data:`HUB` for the configured
handle; it never imports the assembler (``flowtel._configure``), which imports the features.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from opentelemetry import metrics as metrics_api
from opentelemetry import trace as trace_api
from opentelemetry._logs import LoggerProvider as ApiLoggerProvider

from flowtel._core._resource import AUTO_INSTANCE_IDS, new_instance_id
from flowtel._core._settings import Settings

if TYPE_CHECKING:
    from flowtel._export._guard import ExportGuard

__all__ = ["HUB", "Telemetry", "current", "run_bounded"]

_log = logging.getLogger("flowtel")

MAX_WAIT_S: Final = 3600.0
"""Longest any flush or shutdown waits, whatever it is given (``Thread.join`` overflows on
huge values, and no orchestrator waits an hour for a process to exit)."""


def _budget(timeout_s: object, default_s: float) -> float:
    """A usable wait in seconds: ``default_s`` for None/NaN/garbage, clamped to 0..MAX_WAIT_S."""
    if timeout_s is None or isinstance(timeout_s, bool) or not isinstance(timeout_s, int | float):
        timeout_s = default_s
    if math.isnan(timeout_s):
        timeout_s = default_s
    return min(max(float(timeout_s), 0.0), MAX_WAIT_S)


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
    worker.join(_budget(timeout_s, 0.0))
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
        if hasattr(os, "register_at_fork"):  # after the providers' own fork hooks (made first)
            weak_self = weakref.ref(self)

            def _after_in_child() -> None:
                telemetry = weak_self()
                if telemetry is not None and HUB.current is telemetry:
                    telemetry._new_instance_after_fork()

            os.register_at_fork(after_in_child=_after_in_child)

    def _new_instance_after_fork(self) -> None:
        """In a forked child: a ``service.instance.id`` of its own, the same on all signals.

        Why: under ``gunicorn --preload`` (or any fork after ``configure_telemetry()``) every
        worker inherited the parent's Resource, so all workers reported as one instance and
        their cumulative metrics overwrote each other. Newer SDKs (1.45+) re-detect the id in
        each provider after a fork; then :attr:`resource` follows theirs. Older ones keep the
        parent's Resource object, shared by the three providers, whose attributes are replaced
        in place (an id the user chose is kept).
        """
        try:
            resource = self.resource
            refreshed = getattr(self.tracer_provider, "resource", resource)
            if resource is None:
                return
            if refreshed is not resource:  # the SDK gave the child its own Resource already
                self.resource = resource = refreshed
            else:
                attributes = dict(resource.attributes)
                if attributes.get("service.instance.id") not in AUTO_INSTANCE_IDS:
                    return
                attributes["service.instance.id"] = new_instance_id()
                from opentelemetry.attributes import BoundedAttributes

                resource._attributes = BoundedAttributes(attributes=attributes)  # SDK private
            fresh = resource.attributes.get("service.instance.id")
            settings_attributes = self.settings.resource_attributes
            if isinstance(settings_attributes, dict) and isinstance(fresh, str):
                settings_attributes["service.instance.id"] = fresh
        except Exception:  # never break the child over a resource attribute
            _log.warning("flowtel: could not renew service.instance.id after fork", exc_info=True)

    @property
    def enabled(self) -> bool:
        """False when ``OTEL_SDK_DISABLED=true`` made everything a no-op."""
        return not self.settings.sdk_disabled

    def add_shutdown_callback(self, callback: Callable[[], object]) -> None:
        """Run ``callback`` at shutdown, before the providers shut down (newest first)."""
        with self._lock:
            self._callbacks.append(callback)

    def force_flush(self, timeout_s: float | None = None) -> bool:
        """Export everything buffered; return False if that did not finish within the budget.

        Never raises: whatever goes wrong is logged and reported as False.
        """
        try:
            return self._force_flush(_budget(timeout_s, self.settings.shutdown_timeout_s))
        except Exception:
            _log.warning("flowtel: force_flush failed", exc_info=True)
            return False

    def _force_flush(self, budget: float) -> bool:
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
        """Flush and stop all pipelines within ``timeout_s`` (default ``shutdown_timeout_s``).

        Never raises into the host: a failure is logged and reported as False. Spans and log
        records that end afterwards are counted as lost (``after_shutdown``).
        """
        with self._lock:
            if self._closed:
                return True
            self._closed = True
            callbacks = list(reversed(self._callbacks))
        try:
            return self._shutdown(callbacks, _budget(timeout_s, self.settings.shutdown_timeout_s))
        except Exception:
            _log.warning("flowtel: shutdown failed", exc_info=True)
            return False

    def _shutdown(self, callbacks: list[Callable[[], object]], budget: float) -> bool:
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
                    try:
                        stop_fn()
                    except Exception:  # one provider failing must not keep the others open
                        _log.warning("flowtel: %s shutdown failed", type(provider).__name__,
                                     exc_info=True)  # fmt: skip
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
