"""The duration histogram aggregated in-process and handed to metric readers pre-aggregated.

The reference is the SDK's own histogram: the same spans recorded both ways must export the same
points (attributes, count, sum, bucket counts, bounds, min, max).
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from opentelemetry.sdk.metrics import Counter, Histogram, MeterProvider
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    HistogramDataPoint,
    InMemoryMetricReader,
    Metric,
    MetricReader,
    MetricsData,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Status, StatusCode

from flowtel import semconv
from flowtel.errors import ErrorRateProcessor
from flowtel.errors import _producer as _metric_producer
from flowtel.semconv import DURATION_BUCKETS_S

# Durations on and around bucket boundaries: OTel buckets are upper-inclusive.
DURATIONS_S = [0.0, 0.001, 0.005, 0.0050001, 0.01, 0.3, 0.75, 2.5, 10.0, 12.0, 0.02, 0.02]
T0 = 1_700_000_000_000_000_000


def _points(reader: InMemoryMetricReader) -> dict[frozenset[Any], HistogramDataPoint]:
    data = reader.get_metrics_data()
    assert data is not None
    out = {}
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                if metric.name == semconv.METRIC_OPERATION_DURATION:
                    assert sm.scope.name == semconv.SCOPE_ERRORS
                    assert metric.unit == "s"
                    for point in metric.data.data_points:
                        out[frozenset(point.attributes.items())] = point
    return out


def _run(tp: TracerProvider, durations_s: list[float], *, offset: int = 0) -> None:
    tracer = tp.get_tracer("test")
    for i, duration in enumerate(durations_s):
        start = T0 + (offset + i) * 10**10
        span = tracer.start_span(
            "work",
            attributes={semconv.COMPONENT: "c", semconv.OPERATION: "op"},
            start_time=start,
        )
        if i % 3 == 0:
            span.set_attribute(semconv.ERROR_TYPE, "TimeoutError")
            span.set_status(Status(StatusCode.ERROR))
        elif i % 3 == 1:
            span.set_status(Status(StatusCode.OK))
        span.end(end_time=start + round(duration * 1e9))


def _pair() -> tuple[TracerProvider, InMemoryMetricReader, InMemoryMetricReader]:
    """One span stream into two processors: pre-aggregated (left) and the SDK histogram (right)."""
    produced, sdk = InMemoryMetricReader(), InMemoryMetricReader()
    mp_produced = MeterProvider(metric_readers=[produced])
    mp_sdk = MeterProvider(metric_readers=[sdk])
    tp = TracerProvider()
    tp.add_span_processor(
        ErrorRateProcessor(
            meter=mp_produced.get_meter(semconv.SCOPE_ERRORS), metric_readers=[produced]
        )
    )
    tp.add_span_processor(ErrorRateProcessor(meter=mp_sdk.get_meter(semconv.SCOPE_ERRORS)))
    return tp, produced, sdk


def test_same_points_as_the_sdk_histogram() -> None:
    """Every stream's count, sum, buckets, bounds, min and max equal the SDK's aggregation."""
    tp, produced, sdk = _pair()
    _run(tp, DURATIONS_S)
    ours, theirs = _points(produced), _points(sdk)
    assert set(ours) == set(theirs)
    assert len(ours) == 3  # OK, UNSET and ERROR/TimeoutError streams
    for attributes, point in ours.items():
        reference = theirs[attributes]
        assert point.count == reference.count
        assert point.sum == pytest.approx(reference.sum)
        assert list(point.bucket_counts) == list(reference.bucket_counts)
        assert list(point.explicit_bounds) == list(reference.explicit_bounds)
        assert list(point.explicit_bounds) == list(DURATION_BUCKETS_S)
        assert (point.min, point.max) == pytest.approx((reference.min, reference.max))
    assert sum(p.count for p in ours.values()) == len(DURATIONS_S)
    # A second collection is cumulative: same start, counts grown by the new spans.
    first = {k: (p.start_time_unix_nano, p.count) for k, p in ours.items()}
    _run(tp, DURATIONS_S, offset=100)
    again = _points(produced)
    for attributes, point in again.items():
        assert point.start_time_unix_nano == first[attributes][0]
        assert point.count == 2 * first[attributes][1]
    assert _points(sdk).keys() == again.keys()


def test_delta_reader_gets_each_interval_once() -> None:
    """A DELTA reader sees only what happened since its previous collection."""
    reader = InMemoryMetricReader(preferred_temporality={Histogram: AggregationTemporality.DELTA})
    mp = MeterProvider(metric_readers=[reader])
    tp = TracerProvider()
    tp.add_span_processor(
        ErrorRateProcessor(meter=mp.get_meter(semconv.SCOPE_ERRORS), metric_readers=[reader])
    )
    _run(tp, [0.001, 0.002, 0.2])  # ERROR 0.001, OK 0.002, UNSET 0.2
    first = _points(reader)
    assert sorted(p.count for p in first.values()) == [1, 1, 1]
    for point in first.values():
        assert point.min == point.max == pytest.approx(point.sum)
    _run(tp, [0.004, 0.05, 3.0, 0.006], offset=10)  # ERROR 0.004 and 0.006, OK 0.05, UNSET 3.0
    second = _points(reader)
    by_status = {dict(k)[semconv.OTEL_STATUS_CODE]: p for k, p in second.items()}
    assert {s: p.count for s, p in by_status.items()} == {"ERROR": 2, "OK": 1, "UNSET": 1}
    assert by_status["ERROR"].sum == pytest.approx(0.010)
    # min and max are those of the interval, not of all time (0.001 was in the first one)
    assert (by_status["ERROR"].min, by_status["ERROR"].max) == pytest.approx((0.004, 0.006))
    assert by_status["UNSET"].bucket_counts[DURATION_BUCKETS_S.index(5.0)] == 1
    previous_end = {k: p.time_unix_nano for k, p in first.items()}
    for attributes, point in second.items():
        assert point.start_time_unix_nano == previous_end[attributes]
    assert _points(reader) == {}  # nothing new: no duration points at all


def test_temporality_is_per_reader() -> None:
    """One processor, a cumulative and a delta reader: each gets its own temporality."""
    cumulative = InMemoryMetricReader()
    delta = InMemoryMetricReader(preferred_temporality={Histogram: AggregationTemporality.DELTA})
    delta2 = InMemoryMetricReader(preferred_temporality={Histogram: AggregationTemporality.DELTA})
    mp = MeterProvider(metric_readers=[cumulative, delta, delta2])
    tp = TracerProvider()
    tp.add_span_processor(
        ErrorRateProcessor(
            meter=mp.get_meter(semconv.SCOPE_ERRORS), metric_readers=[cumulative, delta, delta2]
        )
    )
    _run(tp, [0.1, 0.1, 0.1])
    assert sum(p.count for p in _points(cumulative).values()) == 3
    assert sum(p.count for p in _points(delta).values()) == 3
    _run(tp, [0.5, 0.5, 0.5], offset=5)
    assert sum(p.count for p in _points(cumulative).values()) == 6
    assert sum(p.count for p in _points(delta).values()) == 3
    assert {p.min for p in _points(cumulative).values()} == {0.1}
    # the second DELTA reader, not collected until now, has its own interval: both batches
    both = _points(delta2).values()
    assert sum(p.count for p in both) == 6
    assert {(p.min, p.max) for p in both} == {(0.1, 0.5)}
    _run(tp, [0.7], offset=20)
    assert [(p.min, p.max) for p in _points(delta).values()] == [(0.7, 0.7)]


def test_unregistered_reader_falls_back_to_the_sdk_histogram() -> None:
    """A reader that is not attached to a MeterProvider cannot take a producer: SDK path."""
    stray = InMemoryMetricReader()  # never given to a MeterProvider: no collect callback
    reader = InMemoryMetricReader()
    mp = MeterProvider(metric_readers=[reader])
    assert not _metric_producer.supports(stray)
    processor = ErrorRateProcessor(
        meter=mp.get_meter(semconv.SCOPE_ERRORS), metric_readers=[reader, stray]
    )
    tp = TracerProvider()
    tp.add_span_processor(processor)
    _run(tp, [0.1, 0.2])
    assert sum(p.count for p in _points(reader).values()) == 2  # through the SDK instrument


def test_configure_telemetry_produces_to_every_reader() -> None:
    """configure_telemetry registers the producer on the readers it builds and is given."""
    import flowtel

    reader = InMemoryMetricReader()
    tel = flowtel.configure_telemetry(
        service_name="producer", exporter="none", metric_readers=[reader], force=True
    )
    try:
        assert tel.metric_readers == (reader,)
        assert tel.resource is not None

        @flowtel.traced(component="c", operation="op")
        def work() -> int:
            return 1

        for _ in range(5):
            work()
        data = reader.get_metrics_data()
        assert data is not None
        (rm,) = data.resource_metrics
        assert rm.resource.attributes["service.name"] == "producer"
        (point,) = _points(reader).values()
        assert point.count == 5
    finally:
        tel.shutdown()


def _histogram_metric(name: str) -> Metric:
    from opentelemetry.sdk.metrics.export import Histogram as HistogramData

    point = HistogramDataPoint({}, 1, 2, 1, 0.5, [0, 1], [0.1], 0.5, 0.5)
    return Metric(name, "d", "s", HistogramData([point], AggregationTemporality.CUMULATIVE))


def test_merge_into_empty_and_existing_collections() -> None:
    resource = Resource.create({"service.name": "m"})
    scope = InstrumentationScope("flowtel.errors")
    only = _metric_producer.merge(None, scope, [_histogram_metric("a")], resource)
    (rm,) = only.resource_metrics
    assert rm.resource is resource
    assert [m.name for sm in rm.scope_metrics for m in sm.metrics] == ["a"]

    reader = InMemoryMetricReader()
    mp = MeterProvider(metric_readers=[reader], resource=resource)
    mp.get_meter("flowtel.errors").create_counter("c").add(1)
    mp.get_meter("other").create_counter("o").add(1)
    data = reader.get_metrics_data()
    assert isinstance(data, MetricsData)
    merged = _metric_producer.merge(data, scope, [_histogram_metric("b")], resource)
    names = {
        sm.scope.name: sorted(m.name for m in sm.metrics)
        for sm in merged.resource_metrics[0].scope_metrics
    }
    assert names == {"flowtel.errors": ["b", "c"], "other": ["o"]}


def test_a_failing_producer_does_not_cost_the_other_metrics(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Broken:
        scope = InstrumentationScope("broken")

        def for_reader(self, temporality: AggregationTemporality) -> Any:
            def produce(now_ns: int) -> list[Metric]:
                raise RuntimeError("boom")

            return produce

    reader = InMemoryMetricReader()
    mp = MeterProvider(metric_readers=[reader])
    assert _metric_producer.register(reader, Broken(), Resource.get_empty())
    counter = mp.get_meter("m").create_counter("kept")
    counter.add(2)
    with caplog.at_level(logging.ERROR, logger="flowtel.errors._producer"):
        for _ in range(3):
            data = reader.get_metrics_data()
            assert data is not None
            names = [
                m.name
                for sm in data.resource_metrics[0].scope_metrics
                for m in sm.metrics
                if not m.name.startswith("otel.sdk.")  # some SDK releases report on themselves
            ]
            assert names == ["kept"]
    assert len([r for r in caplog.records if "pre-aggregated" in r.getMessage()]) == 1


def test_not_a_reader_is_not_supported() -> None:
    class Bare(MetricReader):
        def _receive_metrics(self, *args: Any, **kwargs: Any) -> None:
            pass

        def shutdown(self, *args: Any, **kwargs: Any) -> None:
            pass

    assert not _metric_producer.supports(Bare())
    assert not _metric_producer.register(Bare(), object(), Resource.get_empty())  # type: ignore[arg-type]
    assert Counter  # the SDK instrument classes used for temporality keys are importable
