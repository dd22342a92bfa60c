"""The process-wide error statistics: what configure_telemetry() installs, and what users call."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from opentelemetry import trace
from opentelemetry.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    MetricReader,
)
from opentelemetry.sdk.resources import Resource

from flowtel import semconv
from flowtel.errors._processor import DEFAULT_GAUGE_WINDOWS, ErrorRateProcessor, positive

if TYPE_CHECKING:
    from flowtel.errors._stats import ErrorStats


_logger = logging.getLogger("flowtel.errors")

_active: ErrorRateProcessor | None = None
_active_tracer: trace.Tracer | None = None
_record_failure_logged = False
_missing_logged = False


class _TelemetryLike(Protocol):
    """What :func:`install` needs from ``flowtel.Telemetry``."""

    @property
    def settings(self) -> Any: ...
    @property
    def tracer_provider(self) -> Any: ...
    @property
    def meter_provider(self) -> MeterProvider: ...
    @property
    def metric_readers(self) -> Sequence[MetricReader]: ...
    @property
    def resource(self) -> Resource | None: ...
    def add_shutdown_callback(self, fn: Callable[[], object]) -> Any: ...


def _install(telemetry: _TelemetryLike) -> ErrorRateProcessor | None:
    """Create the processor from ``telemetry.settings`` and make it the process-wide source.

    Called by ``configure_telemetry()``. Does nothing when ``error_window_minutes`` is falsy or
    the tracer provider is not the SDK's (``OTEL_SDK_DISABLED``). Reads ``error_window_minutes``,
    ``error_max_keys`` and, when the settings have them, ``error_rate_windows_minutes`` (gauge
    windows; default 1, 5 and 15 minutes, those longer than the window left out),
    ``error_duration_histogram`` (default True) and ``error_dimensions`` (default none).

    Raises:
        ConfigurationError: a setting is out of range (see :class:`ErrorRateProcessor`).
    """
    global _active, _active_tracer
    settings = telemetry.settings
    window = settings.error_window_minutes
    if not window or not hasattr(telemetry.tracer_provider, "add_span_processor"):
        return None
    gauge_windows = settings.error_rate_windows_minutes
    if gauge_windows is None:
        gauge_windows = tuple(w for w in DEFAULT_GAUGE_WINDOWS if w <= window)
    processor = ErrorRateProcessor(
        window_minutes=window,
        max_keys=settings.error_max_keys,
        meter=telemetry.meter_provider.get_meter(semconv.SCOPE_ERRORS),
        gauge_windows_minutes=gauge_windows,
        record_durations=settings.error_duration_histogram,
        metric_readers=telemetry.metric_readers,
        resource=telemetry.resource,
        dimensions=getattr(settings, "error_dimensions", ()),
    )
    telemetry.tracer_provider.add_span_processor(processor)
    if hasattr(telemetry.tracer_provider, "light_counter"):  # flowtel's provider (tracing._light)
        telemetry.tracer_provider.light_counter = processor
    _active = processor
    _active_tracer = telemetry.tracer_provider.get_tracer(semconv.SCOPE_ERRORS)

    def _deactivate() -> None:
        global _active, _active_tracer
        if _active is processor:
            _active, _active_tracer = None, None

    telemetry.add_shutdown_callback(_deactivate)
    return processor


def get_error_stats(
    last_minutes: float = 15, component: str | None = None, operation: str | None = None
) -> ErrorStats:
    """Calls and errors of this process over the last ``last_minutes``.

    Cheap (independent of span volume) and safe from any thread or the event loop. Before
    ``configure_telemetry()`` (or with ``error_window_minutes`` disabled) it returns empty stats
    so a health check stays up; a warning is logged once.

    Raises:
        ConfigurationError: ``last_minutes`` is not a positive number.
    """
    global _missing_logged
    processor = _active
    if processor is None:
        positive("last_minutes", last_minutes, "a number of minutes > 0")
        if not _missing_logged:
            _missing_logged = True
            _logger.warning("flowtel.errors: get_error_stats() before error tracking is enabled")
        from flowtel.errors._stats import empty_stats

        return empty_stats()
    return processor.stats(last_minutes, component, operation)


def record_error(
    exc: BaseException,
    component: str | None = None,
    operation: str | None = None,
    **attributes: object,
) -> None:
    """Record an error that was handled and will not escape.

    Adds an ``exception`` event with ``flowtel.error.handled=true`` to the current span (or to a
    short ``flowtel.record_error`` span when none is recording) and counts it as handled in the
    statistics and the ``flowtel.errors`` metric. Message, stack trace and ``attributes`` are
    scrubbed. Never raises.

    Args:
        exc: the handled exception.
        component: defaults to the current span's component (see :class:`ErrorRateProcessor`).
        operation: defaults to the current span's operation.
        **attributes: extra event attributes.
    """
    global _record_failure_logged
    try:
        tracer = _active_tracer or trace.get_tracer(semconv.SCOPE_ERRORS)
        from flowtel.errors._record import add_handled_event  # loads on the first call

        counted = add_handled_event(exc, component, operation, attributes, tracer)
        processor = _active
        if processor is not None:
            processor.record_handled(*counted)
    except Exception:
        if not _record_failure_logged:
            _record_failure_logged = True
            _logger.exception("flowtel.errors: record_error() failed; error not recorded")
