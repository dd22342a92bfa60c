"""Bounded error windows: up to 7 days at bounded memory, exact at every length, exemplars."""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Callable

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Status, StatusCode

from flowtel import semconv
from flowtel.errors import ErrorRateProcessor
from flowtel.exceptions import ConfigurationError

from .conftest import FakeClock, Pipeline

WEEK_MINUTES = 7 * 24 * 60


def _provider(processor: ErrorRateProcessor) -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(processor)
    return provider


def _emit(provider: TracerProvider, n: int, failed: int = 0, op: str = "op") -> None:
    tracer = provider.get_tracer("tests")
    for i in range(n):
        span = tracer.start_span(op, attributes={semconv.COMPONENT: "c", semconv.OPERATION: op})
        if i < failed:
            span.set_status(Status(StatusCode.ERROR))
        span.end()


class TestLongWindows:
    def test_week_window_answers_short_and_long_queries_exactly(self) -> None:
        """A 7-day window: one-minute precision for the last hour, coarser beyond."""
        clock = FakeClock(0.0)
        processor = ErrorRateProcessor(window_minutes=WEEK_MINUTES, clock=clock)
        provider = _provider(processor)
        for day in range(7):
            _emit(provider, 100, failed=day)
            clock.advance(24 * 3600)
        clock.advance(-24 * 3600 + 3 * 3600)  # 3 hours after the last batch
        _emit(provider, 10, failed=10)
        last_hour = processor.stats(last_minutes=60)
        assert (last_hour.total, last_hour.errors) == (10, 10)
        assert 3600 <= last_hour.window.total_seconds() <= 3660
        last_day = processor.stats(last_minutes=24 * 60)
        assert (last_day.total, last_day.errors) == (110, 16)
        whole = processor.stats(last_minutes=WEEK_MINUTES)
        assert (whole.total, whole.errors) == (710, 31)
        provider.shutdown()

    def test_memory_stays_bounded_over_a_week_of_traffic(self) -> None:
        """Memory at the cap does not grow with traffic: the second week costs nothing more."""
        clock = FakeClock(0.0)
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            processor = ErrorRateProcessor(window_minutes=WEEK_MINUTES, max_keys=40, clock=clock)
            provider = _provider(processor)
            sizes = []
            for _week in range(2):
                for _hour in range(7 * 24):
                    for key in range(40):
                        _emit(provider, 1, op=f"op{key}")
                    clock.advance(3600)
                processor.stats(last_minutes=WEEK_MINUTES)
                gc.collect()
                sizes.append(tracemalloc.get_traced_memory()[0] - before)
        finally:
            tracemalloc.stop()
        assert sizes[1] <= sizes[0] * 1.05, sizes
        assert sizes[1] < 2_000_000, sizes  # 40 keys x 2 levels x ~230 snapshots
        provider.shutdown()

    @pytest.mark.parametrize("minutes", [WEEK_MINUTES + 1, 0, -5, float("inf")])
    def test_window_bounds_are_validated(self, minutes: float) -> None:
        """Windows beyond 7 days (or not positive) are refused, naming the option."""
        with pytest.raises(ConfigurationError) as err:
            ErrorRateProcessor(window_minutes=minutes)
        assert err.value.option == "error_window_minutes"


class TestExemplars:
    def test_duration_points_carry_exemplars_of_sampled_spans(
        self, make_pipeline: Callable[..., Pipeline]
    ) -> None:
        """Like the SDK's histogram: the latest sampled measurement per bucket, with its
        trace and span ids; unsampled spans give none; a collection hands each out once."""
        pipeline = make_pipeline(sample_rate=1.0)
        tracer = pipeline.tracer_provider.get_tracer("tests")
        spans = []
        for _ in range(3):
            with tracer.start_as_current_span("work") as span:
                spans.append(span.get_span_context())
        data = pipeline.metrics.get_metrics_data()
        points = [
            p
            for rm in data.resource_metrics
            for sm in rm.scope_metrics
            for m in sm.metrics
            if m.name == semconv.METRIC_OPERATION_DURATION
            for p in m.data.data_points
        ]
        exemplars = [e for p in points for e in p.exemplars]
        assert len(exemplars) == 1  # three fast spans share the first bucket: the latest stays
        assert (exemplars[0].trace_id, exemplars[0].span_id) == (
            spans[-1].trace_id,
            spans[-1].span_id,
        )
        data = pipeline.metrics.get_metrics_data()
        again = [
            e
            for rm in data.resource_metrics
            for sm in rm.scope_metrics
            for m in sm.metrics
            if m.name == semconv.METRIC_OPERATION_DURATION
            for p in m.data.data_points
            for e in p.exemplars
        ]
        assert again == []

    def test_unsampled_spans_give_no_exemplars(
        self, make_pipeline: Callable[..., Pipeline]
    ) -> None:
        """The trace_based filter: a span nobody exports is never an exemplar."""
        pipeline = make_pipeline(sample_rate=0.0)
        with pipeline.tracer_provider.get_tracer("tests").start_as_current_span("work"):
            pass
        data = pipeline.metrics.get_metrics_data()
        exemplars = [
            e
            for rm in data.resource_metrics
            for sm in rm.scope_metrics
            for m in sm.metrics
            if m.name == semconv.METRIC_OPERATION_DURATION
            for p in m.data.data_points
            for e in p.exemplars
        ]
        assert exemplars == []
