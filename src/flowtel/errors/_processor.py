"""Exact, in-process error rates: a SpanProcessor, ``get_error_stats()`` and RED metrics.

Why in-process: health checks, alerts and load shedding need "what fraction of my requests
failed in the last N minutes" now, and exactly. A collector round trip is slow, and it only sees
the spans that survived sampling. :class:`ErrorRateProcessor` counts every finished span in
``on_end`` (the core's sampler marks the sampled-out share RECORD_ONLY, so ``on_end`` still sees
them) at two levels: every operation (span), and every entry (request, job, message; see
``_entry``). It emits the calls, entries, errors, duration and error-rate metrics from the same
counts, so dashboards are exact as well.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.context import Context
from opentelemetry.metrics import Histogram, Meter
from opentelemetry.sdk.metrics.export import MetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.trace import StatusCode
from opentelemetry.util.types import AttributeValue

from flowtel import semconv
from flowtel._core._compat import direct_span_reads as DIRECT_READS
from flowtel._core._parse import positive
from flowtel.errors._buckets import OVERFLOW, OperationCounters
from flowtel.errors._entry import entry_failed, error_type_of, is_entry
from flowtel.errors._metrics import create_instruments
from flowtel.errors._streams import NO_DIMS, ExemplarSample
from flowtel.errors._window import MAX_WINDOW_MINUTES
from flowtel.exceptions import ConfigurationError

if TYPE_CHECKING:
    from flowtel.errors._dimensions import DimensionValues
    from flowtel.errors._stats import ErrorStats

__all__ = [
    "DEFAULT_GAUGE_WINDOWS",
    "DEFAULT_MAX_DIMENSION_VALUES",
    "ErrorRateProcessor",
    "positive",
]

DEFAULT_MAX_DIMENSION_VALUES: Final = 100
"""Distinct values kept per error dimension; more count as ``_other``."""

_logger = logging.getLogger("flowtel.errors")

_COMPONENT: Final = semconv.COMPONENT
_OPERATION: Final = semconv.OPERATION
_SPAN_RECORD_ERROR: Final = semconv.SPAN_RECORD_ERROR
_ERROR: Final = StatusCode.ERROR
_UNSET: Final = StatusCode.UNSET
DEFAULT_GAUGE_WINDOWS: Final = (1, 5, 15)
_NO_ATTRIBUTES: Final[Mapping[str, AttributeValue]] = MappingProxyType({})
_BATCH: Final = 64
"""Spans queued before they are counted together (bounds the work of one ``on_end``)."""
_BACKLOG: Final = 64 * _BATCH
"""Queued spans at which ``on_end`` waits for the lock rather than leave the batch to others."""
_CHUNK: Final = 64
"""Spans counted per lock acquisition (about 0.1 ms, 0.4 ms at 10,000 keys where every span
misses the CPU caches): the lock is released between chunks, so no holder waits long."""


class ErrorRateProcessor(SpanProcessor):
    """Counts every finished span per (component, operation), at two levels, and emits RED metrics.

    Component is the ``flowtel.component`` attribute, else the instrumentation scope name;
    operation is ``flowtel.operation``, else the span name. A span is an error when its status
    is ERROR; its type is ``error.type``, else the type of its first exception event, else
    ``_OTHER``. Entries (local roots, SERVER and CONSUMER spans) are counted a second time at
    the entry level, where an HTTP server span fails on 5xx only.

    Threading: ``on_end`` may run on any thread. Every 64 spans it holds one lock to count
    them, never does I/O and never raises: a failure is logged once and the span is skipped.
    Counting, queries and metric collections hold the lock for at most about a millisecond of
    CPU at a time (64 spans, or 32 keys). Memory is bounded by ``max_keys`` x buckets (and
    ``max_dimension_values`` per dimension), independent of span volume.

    Args:
        window_minutes: the longest window :meth:`stats` can answer, at most 7 days.
        max_keys: distinct (component, operation) pairs tracked per level; more are counted
            under ``("_other", "_other")`` and a warning is logged once.
        meter: where the calls/entries/errors counters, duration histogram and error-rate gauge
            go; None emits no metrics.
        bucket_s: width of the finest buckets; default ``window / 60`` clamped to 1..60 s, with
            coarser buckets beyond the last hour. Windows are whole buckets.
        gauge_windows_minutes: windows of the ``flowtel.error_ratio`` gauge, one series each.
        record_durations: record the ``flowtel.operation.duration`` histogram.
        metric_readers: every reader of ``meter``'s MeterProvider. Given, the durations are
            aggregated here (with exemplars from sampled spans) and added to each reader's
            collections; without them they go through the SDK's histogram.
        resource: the MeterProvider's resource, for collections that carry nothing else.
        clock: monotonic seconds; injectable for tests.
        dimensions: span attributes (at most 5) that also split the counts: ``by_dimension``
            in :meth:`stats` and metric attributes (see ``_dimensions``).
        max_dimension_values: distinct values kept per dimension; more count as ``_other``.
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
        dimensions: Sequence[str] = (),
        max_dimension_values: int = DEFAULT_MAX_DIMENSION_VALUES,
    ) -> None:
        minutes = positive("error_window_minutes", window_minutes, "a number of minutes > 0")
        if minutes > MAX_WINDOW_MINUTES:
            accepted = f"minutes > 0 and <= {MAX_WINDOW_MINUTES} (7 days)"
            raise ConfigurationError("error_window_minutes", window_minutes, accepted)
        window_s = 60 * minutes
        self._max_keys = int(positive("error_max_keys", max_keys, "an integer >= 1", integer=True))
        if bucket_s is not None:
            bucket_s = positive("bucket_s", bucket_s, "seconds > 0")
            if window_s / bucket_s > 100_000:
                raise ConfigurationError("bucket_s", bucket_s, "at most 100,000 buckets per window")
        for w in gauge_windows_minutes:
            if positive("gauge_windows_minutes", w, "minutes > 0") * 60 > window_s:
                accepted = f"minutes <= error_window_minutes ({window_minutes})"
                raise ConfigurationError("gauge_windows_minutes", w, accepted)
        names: tuple[str, ...] = ()
        if dimensions:  # the dimension counters load only when dimensions are configured
            from flowtel._core._errors_settings import parse_error_dimensions

            names = parse_error_dimensions("error_dimensions", tuple(dimensions))
        max_values = positive(
            "max_dimension_values", max_dimension_values, "an integer >= 1", integer=True
        )
        self._window_s = window_s
        self._gauge_windows = tuple(gauge_windows_minutes)
        self._clock = clock
        self._lock = threading.Lock()
        self._pending: deque[tuple[ReadableSpan, float]] = deque()
        if hasattr(os, "register_at_fork"):
            weak_self = weakref.ref(self)

            def _after_in_child() -> None:
                # A fork while another thread held the lock would leave it held forever in the
                # child. Counts and queued spans from before the fork stay: the child's history.
                processor = weak_self()
                if processor is not None:
                    processor._lock = threading.Lock()

            os.register_at_fork(after_in_child=_after_in_child)
        started = clock()
        self._overflow_logged = False
        self._counters = OperationCounters(
            window_s,
            bucket_s,
            started,
            self._max_keys,
            self._overflowed,
            semconv.DURATION_BUCKETS_S,
            names,
        )
        self._entries = OperationCounters(
            window_s, bucket_s, started, self._max_keys, self._overflowed, (), names
        )
        self._dims: DimensionValues | None = None  # None: no dimensions, nothing read per span
        if names:
            from flowtel.errors._dimensions import DimensionCounters, DimensionValues

            self._dims = DimensionValues(names, int(max_values), self._dimension_overflowed)
            self._op_dims = DimensionCounters(names, window_s, bucket_s, started)
            self._entry_dims = DimensionCounters(names, window_s, bucket_s, started)
        self._failure_logged = False
        self._own_durations = False  # durations go into the counters' histograms instead
        self._started_ns = time.time_ns()
        self._duration: Histogram | None = None  # the SDK histogram, when durations go there
        if meter is not None:
            self._duration = create_instruments(
                self, meter, record_durations, metric_readers, resource
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
            # One chunk per acquisition; at the backlog bound, wait and count until below it.
            while len(pending) >= _BATCH and self._lock.acquire(blocking=len(pending) >= _BACKLOG):
                try:
                    sdk_durations = self._count_pending(_CHUNK)
                finally:
                    self._lock.release()
                if sdk_durations:
                    self._record_sdk_durations(sdk_durations)
                if len(pending) < _BACKLOG:
                    break
        except Exception:
            self._log_failure()

    def _count_pending(self, limit: int) -> list[tuple[float, Mapping[str, AttributeValue]]]:
        """Count up to ``limit`` queued spans (the caller holds the lock).

        Returns the (duration, attributes) pairs for the SDK histogram, when that is in use, to
        be recorded after the lock is released.
        """
        pending = self._pending
        count = self._counters.count
        count_entry = self._entries.count
        own = self._own_durations
        timed = own or self._duration is not None
        read_dims = self._dims.read if self._dims is not None else None
        dims = NO_DIMS
        for_sdk: list[tuple[float, Mapping[str, AttributeValue]]] = []
        for _ in range(min(limit, len(pending))):  # later arrivals wait for the next batch
            span, now = pending.popleft()
            try:
                if DIRECT_READS:  # the fields the public properties return, without copies
                    s: Any = span
                    name, attributes, code = s._name, s._attributes, s._status.status_code
                    if attributes.__class__ is BoundedAttributes:
                        attributes = attributes._dict
                    elif attributes is None:
                        attributes = _NO_ATTRIBUTES
                    start, end, kind, parent = s._start_time, s._end_time, s._kind, s._parent
                    context = s._context
                else:
                    name, code = span.name, span.status.status_code
                    attributes = span.attributes or _NO_ATTRIBUTES
                    start, end, kind, parent = (
                        span.start_time,
                        span.end_time,
                        span.kind,
                        span.parent,
                    )
                    context = span.context
                scope = span.instrumentation_scope
                if (
                    name == _SPAN_RECORD_ERROR
                    and scope is not None
                    and (scope.name == semconv.SCOPE_ERRORS)
                ):
                    continue  # record_error() counted it already, as a handled error
                component = attributes.get(_COMPONENT)
                if component.__class__ is not str:
                    component = scope.name if scope is not None else ""
                operation = attributes.get(_OPERATION)
                if operation.__class__ is not str:
                    operation = name
                error_type = error_type_of(span, attributes) if code is _ERROR else None
                duration_s = (end - start) / 1e9 if timed and end and start else None
                exemplar = None
                if (
                    own
                    and duration_s is not None
                    and context is not None
                    and (context.trace_flags.sampled)
                ):
                    exemplar = ExemplarSample(duration_s, end, context.trace_id, context.span_id)
                if read_dims is not None:
                    dims = read_dims(attributes)
                    self._op_dims.count(dims, now, code is _ERROR)
                metric_attributes = count(
                    component,
                    operation,
                    now,
                    code,
                    error_type,
                    duration_s if own else None,
                    exemplar,
                    dims,
                )
                if duration_s is not None and not own:
                    for_sdk.append((duration_s, metric_attributes))
                if is_entry(kind, parent, name, scope.name if scope is not None else None):
                    failed = entry_failed(kind, code, attributes)
                    if failed:
                        entry_type = error_type or error_type_of(span, attributes)
                        count_entry(component, operation, now, _ERROR, entry_type, None, None, dims)
                    else:
                        entry_code = _UNSET if code is _ERROR else code
                        count_entry(component, operation, now, entry_code, None, None, None, dims)
                    if read_dims is not None:
                        self._entry_dims.count(dims, now, failed)
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

    def _drain(self) -> None:
        """Count what is queued now, a chunk per lock acquisition (queries, flushes).

        Spans queued while this runs ended concurrently with the caller; they are left to the
        next batch, so a stream of spans from other threads cannot keep a query waiting.
        """
        remaining = len(self._pending)
        while remaining > 0:
            with self._lock:
                sdk_durations = self._count_pending(min(remaining, _CHUNK))
            remaining -= _CHUNK
            if sdk_durations:
                self._record_sdk_durations(sdk_durations)

    @contextmanager
    def _counted(self) -> Iterator[None]:
        """Hold the lock with the queue counted (for queries and metric callbacks)."""
        self._drain()
        with self._lock:
            yield

    def _log_failure(self) -> None:
        if not self._failure_logged:
            self._failure_logged = True
            _logger.exception("flowtel.errors: could not count a span; skipping such spans")

    def shutdown(self) -> None:
        """Count what is queued; statistics stay readable."""
        with self._counted():
            pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Count what is queued (nothing is exported from here)."""
        with self._counted():
            pass
        return True

    # -- counting --------------------------------------------------------------------------

    def _overflowed(self) -> None:
        if self._overflow_logged:  # once per processor, whichever level overflowed first
            return
        self._overflow_logged = True
        _logger.warning(
            "flowtel.errors: more than %d (component, operation) pairs; counting new ones "
            "under %r (raise error_max_keys if these are legitimate)",
            self._max_keys,
            OVERFLOW,
        )

    def _dimension_overflowed(self, name: str) -> None:
        _logger.warning(
            "flowtel.errors: attribute %r has more distinct values than error_dimensions keep; "
            "counting new ones under %r (is it an id rather than a low-cardinality attribute?)",
            name,
            OVERFLOW[0],
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

        Without a filter the totals cost the same whatever the number of operations, and the
        per-operation figures are computed on first access, outside the lock. With
        ``dimensions``, each level's ``by_dimension`` splits the unfiltered counts by value.

        Raises:
            ConfigurationError: ``last_minutes`` is not a positive number.
        """
        from flowtel.errors._query import query

        return query(self, last_minutes, component, operation)
