"""Pre-aggregated metrics into every MetricReader: flowtel's stand-in for the spec's MetricProducer.

Why: the OpenTelemetry specification lets a MetricReader pull already-aggregated points from a
MetricProducer. The Python SDK (1.45) has no such hook yet (opentelemetry-python#4768), and each
measurement through one of its synchronous instruments costs more than the rest of a span's
bookkeeping, which a per-span duration histogram cannot afford. flowtel aggregates such metrics
itself and adds the finished points to whatever each reader collects: a periodic OTLP export, a
Prometheus scrape, ``InMemoryMetricReader.get_metrics_data()``.

How: the MeterProvider gives each reader its collect function through
``MetricReader._set_collect_callback``; :func:`register` wraps the function the reader holds and
reads the reader's preferred temporality. Those two protected members are the only SDK internals
used; when they are missing :func:`register` returns False and the caller falls back to an SDK
instrument, so a metric is never silently lost.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from opentelemetry.sdk.metrics import Exemplar
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    HistogramDataPoint,
    Metric,
    MetricReader,
    MetricsData,
    ResourceMetrics,
    ScopeMetrics,
)
from opentelemetry.sdk.metrics.export import Histogram as HistogramData
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from flowtel import semconv
from flowtel._core._compat import HISTOGRAM_INSTRUMENT_CLASS, reader_collect_hooks

if TYPE_CHECKING:
    from flowtel.errors._processor import ErrorRateProcessor

__all__ = ["DurationProducer", "MetricProducer", "merge", "register", "supports"]

_logger = logging.getLogger(__name__)

Produce = Callable[[int], Sequence[Metric]]
"""Called at each collection with the collection time (ns); returns the metrics to add."""


class MetricProducer(Protocol):
    """A source of pre-aggregated histogram metrics, produced per reader."""

    @property
    def scope(self) -> InstrumentationScope:
        """Instrumentation scope the produced metrics belong to."""
        ...

    def for_reader(self, temporality: AggregationTemporality) -> Produce:
        """A producer with its own state (for DELTA, what the reader saw last time)."""
        ...


def supports(reader: MetricReader) -> bool:
    """Whether :func:`register` can attach to ``reader`` (registered with a MeterProvider)."""
    return reader_collect_hooks(reader) is not None


def register(reader: MetricReader, producer: MetricProducer, resource: Resource) -> bool:
    """Make every collection of ``reader`` also carry ``producer``'s metrics.

    Call after the MeterProvider was created with ``reader``. Returns False (and changes
    nothing) when :func:`supports` is False; the producer's own failures are logged once and
    the reader's other metrics are still delivered.
    """
    hooks = reader_collect_hooks(reader)
    if hooks is None:
        return False
    collect, temporalities, set_callback = hooks
    temporality = temporalities.get(HISTOGRAM_INSTRUMENT_CLASS, AggregationTemporality.CUMULATIVE)
    produce = producer.for_reader(temporality)
    scope = producer.scope
    lock = threading.Lock()  # a periodic export and a force_flush may collect at once
    failed = False

    def collect_with_producer(
        metric_reader: MetricReader, timeout_millis: float = 10_000
    ) -> MetricsData | None:
        nonlocal failed
        data: MetricsData | None = collect(metric_reader, timeout_millis=timeout_millis)
        try:
            with lock:
                metrics = produce(time.time_ns())
            if metrics:
                data = merge(data, scope, metrics, resource)
        except Exception:
            if not failed:
                failed = True
                _logger.exception("flowtel: could not add pre-aggregated metrics to a collection")
        return data

    set_callback(collect_with_producer)
    return True


def merge(
    data: MetricsData | None,
    scope: InstrumentationScope,
    metrics: Sequence[Metric],
    resource: Resource,
) -> MetricsData:
    """``data`` with ``metrics`` added under ``scope`` (in the first resource's scope list)."""
    if data is None or not data.resource_metrics:
        scope_metrics = ScopeMetrics(scope, list(metrics), scope.schema_url or "")
        return MetricsData([ResourceMetrics(resource, [scope_metrics], resource.schema_url)])
    first, *rest = data.resource_metrics
    scopes = list(first.scope_metrics)
    for i, existing in enumerate(scopes):
        if existing.scope.name == scope.name and existing.scope.version == scope.version:
            scopes[i] = ScopeMetrics(
                existing.scope, [*existing.metrics, *metrics], existing.schema_url
            )
            break
    else:
        scopes.append(ScopeMetrics(scope, list(metrics), scope.schema_url or ""))
    return MetricsData([ResourceMetrics(first.resource, scopes, first.schema_url), *rest])


class DurationProducer:
    """Hands the processor's duration histograms to metric readers (a MetricProducer).

    Each reader gets the exemplars recorded since its previous collection, as the SDK's
    reservoirs reset at every collection.
    """

    def __init__(self, processor: ErrorRateProcessor, definition: semconv.MetricDef) -> None:
        self._processor = processor
        self._definition = definition
        self.scope = InstrumentationScope(semconv.SCOPE_ERRORS)

    def for_reader(self, temporality: AggregationTemporality) -> Callable[[int], list[Metric]]:
        processor, definition = self._processor, self._definition
        bounds = list(processor._counters.bounds)
        delta = temporality is AggregationTemporality.DELTA
        seen: dict[tuple[Any, ...], tuple[list[int], int, float]] = {}
        last_ns = processor._started_ns
        interval = None
        if delta:
            with processor._lock:
                interval = processor._counters.add_interval()

        def produce(now_ns: int) -> list[Metric]:
            nonlocal last_ns
            counters = processor._counters
            with processor._counted():
                ops = counters.ops()
            if not ops:
                last_ns = now_ns
                return []
            # The collection side loads when there is something to collect, off the start path.
            from flowtel.errors._points import chunked, duration_copies, duration_points

            copies = chunked(processor, ops, lambda chunk: duration_copies(chunk, interval))
            points = duration_points(copies, last_ns)
            data: list[HistogramDataPoint] = []
            for p in points:
                start, count, total, counts = processor._started_ns, p.observations, p.sum, p.counts
                if delta:  # what happened since this reader's previous collection
                    start = last_ns
                    before = seen.get(p.stream)
                    seen[p.stream] = (p.counts, p.observations, p.sum)
                    if before is not None:
                        count = p.observations - before[1]
                        if not count:
                            continue
                        counts = [now - then for now, then in zip(p.counts, before[0], strict=True)]
                        total = p.sum - before[2]
                data.append(
                    HistogramDataPoint(
                        attributes=p.attributes,
                        start_time_unix_nano=start,
                        time_unix_nano=now_ns,
                        count=count,
                        sum=total,
                        bucket_counts=counts,
                        explicit_bounds=bounds,
                        min=p.min,  # for DELTA readers: of this interval (see add_interval)
                        max=p.max,
                        exemplars=[
                            Exemplar({}, e.value, e.time_ns, e.span_id, e.trace_id)
                            for e in p.exemplars
                        ],
                    )
                )
            last_ns = now_ns
            if not data:
                return []
            histogram = HistogramData(data, temporality)
            return [Metric(definition.name, definition.description, definition.unit, histogram)]

        return produce
