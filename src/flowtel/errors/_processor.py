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
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.context import Context
from opentelemetry.metrics import CallbackOptions, Histogram, Meter, Observation
from opentelemetry.sdk.metrics.export import (
    MetricReader,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.trace import StatusCode
from opentelemetry.util.types import AttributeValue

from flowtel import semconv
from flowtel._core._compat import direct_span_reads
from flowtel.errors._buckets import OTHER_TYPE, OVERFLOW, OperationCounters
from flowtel.errors._duration import DurationProducer
from flowtel.exceptions import ConfigurationError

if TYPE_CHECKING:
    from flowtel.errors._stats import ErrorStats


__all__ = ["ErrorRateProcessor"]

_logger = logging.getLogger("flowtel.errors")

_COMPONENT: Final = semconv.COMPONENT
_OPERATION: Final = semconv.OPERATION
_SPAN_RECORD_ERROR: Final = semconv.SPAN_RECORD_ERROR
_ERROR: Final = StatusCode.ERROR
DEFAULT_GAUGE_WINDOWS: Final = (1, 5, 15)
_NO_ATTRIBUTES: Final[Mapping[str, AttributeValue]] = MappingProxyType({})
_BATCH: Final = 64
"""Spans queued before they are counted together (bounds the work of one ``on_end``)."""
_BACKLOG: Final = 64 * _BATCH
"""Queued spans at which ``on_end`` waits for the lock rather than leave the batch to others."""


def _window_label(minutes: float) -> str:
    seconds = round(minutes * 60)
    return f"{seconds // 60}m" if seconds % 60 == 0 else f"{seconds}s"


def positive(option: str, value: object, accepted: str, *, integer: bool = False) -> float:
    """``value`` as a float if it is a finite number > 0 (an int when ``integer``), else raise."""
    kinds = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds):
        raise ConfigurationError(option, value, accepted)
    number = float(value)
    if not math.isfinite(number) or number <= 0:
        raise ConfigurationError(option, value, accepted)
    return number


