"""The processor's metrics: calls, entries and errors counters, the error-rate gauge, durations.

Why observable instruments: ``on_end`` bumps an integer on the key's counters instead of paying
the SDK's per-measurement attribute handling; on the wire it is the same monotonic sum. Each
callback collects the streams in chunks of keys, taking the processor's lock once per chunk,
and builds the observations outside it, so a metric collection never holds the lock for more
than about a millisecond of CPU, whatever the number of keys.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from opentelemetry.metrics import CallbackOptions, Meter, Observation
from opentelemetry.sdk.metrics.export import MetricReader
from opentelemetry.sdk.resources import Resource

from flowtel import semconv
from flowtel.errors._window import key_counts

if TYPE_CHECKING:
    from flowtel.errors._buckets import OperationCounters
    from flowtel.errors._processor import ErrorRateProcessor

__all__ = ["create_instruments", "window_label"]


def window_label(minutes: float) -> str:
    seconds = round(minutes * 60)
    return f"{seconds // 60}m" if seconds % 60 == 0 else f"{seconds}s"


def create_instruments(
    processor: ErrorRateProcessor,
    meter: Meter,
    record_durations: bool,
    metric_readers: Sequence[MetricReader] | None,
    resource: Resource | None,
) -> Any:
    """Create the observable instruments; return the SDK histogram when durations go there.

    Durations are aggregated by the processor and handed to the readers pre-aggregated (see
    ``_producer``) when every reader allows it; then this returns None and sets
    ``processor._own_durations``.
    """
    calls = semconv.metric(semconv.METRIC_OPERATION_CALLS)
    entries = semconv.metric(semconv.METRIC_ENTRY_CALLS)
    errors = semconv.metric(semconv.METRIC_ERRORS)
    rate = semconv.metric(semconv.METRIC_ERROR_RATE)
    duration = semconv.metric(semconv.METRIC_OPERATION_DURATION)

    def observe_calls(counters: Callable[[], OperationCounters]) -> Callable[..., Any]:
        def observe(options: CallbackOptions) -> Iterable[Observation]:
            with processor._counted():
                ops = counters().ops()
            if not ops:
                return []
            # The collection side loads when there is something to collect, off the start path.
            from flowtel.errors._points import call_points, chunked

            streams = chunked(processor, ops, call_points)
            return [Observation(s.calls, s.attributes) for s in streams]

        return observe

    meter.create_observable_counter(
        calls.name,
        [observe_calls(lambda: processor._counters)],
        unit=calls.unit,
        description=calls.description,
    )
    meter.create_observable_counter(
        entries.name,
        [observe_calls(lambda: processor._entries)],
        unit=entries.unit,
        description=entries.description,
    )
    meter.create_observable_counter(
        errors.name,
        [lambda o: _errors(processor)],
        unit=errors.unit,
        description=errors.description,
    )
    meter.create_observable_gauge(
        rate.name,
        [lambda o: list(_rates(processor))],
        unit=rate.unit,
        description=rate.description,
    )
    if not record_durations:
        return None
    if metric_readers:
        from flowtel.errors import _producer

        producer = _producer.DurationProducer(processor, duration)
        readers = list(metric_readers)
        if all(_producer.supports(r) for r in readers):
            for reader in readers:
                _producer.register(reader, producer, resource or Resource.get_empty())
            processor._own_durations = True
            return None
    return meter.create_histogram(
        duration.name,
        unit=duration.unit,
        description=duration.description,
        explicit_bucket_boundaries_advisory=list(semconv.DURATION_BUCKETS_S),
    )


def _errors(processor: ErrorRateProcessor) -> list[Observation]:
    with processor._counted():
        ops = processor._counters.ops()
    if not ops:
        return []
    from flowtel.errors._points import chunked, error_attributes, error_points

    points = chunked(processor, ops, error_points)
    return [Observation(*error_attributes(point)) for point in points]


def _rates(processor: ErrorRateProcessor) -> Iterator[Observation]:
    """The entry-level error rate per component, one series per gauge window.

    Only the column copies are taken under the lock; the per-key sums are done outside it.
    """
    entries = processor._entries
    for minutes in processor._gauge_windows:
        now = processor._clock()
        with processor._counted():
            totals = entries.since(now, minutes * 60)
            keys = entries.columns()
        sums: dict[str, tuple[int, int]] = {}
        for column, (component, _op) in enumerate(keys):
            calls, failed, _handled = key_counts(totals, column)
            total, errors = sums.get(component, (0, 0))
            sums[component] = (total + calls, errors + failed)
        label = window_label(minutes)
        for component, (total, failed) in sorted(sums.items()):
            yield Observation(
                failed / total if total else 0.0,
                {semconv.COMPONENT: component, semconv.ERROR_RATE_WINDOW: label},
            )
