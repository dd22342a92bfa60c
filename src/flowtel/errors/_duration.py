"""The processor's duration histogram, handed to every metric reader (a MetricProducer)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from opentelemetry.sdk.metrics import Exemplar
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    HistogramDataPoint,
    Metric,
)
from opentelemetry.sdk.metrics.export import Histogram as HistogramData
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from flowtel import semconv

if TYPE_CHECKING:
    from flowtel.errors._processor import ErrorRateProcessor


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
        from flowtel.errors._chunks import chunked
        from flowtel.errors._points import duration_copies, duration_points

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
