"""The entry level: one count per request, job or message, whatever the depth of the failure."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

import flowtel
from flowtel import semconv
from flowtel.errors import get_error_stats

from .conftest import Pipeline, metric_points


class Boom(Exception):
    pass


@flowtel.traced(component="agent", operation="inner")
def inner() -> None:
    raise Boom("deep")


@flowtel.traced(component="agent", operation="middle")
def middle() -> None:
    inner()


@flowtel.traced(component="agent", operation="outer")
def outer() -> None:
    middle()


class TestEntryLevel:
    def test_exception_through_three_functions_is_one_failed_entry(
        self, pipeline: Pipeline
    ) -> None:
        """The worked example of docs/errors.md: one request, three functions, one exception."""
        tracer = pipeline.tracer_provider.get_tracer("tests")
        with tracer.start_as_current_span("GET /ask", kind=SpanKind.SERVER) as server:
            server.set_attribute(semconv.COMPONENT, "http")
            with pytest.raises(Boom):
                outer()
            server.set_attribute(semconv.HTTP_RESPONSE_STATUS_CODE, 500)
            server.set_status(Status(StatusCode.ERROR))
        stats = get_error_stats()
        assert (stats.entries.total, stats.entries.errors, stats.entries.error_rate) == (1, 1, 1.0)
        assert (stats.operations.total, stats.operations.errors) == (4, 4)
        assert dict(stats.entries.by_operation) == {
            ("http", "GET /ask"): flowtel.errors.OperationStats(1, 1, 0, 1.0)
        }

    @pytest.mark.parametrize(
        ("status", "failed"), [(200, 0), (404, 0), (499, 0), (500, 1), (503, 1)]
    )
    def test_http_server_span_fails_on_5xx_only(
        self, pipeline: Pipeline, status: int, failed: int
    ) -> None:
        """A 4xx is the client's error (OTel HTTP semconv), even if a span marked it ERROR."""
        tracer = pipeline.tracer_provider.get_tracer("tests")
        span = tracer.start_span("GET /x", kind=SpanKind.SERVER)
        span.set_attribute(semconv.HTTP_RESPONSE_STATUS_CODE, status)
        if status >= 400:
            span.set_status(Status(StatusCode.ERROR))
        span.end()
        stats = get_error_stats()
        assert (stats.entries.total, stats.entries.errors) == (1, failed)
        assert stats.errors == (1 if status >= 400 else 0)

    def test_server_and_consumer_spans_count_at_any_depth(self, pipeline: Pipeline) -> None:
        """A CONSUMER span inside a worker's root is an entry too; INTERNAL children are not."""
        tracer = pipeline.tracer_provider.get_tracer("tests")
        with tracer.start_as_current_span("poll"):
            for n in range(3):
                with tracer.start_as_current_span("handle", kind=SpanKind.CONSUMER) as msg:
                    with tracer.start_as_current_span("step"):
                        pass
                    if n == 0:
                        msg.set_status(Status(StatusCode.ERROR))
        stats = get_error_stats()
        assert (stats.entries.total, stats.entries.errors) == (4, 1)
        assert stats.total == 7

    def test_remote_parent_makes_a_local_root(self, pipeline: Pipeline) -> None:
        """A span continuing an upstream trace (W3C traceparent) is this process's entry."""
        tracer = pipeline.tracer_provider.get_tracer("tests")
        carrier = {"traceparent": f"00-{'a' * 32}-{'b' * 16}-01"}
        ctx = TraceContextTextMapPropagator().extract(carrier)
        with tracer.start_as_current_span("job", context=ctx), tracer.start_as_current_span("x"):
            pass
        assert get_error_stats().entries.total == 1

    def test_lifecycle_and_record_error_spans_are_not_entries(self, pipeline: Pipeline) -> None:
        """flowtel's startup/shutdown spans keep their own metrics, outside the service's rate."""
        for scope, name in (
            ("flowtel.startup", semconv.SPAN_STARTUP),
            ("flowtel.lifecycle", semconv.SPAN_SHUTDOWN),
        ):
            span = pipeline.tracer_provider.get_tracer(scope).start_span(name)
            span.set_status(Status(StatusCode.ERROR))
            span.end()
        flowtel.record_error(ValueError("handled"))  # no span: a short flowtel.record_error span
        stats = get_error_stats()
        assert (stats.entries.total, stats.entries.errors) == (0, 0)
        assert (stats.total, stats.errors, stats.handled) == (2, 2, 1)

    def test_entry_metric_and_gauge_use_the_entry_level(self, pipeline: Pipeline) -> None:
        """flowtel.entry.calls counts entries; flowtel.error_ratio is the entries' rate."""
        tracer = pipeline.tracer_provider.get_tracer("tests")
        for n in range(4):
            with tracer.start_as_current_span("GET /r", kind=SpanKind.SERVER) as server:
                server.set_attribute(semconv.COMPONENT, "http")
                if n == 0:
                    with pytest.raises(Boom):
                        outer()
                    server.set_status(Status(StatusCode.ERROR))
        calls = metric_points(pipeline.metrics, semconv.METRIC_ENTRY_CALLS)
        by_status = {dict(k)[semconv.OTEL_STATUS_CODE]: v for k, v in calls.items()}
        assert by_status == {"ERROR": 1, "UNSET": 3}
        rates = metric_points(pipeline.metrics, semconv.METRIC_ERROR_RATE)
        http = {dict(k)[semconv.ERROR_RATE_WINDOW]: v for k, v in rates.items()
                if dict(k)[semconv.COMPONENT] == "http"}  # fmt: skip
        assert http == {"1m": 0.25, "5m": 0.25, "15m": 0.25}
        assert trace.get_current_span() is trace.INVALID_SPAN
