"""Exact statistics and RED metrics for a known workload, with and without head sampling."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from datetime import timedelta

import pytest

import flowtel
from flowtel import errors, semconv
from flowtel.errors import OperationStats

from .conftest import BILLING, DECLINED, SEARCH, Pipeline, metric_points, run_workload


def _op(component: str, operation: str, status: str, error_type: str | None = None) -> frozenset:
    attributes = {
        semconv.COMPONENT: component,
        semconv.OPERATION: operation,
        semconv.OTEL_STATUS_CODE: status,
    }
    if error_type is not None:
        attributes[semconv.ERROR_TYPE] = error_type
    return frozenset(attributes.items())


def _err(component: str, operation: str, error_type: str, handled: bool = False) -> frozenset:
    return frozenset(
        {
            semconv.COMPONENT: component,
            semconv.OPERATION: operation,
            semconv.ERROR_TYPE: error_type,
            semconv.ERROR_HANDLED: handled,
        }.items()
    )


EXPECTED_CALLS = {
    _op(*BILLING, "OK"): 670,
    _op(*BILLING, "ERROR", DECLINED): 30,
    _op(*SEARCH, "UNSET"): 280,
    _op(*SEARCH, "ERROR", "TimeoutError"): 20,
}
EXPECTED_ERRORS = {_err(*BILLING, DECLINED): 30, _err(*SEARCH, "TimeoutError"): 20}


def assert_exact_stats() -> None:
    stats = errors.get_error_stats()
    assert (stats.total, stats.errors, stats.handled) == (1000, 50, 0)
    assert stats.error_rate == pytest.approx(0.05)
    assert dict(stats.by_type) == {DECLINED: 30, "TimeoutError": 20}
    assert dict(stats.by_operation) == {
        BILLING: OperationStats(700, 30, 0, 30 / 700),
        SEARCH: OperationStats(300, 20, 0, 20 / 300),
    }


def assert_exact_metrics(pipeline: Pipeline) -> None:
    reader = pipeline.metrics
    assert metric_points(reader, semconv.METRIC_OPERATION_CALLS) == EXPECTED_CALLS
    assert metric_points(reader, semconv.METRIC_OPERATION_DURATION) == EXPECTED_CALLS
    assert metric_points(reader, semconv.METRIC_ERRORS) == EXPECTED_ERRORS
    rates = metric_points(reader, semconv.METRIC_ERROR_RATE)
    for window in ("1m", "5m", "15m"):
        billing = frozenset(
            {semconv.COMPONENT: "billing", semconv.ERROR_RATE_WINDOW: window}.items()
        )
        search = frozenset({semconv.COMPONENT: "search", semconv.ERROR_RATE_WINDOW: window}.items())
        assert rates[billing] == pytest.approx(30 / 700)
        assert rates[search] == pytest.approx(20 / 300)
    assert len(rates) == 6


class TestExactCounts:
    def test_stats_count_every_operation_and_failure(self, pipeline: Pipeline) -> None:
        """1,000 operations with 50 failures of two types come back exactly from get_error_stats."""
        run_workload(pipeline.tracer_provider)
        assert_exact_stats()

    def test_metrics_count_every_operation_and_failure(self, pipeline: Pipeline) -> None:
        """Calls, durations, errors and the error-rate gauge match the workload exactly."""
        run_workload(pipeline.tracer_provider)
        assert_exact_metrics(pipeline)

    def test_filters_select_one_component_or_operation(self, pipeline: Pipeline) -> None:
        """component= and operation= restrict every figure to the matching operations."""
        run_workload(pipeline.tracer_provider)
        search = errors.get_error_stats(component="search")
        assert (search.total, search.errors, dict(search.by_type)) == (
            300,
            20,
            {"TimeoutError": 20},
        )
        charge = errors.get_error_stats(operation="charge")
        assert (charge.total, charge.errors, list(charge.by_operation)) == (700, 30, [BILLING])
        assert errors.get_error_stats(component="billing", operation="query").total == 0

    def test_top_orders_by_errors_then_rate(self, pipeline: Pipeline) -> None:
        """top(n) lists the most failing operations first and leaves out error-free ones."""
        run_workload(pipeline.tracer_provider)
        tracer = pipeline.tracer_provider.get_tracer("quiet")
        tracer.start_span("healthy").end()
        stats = errors.get_error_stats()
        assert [key for key, _ in stats.top(5)] == [BILLING, SEARCH]
        assert [key for key, _ in stats.top(1)] == [BILLING]
        assert ("quiet", "healthy") in stats.by_operation


class TestSampling:
    def test_exact_under_ten_percent_sampling(self, make_pipeline: Callable[..., Pipeline]) -> None:
        """At sample_rate=0.1 stats and RED metrics stay exact while ~10% of spans are exported."""
        pipeline = make_pipeline(sample_rate=0.1)
        run_workload(pipeline.tracer_provider)
        exported = len(pipeline.spans.get_finished_spans())
        assert 50 <= exported <= 150, exported  # binomial(1000, 0.1): mean 100, sd 9.5
        assert_exact_stats()
        assert_exact_metrics(pipeline)

    def test_count_unsampled_off_counts_only_exported(
        self, make_pipeline: Callable[..., Pipeline]
    ) -> None:
        """Without RECORD_ONLY the processor only sees, and counts, the sampled share."""
        pipeline = make_pipeline(sample_rate=0.1, count_unsampled=False)
        run_workload(pipeline.tracer_provider)
        exported = len(pipeline.spans.get_finished_spans())
        assert errors.get_error_stats().total == exported < 1000


class TestErrorStats:
    def test_empty_window_has_zero_rate(self, pipeline: Pipeline) -> None:
        """With no calls the error rate is 0.0 and exceeds() is False."""
        stats = errors.get_error_stats()
        assert (stats.total, stats.errors, stats.error_rate) == (0, 0, 0.0)
        assert not stats.exceeds(rate=0.0, min_calls=0)

    def test_exceeds_needs_min_calls_and_a_higher_rate(self, pipeline: Pipeline) -> None:
        """exceeds() is True only with enough calls and a rate strictly above the threshold."""
        run_workload(pipeline.tracer_provider)
        stats = errors.get_error_stats()
        assert stats.exceeds(rate=0.04, min_calls=20)
        assert not stats.exceeds(rate=0.05, min_calls=20)
        assert not stats.exceeds(rate=0.04, min_calls=1001)

    def test_stats_are_immutable(self, pipeline: Pipeline) -> None:
        """ErrorStats and its mappings cannot be changed by the caller."""
        run_workload(pipeline.tracer_provider)
        stats = errors.get_error_stats()
        with pytest.raises(dataclasses.FrozenInstanceError):
            stats.total = 0  # type: ignore[misc]
        with pytest.raises(TypeError):
            stats.by_type["x"] = 1  # type: ignore[index]
        with pytest.raises(TypeError):
            stats.by_operation[("a", "b")] = OperationStats(1, 0, 0, 0.0)  # type: ignore[index]

    def test_window_reports_time_covered(self, pipeline: Pipeline) -> None:
        """A young processor reports the time since it started, not the requested minutes."""
        run_workload(pipeline.tracer_provider)
        assert timedelta(0) < errors.get_error_stats(last_minutes=15).window < timedelta(minutes=1)


class TestInstall:
    def test_get_error_stats_before_install_is_empty(self) -> None:
        """Before configure_telemetry() get_error_stats() answers with empty stats, not an error."""
        stats = errors.get_error_stats()
        assert (stats.total, stats.window) == (0, timedelta(0))

    def test_disabled_setting_installs_nothing(
        self, make_pipeline: Callable[..., Pipeline]
    ) -> None:
        """error_window_minutes=None leaves the pipeline without an error processor."""
        pipeline = make_pipeline(error_window_minutes=None)
        run_workload(pipeline.tracer_provider)
        assert errors.get_error_stats().total == 0
        assert metric_points(pipeline.metrics, semconv.METRIC_OPERATION_CALLS) == {}

    def test_short_window_drops_longer_gauge_windows(
        self, make_pipeline: Callable[..., Pipeline]
    ) -> None:
        """With error_window_minutes=10 the gauge reports the 1m and 5m windows only."""
        pipeline = make_pipeline(error_window_minutes=10)
        run_workload(pipeline.tracer_provider)
        rates = metric_points(pipeline.metrics, semconv.METRIC_ERROR_RATE)
        assert {dict(attrs)[semconv.ERROR_RATE_WINDOW] for attrs in rates} == {"1m", "5m"}
        assert errors.get_error_stats(last_minutes=60).window < timedelta(minutes=11)


class TestTracedAsync:
    def test_concurrent_async_traced_calls_are_exact(self, pipeline: Pipeline) -> None:
        """200 concurrent async @traced calls, 20 raising, are all counted with their type."""

        @flowtel.traced(component="agent", operation="step")
        async def step(n: int) -> None:
            await asyncio.sleep(0)  # yield so the calls interleave
            if n % 10 == 0:
                raise LookupError(n)

        async def main() -> None:
            results = await asyncio.gather(*(step(n) for n in range(200)), return_exceptions=True)
            assert sum(isinstance(r, LookupError) for r in results) == 20

        asyncio.run(main())
        stats = errors.get_error_stats(component="agent")
        assert (stats.total, stats.errors, dict(stats.by_type)) == (200, 20, {"LookupError": 20})
