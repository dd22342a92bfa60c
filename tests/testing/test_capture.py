"""TelemetryCapture helpers, used through flowtel's own ``telemetry`` fixture."""

from __future__ import annotations

import logging

import pytest
from opentelemetry import metrics

import flowtel
from flowtel.testing import HistogramValue, TelemetryCapture


def checkout() -> None:
    """A small workload: nested spans, a handled error, a log line and metrics."""
    meter = metrics.get_meter("shop")
    orders = meter.create_counter("orders.placed")
    latency = meter.create_histogram("orders.latency", unit="s")
    with flowtel.span("checkout", order_id="o-1"):
        with flowtel.span("reserve"):
            pass
        with flowtel.span("charge"):
            logging.getLogger("shop").warning("card declined once")
        orders.add(1, {"region": "eu", "channel": "web"})
        orders.add(2, {"region": "eu", "channel": "app"})
        orders.add(5, {"region": "us", "channel": "web"})
        latency.record(0.25, {"region": "eu"})
        latency.record(0.75, {"region": "eu"})


class TestSpans:
    def test_find_span(self, telemetry: TelemetryCapture) -> None:
        """find_span returns the single span with that name and its attributes."""
        checkout()
        span = telemetry.find_span("checkout")
        assert span.attributes is not None and span.attributes["order_id"] == "o-1"
        assert [s.name for s in telemetry.find_spans("charge")] == ["charge"]

    def test_find_span_missing_lists_names(self, telemetry: TelemetryCapture) -> None:
        """A missing span raises LookupError naming the spans that do exist."""
        checkout()
        with pytest.raises(LookupError, match=r"'reserve'"):
            telemetry.find_span("nope")

    def test_span_tree_nested_and_deterministic(self, telemetry: TelemetryCapture) -> None:
        """The tree nests children, renumbers ids and replaces timestamps by ranks."""
        checkout()
        first = telemetry.span_tree(attributes=False)
        telemetry.reset()
        checkout()
        second = telemetry.span_tree(attributes=False)
        assert first == second
        assert first == [
            {
                "name": "checkout",
                "trace_id": "t1",
                "span_id": "s1",
                "kind": "INTERNAL",
                "status": "UNSET",
                "start": 0,
                "end": 5,
                "children": [
                    {
                        "name": "reserve",
                        "trace_id": "t1",
                        "span_id": "s2",
                        "kind": "INTERNAL",
                        "status": "UNSET",
                        "start": 1,
                        "end": 2,
                        "children": [],
                    },
                    {
                        "name": "charge",
                        "trace_id": "t1",
                        "span_id": "s3",
                        "kind": "INTERNAL",
                        "status": "UNSET",
                        "start": 3,
                        "end": 4,
                        "children": [],
                    },
                ],
            }
        ]

    def test_span_tree_attributes_and_events(self, telemetry: TelemetryCapture) -> None:
        """With attributes=True each node carries sorted attributes and its events."""
        with flowtel.span("job", b=2, a=1) as span:
            span.add_event("step", {"n": 1})
        (node,) = telemetry.span_tree()
        assert list(node["attributes"])[:2] == ["a", "b"]
        assert node["events"] == [{"name": "step", "attributes": {"n": 1}}]


