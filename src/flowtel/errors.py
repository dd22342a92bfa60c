"""Exact, in-process error rates: a SpanProcessor, ``get_error_stats()`` and RED metrics.

Why in-process: health checks, alerts and load shedding need "what fraction of my operations
failed in the last N minutes" now, and exactly. A collector round trip is slow, and it only sees
the spans that survived sampling. :class:`ErrorRateProcessor` counts every finished span in
``on_end`` (the core's sampler marks the sampled-out share RECORD_ONLY, so ``on_end`` still sees
them) into fixed time buckets keyed by (component, operation), and emits the calls, errors,
duration and error-rate metrics from the same counts, so dashboards are exact as well.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import Any, Final, Protocol

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.metrics import CallbackOptions, Histogram, Meter, MeterProvider, Observation
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.trace import StatusCode
from opentelemetry.util.types import AttributeValue

from flowtel import semconv
from flowtel._error_buckets import OTHER_TYPE, OVERFLOW, OperationCounters
from flowtel._error_stats import ErrorStats, OperationStats, build_stats, empty_stats
from flowtel._record_error import add_handled_event
from flowtel.exceptions import ConfigurationError

__all__ = [
    "ErrorRateProcessor",
    "ErrorStats",
    "OperationStats",
    "get_error_stats",
    "install",
    "record_error",
]

_logger = logging.getLogger(__name__)

_COMPONENT: Final = semconv.COMPONENT
_OPERATION: Final = semconv.OPERATION
_SPAN_RECORD_ERROR: Final = semconv.SPAN_RECORD_ERROR
_ERROR: Final = StatusCode.ERROR
_DEFAULT_GAUGE_WINDOWS: Final = (1, 5, 15)
_NO_ATTRIBUTES: Final[Mapping[str, AttributeValue]] = MappingProxyType({})
_DURATION_BUCKETS_S: Final = (
    0.0, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
)  # fmt: skip


def _window_label(minutes: float) -> str:
    seconds = round(minutes * 60)
    return f"{seconds // 60}m" if seconds % 60 == 0 else f"{seconds}s"


def _positive(option: str, value: object, accepted: str, *, integer: bool = False) -> float:
    """``value`` as a float if it is a finite number > 0 (an int when ``integer``), else raise."""
    kinds = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds):
        raise ConfigurationError(option, value, accepted)
    number = float(value)
    if not math.isfinite(number) or number <= 0:
        raise ConfigurationError(option, value, accepted)
    return number


class ErrorRateProcessor(SpanProcessor):
    """Counts every finished span per (component, operation) and emits RED metrics.

    Component is the ``flowtel.component`` attribute, else the instrumentation scope name;
    operation is ``flowtel.operation``, else the span name. A span is an error when its status
    is ERROR; its type is ``error.type``, else the type of its first exception event, else
    ``_OTHER``.

    Threading: ``on_end`` may run on any thread. It holds one short lock for a few list
    increments (plus, once per bucket, zeroing the reused slot of every key), never does I/O and
    never raises: a failure is logged once and the span is skipped. Memory is bounded by
    ``max_keys`` x buckets, independent of span volume.

    Args:
        window_minutes: the longest window :meth:`stats` can answer.
        max_keys: distinct (component, operation) pairs tracked; more are counted under
            ``("_other", "_other")`` and a warning is logged once.
        meter: where the calls/errors counters, duration histogram and error-rate gauge go;
            None emits no metrics.
        bucket_s: bucket width; default ``window / 60`` clamped to 1..60 s. Windows are whole
            buckets, so this is also the precision of :attr:`ErrorStats.window`.
        gauge_windows_minutes: windows of the ``flowtel.error_rate`` gauge, one series each.
        record_durations: record the duration histogram (the costliest part of ``on_end``).
        clock: monotonic seconds; injectable for tests.
    """

    def __init__(
        self,
        *,
        window_minutes: float = 60,
        max_keys: int = 1000,
        meter: Meter | None = None,
        bucket_s: float | None = None,
        gauge_windows_minutes: Sequence[float] = _DEFAULT_GAUGE_WINDOWS,
        record_durations: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        window_s = 60 * _positive("error_window_minutes", window_minutes, "a number of minutes > 0")
        self._max_keys = int(_positive("error_max_keys", max_keys, "an integer >= 1", integer=True))
        if bucket_s is None:
            bucket_s = min(60.0, max(1.0, window_s / 60))
        bucket_s = _positive("bucket_s", bucket_s, "seconds > 0")
        for w in gauge_windows_minutes:
            if _positive("gauge_windows_minutes", w, "minutes > 0") * 60 > window_s:
                accepted = f"minutes <= error_window_minutes ({window_minutes})"
                raise ConfigurationError("gauge_windows_minutes", w, accepted)
        self._window_s = window_s
        self._gauge_windows = tuple(gauge_windows_minutes)
        self._clock = clock
        self._lock = threading.Lock()
        self._counters = OperationCounters(
            window_s, bucket_s, clock(), self._max_keys, self._overflowed
        )
        self._failure_logged = False
        self._duration: Histogram | None = None
        if meter is not None:
            self._create_instruments(meter, record_durations)

    def _create_instruments(self, meter: Meter, record_durations: bool) -> None:
        defs = {m.name: m for m in semconv.METRICS}
        calls = defs[semconv.METRIC_OPERATION_CALLS]
        errors = defs[semconv.METRIC_ERRORS]
        rate = defs[semconv.METRIC_ERROR_RATE]
        duration = defs[semconv.METRIC_OPERATION_DURATION]
        # Counters are observable: on_end bumps an integer on the key's counters instead of paying
        # the SDK's per-measurement attribute handling; on the wire it is the same monotonic sum.
        meter.create_observable_counter(
            calls.name, [self._observe_calls], unit=calls.unit, description=calls.description
        )
        meter.create_observable_counter(
            errors.name, [self._observe_errors], unit=errors.unit, description=errors.description
        )
        meter.create_observable_gauge(
            rate.name, [self._observe_rates], unit=rate.unit, description=rate.description
        )
        if record_durations:
            self._duration = meter.create_histogram(
                duration.name,
                unit=duration.unit,
                description=duration.description,
                explicit_bucket_boundaries_advisory=list(_DURATION_BUCKETS_S),
            )

    # -- SpanProcessor ---------------------------------------------------------------------

    def on_start(self, span: Any, parent_context: Context | None = None) -> None:
        """Nothing to do when a span starts."""

    def on_end(self, span: ReadableSpan) -> None:
        """Count ``span``. Never raises, never blocks beyond one short lock."""
        # Hot path: every finished span passes here, so it reads each span property once,
        # uses module-level names and leaves all bookkeeping to one call on the counters.
        try:
            name = span.name
            if name == _SPAN_RECORD_ERROR and _is_own_span(span):
                return  # record_error() counted it already, as a handled error
            attributes = span.attributes
            if attributes is None:
                attributes = _NO_ATTRIBUTES
            component = attributes.get(_COMPONENT)
            if component.__class__ is not str:
                scope = span.instrumentation_scope
                component = scope.name if scope is not None else ""
            operation = attributes.get(_OPERATION)
            if operation.__class__ is not str:
                operation = name
            code = span.status.status_code
            error_type = _error_type(span, attributes) if code is _ERROR else None
            now = self._clock()
            with self._lock:
                metric_attributes = self._counters.count(
                    component, operation, now, code, error_type
                )
            if self._duration is not None:
                end, start = span.end_time, span.start_time
                if end and start:
                    self._duration.record((end - start) / 1e9, metric_attributes)
        except Exception:
            if not self._failure_logged:
                self._failure_logged = True
                _logger.exception("flowtel.errors: could not count a span; skipping such spans")

    def shutdown(self) -> None:
        """Nothing to release; statistics stay readable."""

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Nothing is buffered."""
        return True

    # -- counting --------------------------------------------------------------------------

    def _overflowed(self) -> None:
        _logger.warning(
            "flowtel.errors: more than %d (component, operation) pairs; counting new ones "
            "under %r (raise error_max_keys if these are legitimate)",
            self._max_keys,
            OVERFLOW,
        )

    def record_handled(self, error_type: str, component: str, operation: str) -> None:
        """Count one handled error (see :func:`record_error`) for (component, operation)."""
        now = self._clock()
        with self._lock:
            self._counters.count_handled(component, operation, now, error_type)

    # -- queries ---------------------------------------------------------------------------

    def stats(
        self,
        last_minutes: float = 15,
        component: str | None = None,
        operation: str | None = None,
    ) -> ErrorStats:
        """Calls and errors over the last ``last_minutes``, optionally for one component/operation.

        Raises:
            ConfigurationError: ``last_minutes`` is not a positive number.
        """
        last_s = 60 * _positive("last_minutes", last_minutes, "a number of minutes > 0")
        now = self._clock()
        with self._lock:
            ranges, window_s = self._counters.covered(now, min(last_s, self._window_s))
            per_key = self._counters.totals(ranges, component, operation)
        return build_stats(per_key, window_s)

    # -- metric callbacks (run on the metric reader's thread) ------------------------------

    def _observe_calls(self, options: CallbackOptions) -> Iterable[Observation]:
        with self._lock:
            points = self._counters.call_points()
        return [Observation(n, attributes) for n, attributes in points]

    def _observe_errors(self, options: CallbackOptions) -> Iterable[Observation]:
        with self._lock:
            points = self._counters.error_points()
        return [
            Observation(
                n,
                {
                    semconv.COMPONENT: key[0],
                    semconv.OPERATION: key[1],
                    semconv.ERROR_TYPE: error_type,
                    semconv.ERROR_HANDLED: handled,
                },
            )
            for n, key, error_type, handled in points
        ]

    def _observe_rates(self, options: CallbackOptions) -> Iterable[Observation]:
        return list(self._rates())

    def _rates(self) -> Iterator[Observation]:
        now = self._clock()
        for minutes in self._gauge_windows:
            with self._lock:
                ranges, _ = self._counters.covered(now, minutes * 60)
                per_key = self._counters.totals(ranges, None, None)
                components = self._counters.components()
            sums = dict.fromkeys(components, (0, 0))
            for (component, _op), kt in per_key.items():
                total, errors = sums[component]
                sums[component] = (total + kt.total, errors + kt.errors)
            label = _window_label(minutes)
            for component, (total, errors) in sorted(sums.items()):
                yield Observation(
                    errors / total if total else 0.0,
                    {semconv.COMPONENT: component, semconv.ERROR_RATE_WINDOW: label},
                )