_DIRECT_READS: Final = direct_span_reads  # see flowtel._core._compat


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
        record_durations: record the ``flowtel.operation.duration`` histogram.
        metric_readers: every reader of ``meter``'s MeterProvider. Given, the durations are
            aggregated here and added to each reader's collections (a few increments per span);
            without them they go through the SDK's histogram, which costs about as much again
            as the rest of ``on_end``.
        resource: the MeterProvider's resource, for collections that carry nothing else.
        clock: monotonic seconds; injectable for tests.
    """

    def __init__(
        self,
        *,
        window_minutes: float = 60,
        max_keys: int = 1000,
        meter: Meter | None = None,
        bucket_s: float | None = None,
        gauge_windows_minutes: Sequence[float] = DEFAULT_GAUGE_WINDOWS,
        record_durations: bool = True,
        metric_readers: Sequence[MetricReader] | None = None,
        resource: Resource | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        window_s = 60 * positive("error_window_minutes", window_minutes, "a number of minutes > 0")
        self._max_keys = int(positive("error_max_keys", max_keys, "an integer >= 1", integer=True))
        if bucket_s is None:
            bucket_s = min(60.0, max(1.0, window_s / 60))
        bucket_s = positive("bucket_s", bucket_s, "seconds > 0")
        for w in gauge_windows_minutes:
            if positive("gauge_windows_minutes", w, "minutes > 0") * 60 > window_s:
                accepted = f"minutes <= error_window_minutes ({window_minutes})"
                raise ConfigurationError("gauge_windows_minutes", w, accepted)
        self._window_s = window_s
        self._gauge_windows = tuple(gauge_windows_minutes)
        self._clock = clock
        self._lock = threading.Lock()
        self._pending: deque[tuple[ReadableSpan, float]] = deque()
        if hasattr(os, "register_at_fork"):
            weak_self = weakref.ref(self)

            def _after_in_child() -> None:
                # A fork while another thread held the lock would leave it held forever in the
                # child. Counts and queued spans from before the fork stay: the child's history,
                # as with every other pre-fork count.
                processor = weak_self()
                if processor is not None:
                    processor._lock = threading.Lock()

            os.register_at_fork(after_in_child=_after_in_child)
        self._counters = OperationCounters(
            window_s,
            bucket_s,
            clock(),
            self._max_keys,
            self._overflowed,
            semconv.DURATION_BUCKETS_S,
        )
        self._failure_logged = False
        self._duration: Histogram | None = None  # the SDK histogram, when durations go there
        self._own_durations = False  # durations go into the counters' histograms instead
        self._started_ns = time.time_ns()
        if meter is not None:
            self._create_instruments(meter, record_durations, metric_readers, resource)

    def _create_instruments(
        self,
        meter: Meter,
        record_durations: bool,
        metric_readers: Sequence[MetricReader] | None,
        resource: Resource | None,
    ) -> None:
        calls = semconv.metric(semconv.METRIC_OPERATION_CALLS)
        errors = semconv.metric(semconv.METRIC_ERRORS)
        rate = semconv.metric(semconv.METRIC_ERROR_RATE)
        duration = semconv.metric(semconv.METRIC_OPERATION_DURATION)
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
        if not record_durations:
            return
        # Durations: aggregated here and handed to the readers pre-aggregated (see
        # flowtel._metric_producer) when every reader allows it; else the SDK's histogram.
        if metric_readers:
            from flowtel.errors import _producer as _metric_producer

            producer = DurationProducer(self, duration)
            readers = list(metric_readers)
            if all(_metric_producer.supports(r) for r in readers):
                for reader in readers:
                    _metric_producer.register(reader, producer, resource or Resource.get_empty())
                self._own_durations = True
                return
        self._duration = meter.create_histogram(
            duration.name,
            unit=duration.unit,
            description=duration.description,
            explicit_bucket_boundaries_advisory=list(semconv.DURATION_BUCKETS_S),
        )

    # -- SpanProcessor ---------------------------------------------------------------------

    def on_start(self, span: Any, parent_context: Context | None = None) -> None:
        """Nothing to do when a span starts."""

    def on_end(self, span: ReadableSpan) -> None:
        """Queue ``span`` for counting; count the queue once it holds a batch. Never raises."""
        # Only the end time (on this processor's clock) is taken now; the rest is read when the
        # batch is counted: one lock and one tight loop per batch cost less per span than doing
        # the same work between two spans, when the SDK's own work has pushed it out of cache.
        try:
            pending = self._pending
            pending.append((span, self._clock()))
            if len(pending) >= _BATCH and self._lock.acquire(blocking=len(pending) >= _BACKLOG):
                try:
                    sdk_durations = self._count_pending()
                finally:
                    self._lock.release()
                if sdk_durations:
                    self._record_sdk_durations(sdk_durations)
        except Exception:
            self._log_failure()

    def _count_pending(self) -> list[tuple[float, Mapping[str, AttributeValue]]]:
        """Count the spans queued so far (the caller holds the lock).

        Returns the (duration, attributes) pairs for the SDK histogram, when that is in use, to
        be recorded after the lock is released.
        """
        pending = self._pending
        count = self._counters.count
        own = self._own_durations
        timed = own or self._duration is not None
        for_sdk: list[tuple[float, Mapping[str, AttributeValue]]] = []
        for _ in range(len(pending)):  # a snapshot: later arrivals wait for the next batch
            span, now = pending.popleft()
            try:
                if _DIRECT_READS:  # the fields the public properties return, without copies
                    name = span._name
                    attributes = span._attributes
                    if attributes.__class__ is BoundedAttributes:
                        attributes = attributes._dict
                    elif attributes is None:
                        attributes = _NO_ATTRIBUTES
                    code = span._status.status_code
                    start, end = span._start_time, span._end_time
                else:
                    name = span.name
                    attributes = span.attributes or _NO_ATTRIBUTES
                    code = span.status.status_code
                    start, end = span.start_time, span.end_time
                if name == _SPAN_RECORD_ERROR and _is_own_span(span):
                    continue  # record_error() counted it already, as a handled error
                component = attributes.get(_COMPONENT)
                if component.__class__ is not str:
                    scope = span.instrumentation_scope
                    component = scope.name if scope is not None else ""
                operation = attributes.get(_OPERATION)
                if operation.__class__ is not str:
                    operation = name
                error_type = _error_type(span, attributes) if code is _ERROR else None
                duration_s = (end - start) / 1e9 if timed and end and start else None
                metric_attributes = count(
                    component, operation, now, code, error_type, duration_s if own else None
                )
                if duration_s is not None and not own:
                    for_sdk.append((duration_s, metric_attributes))
            except Exception:
                self._log_failure()
        return for_sdk

    def _record_sdk_durations(
        self, durations: list[tuple[float, Mapping[str, AttributeValue]]]
    ) -> None:
        histogram = self._duration
        if histogram is not None:
            for duration_s, attributes in durations:
                histogram.record(duration_s, attributes)

    def _flush_pending(self) -> None:
        """Count everything queued (force_flush, shutdown); queries use :meth:`_counted`."""
        if self._pending:
            with self._counted():
                pass

    @contextmanager
    def _counted(self) -> Iterator[None]:
        """Hold the lock with every queued span counted (for queries and metric callbacks)."""
        with self._lock:
            sdk_durations = self._count_pending()
            yield
        if sdk_durations:
            self._record_sdk_durations(sdk_durations)

    def _log_failure(self) -> None:
        if not self._failure_logged:
            self._failure_logged = True
            _logger.exception("flowtel.errors: could not count a span; skipping such spans")

    def shutdown(self) -> None:
        """Count what is queued; statistics stay readable."""
        self._flush_pending()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Count what is queued (nothing is exported from here)."""
        self._flush_pending()
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
        last_s = 60 * positive("last_minutes", last_minutes, "a number of minutes > 0")
        now = self._clock()
        with self._counted():
            ranges, window_s = self._counters.covered(now, min(last_s, self._window_s))
            per_key = self._counters.totals(ranges, component, operation)
        from flowtel.errors._stats import build_stats

        return build_stats(per_key, window_s)

    # -- metric callbacks (run on the metric reader's thread) ------------------------------

    def _observe_calls(self, options: CallbackOptions) -> Iterable[Observation]:
        with self._counted():
            points = self._counters.call_points()
        return [Observation(n, attributes) for n, attributes in points]

    def _observe_errors(self, options: CallbackOptions) -> Iterable[Observation]:
        with self._counted():
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
            with self._counted():
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