class TestMetrics:
    def test_counter_sums_matching_points(self, telemetry: TelemetryCapture) -> None:
        """A counter adds up every point whose attributes include the ones asked for."""
        checkout()
        assert telemetry.metric_value("orders.placed") == 8
        assert telemetry.metric_value("orders.placed", {"region": "eu"}) == 3
        assert telemetry.metric_value("orders.placed", {"region": "us", "channel": "web"}) == 5

    def test_histogram_value(self, telemetry: TelemetryCapture) -> None:
        """A histogram point is reduced to count, sum, min and max."""
        checkout()
        value = telemetry.metric_value("orders.latency", {"region": "eu"})
        assert isinstance(value, HistogramValue)
        assert (value.count, value.sum, value.min, value.max) == (2, 1.0, 0.25, 0.75)

    def test_missing_metric_or_point(self, telemetry: TelemetryCapture) -> None:
        """No matching point raises LookupError showing what was collected."""
        checkout()
        with pytest.raises(LookupError, match=r"orders\.placed"):
            telemetry.metric_value("orders.cancelled")
        with pytest.raises(LookupError, match="region"):
            telemetry.metric_value("orders.placed", {"region": "apac"})

    def test_reads_accumulate_and_reset_starts_from_zero(self, telemetry: TelemetryCapture) -> None:
        """Reading twice gives the same total; after reset() values count from zero."""
        checkout()
        assert telemetry.metric_value("orders.placed") == 8
        assert telemetry.metric_value("orders.placed") == 8
        checkout()
        latency = telemetry.metric_value("orders.latency", {"region": "eu"})
        assert telemetry.metric_value("orders.placed") == 16
        assert isinstance(latency, HistogramValue) and latency.count == 4
        assert sum(latency.bucket_counts) == 4
        telemetry.reset()
        with pytest.raises(LookupError):
            telemetry.metric_value("orders.placed")
        checkout()
        assert telemetry.metric_value("orders.placed", {"region": "us"}) == 5

    def test_flushes_in_between_lose_nothing(self, telemetry: TelemetryCapture) -> None:
        """Flushing the pipeline (which collects metrics) before reading keeps every value."""
        checkout()
        assert telemetry.spans
        assert telemetry.telemetry is not None and telemetry.telemetry.force_flush()
        assert telemetry.metric_value("orders.placed") == 8

    def test_gauge_must_be_specific(self, telemetry: TelemetryCapture) -> None:
        """Several matching gauge points are ambiguous and raise LookupError."""
        gauge = metrics.get_meter("shop").create_gauge("queue.depth")
        gauge.set(3, {"queue": "a"})
        gauge.set(4, {"queue": "b"})
        assert telemetry.metric_value("queue.depth", {"queue": "b"}) == 4
        with pytest.raises(LookupError, match="be specific"):
            telemetry.metric_value("queue.depth")


class TestLogs:
    def test_logs_captured_with_trace_context(self, telemetry: TelemetryCapture) -> None:
        """Log records are captured, correlated with the span they were logged in."""
        checkout()
        (record,) = telemetry.logs
        assert record.log_record.body == "card declined once"
        assert record.log_record.span_id == telemetry.find_span("charge").context.span_id
        assert telemetry.log_messages(min_severity=13) == ["card declined once"]
        assert telemetry.log_messages(min_severity=17) == []

    @pytest.mark.flowtel(log_level="ERROR")
    def test_marker_passes_options(self, telemetry: TelemetryCapture) -> None:
        """@pytest.mark.flowtel(...) options reach configure_telemetry()."""
        checkout()
        assert telemetry.logs == []
        assert telemetry.telemetry is not None
        assert telemetry.telemetry.settings.log_level == logging.ERROR

    def test_reset_forgets_everything(self, telemetry: TelemetryCapture) -> None:
        """reset() empties spans, logs and metric values."""
        checkout()
        telemetry.reset()
        assert telemetry.spans == [] and telemetry.logs == []


class TestWithoutPytest:
    def test_context_manager(self) -> None:
        """TelemetryCapture.configure() works as a context manager and shuts down on exit."""
        with TelemetryCapture.configure(service_name="plain") as capture:
            with flowtel.span("work"):
                pass
            span = capture.find_span("work")
            assert span.resource.attributes["service.name"] == "plain"
        assert capture.telemetry is None


class TestErrorStats:
    def test_error_stats_of_a_fresh_capture(self) -> None:
        """error_stats() returns flowtel.errors.get_error_stats() for the configured pipeline."""
        with TelemetryCapture.configure(service_name="errs") as capture:

            @flowtel.traced("charge", component="billing")
            def charge() -> None:
                raise ValueError("declined")

            for _ in range(3):
                with pytest.raises(ValueError):
                    charge()
            with flowtel.span("ok", component="billing"):
                pass
            stats = capture.error_stats(component="billing")
            assert (stats.total, stats.errors) == (4, 3)
            assert stats.by_type == {"ValueError": 3}