def _is_own_span(span: ReadableSpan) -> bool:
    scope = span.instrumentation_scope
    return scope is not None and scope.name == semconv.SCOPE_ERRORS


def _error_type(span: ReadableSpan, attributes: Mapping[str, object]) -> str:
    error_type = attributes.get(semconv.ERROR_TYPE)
    if isinstance(error_type, str) and error_type:
        return error_type
    for event in span.events:
        if event.name == semconv.EVENT_EXCEPTION:
            exc_type = (event.attributes or {}).get(semconv.EXCEPTION_TYPE)
            if isinstance(exc_type, str) and exc_type:
                return exc_type
            break
    return OTHER_TYPE


# -- process-wide source -------------------------------------------------------------------

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
    def add_shutdown_callback(self, fn: Callable[[], object]) -> Any: ...


def install(telemetry: _TelemetryLike) -> ErrorRateProcessor | None:
    """Create the processor from ``telemetry.settings`` and make it the process-wide source.

    Called by ``configure_telemetry()``. Does nothing when ``error_window_minutes`` is falsy or
    the tracer provider is not the SDK's (``OTEL_SDK_DISABLED``). Reads ``error_window_minutes``,
    ``error_max_keys`` and, when the settings have them, ``error_rate_windows_minutes`` (gauge
    windows; default 1, 5 and 15 minutes, those longer than the window left out) and
    ``error_duration_histogram`` (default True).

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
        gauge_windows = tuple(w for w in _DEFAULT_GAUGE_WINDOWS if w <= window)
    processor = ErrorRateProcessor(
        window_minutes=window,
        max_keys=settings.error_max_keys,
        meter=telemetry.meter_provider.get_meter(semconv.SCOPE_ERRORS),
        gauge_windows_minutes=gauge_windows,
        record_durations=settings.error_duration_histogram,
    )
    telemetry.tracer_provider.add_span_processor(processor)
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
        _positive("last_minutes", last_minutes, "a number of minutes > 0")
        if not _missing_logged:
            _missing_logged = True
            _logger.warning("flowtel.errors: get_error_stats() before error tracking is enabled")
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
        counted = add_handled_event(exc, component, operation, attributes, tracer)
        processor = _active
        if processor is not None:
            processor.record_handled(*counted)
    except Exception:
        if not _record_failure_logged:
            _record_failure_logged = True
            _logger.exception("flowtel.errors: record_error() failed; error not recorded")
