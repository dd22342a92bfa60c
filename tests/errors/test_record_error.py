"""record_error(): handled errors as exception events, statistics and metrics."""

from __future__ import annotations

from flowtel import errors, semconv

from .conftest import Pipeline, metric_points


class Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("str() failed")


def _handled_errors(pipeline: Pipeline) -> dict[tuple[str, str, str], int]:
    points = metric_points(pipeline.metrics, semconv.METRIC_ERRORS)
    out = {}
    for attrs, value in points.items():
        a = dict(attrs)
        if a[semconv.ERROR_HANDLED]:
            out[(a[semconv.COMPONENT], a[semconv.OPERATION], a[semconv.ERROR_TYPE])] = value
    return out


class TestOnCurrentSpan:
    def test_event_lands_on_the_current_span(self, pipeline: Pipeline) -> None:
        """The exception event is added to the current span and marked handled."""
        tracer = pipeline.tracer_provider.get_tracer("app")
        attributes = {semconv.COMPONENT: "billing", semconv.OPERATION: "refund"}
        with tracer.start_as_current_span("refund", attributes=attributes):
            try:
                raise ValueError("refund failed")
            except ValueError as exc:
                errors.record_error(exc, order_id=7)
        (span,) = pipeline.spans.get_finished_spans()
        (event,) = span.events
        assert event.name == semconv.EVENT_EXCEPTION
        assert event.attributes is not None
        assert event.attributes[semconv.ERROR_HANDLED] is True
        assert event.attributes[semconv.EXCEPTION_TYPE] == "ValueError"
        assert event.attributes[semconv.EXCEPTION_MESSAGE] == "refund failed"
        assert "raise ValueError" in str(event.attributes[semconv.EXCEPTION_STACKTRACE])
        assert event.attributes["order_id"] == 7
        assert span.status.status_code.name == "UNSET"

    def test_counted_as_handled_for_the_span_operation(self, pipeline: Pipeline) -> None:
        """Stats and the errors metric count it as handled, under the current span's operation."""
        tracer = pipeline.tracer_provider.get_tracer("app")
        attributes = {semconv.COMPONENT: "billing", semconv.OPERATION: "refund"}
        with tracer.start_as_current_span("refund", attributes=attributes):
            errors.record_error(KeyError("k"))
            errors.record_error(KeyError("k"), operation="cleanup")
        stats = errors.get_error_stats()
        assert (stats.total, stats.errors, stats.handled) == (1, 0, 2)
        assert stats.by_operation[("billing", "refund")].handled == 1
        assert stats.by_operation[("billing", "cleanup")].handled == 1
        assert _handled_errors(pipeline) == {
            ("billing", "refund", "KeyError"): 1,
            ("billing", "cleanup", "KeyError"): 1,
        }

    def test_secrets_are_scrubbed(self, pipeline: Pipeline) -> None:
        """Secret-named attributes and secrets in the message never reach the exported event."""
        tracer = pipeline.tracer_provider.get_tracer("app")
        with tracer.start_as_current_span("login"):
            errors.record_error(
                PermissionError("bad header Authorization: Bearer abcdef123456789"),
                password="hunter2",
                user="ann",
            )
        (span,) = pipeline.spans.get_finished_spans()
        attributes = dict(span.events[0].attributes or {})
        assert attributes["password"] == "[REDACTED]"
        assert attributes["user"] == "ann"
        assert "abcdef123456789" not in str(attributes)


class TestWithoutCurrentSpan:
    def test_short_span_carries_the_event(self, pipeline: Pipeline) -> None:
        """With no current span a short flowtel.record_error span is exported with the event."""
        errors.record_error(TimeoutError("slow"), component="jobs", operation="sync")
        (span,) = pipeline.spans.get_finished_spans()
        assert span.name == semconv.SPAN_RECORD_ERROR
        assert span.attributes is not None
        assert span.attributes[semconv.COMPONENT] == "jobs"
        assert span.attributes[semconv.ERROR_TYPE] == "TimeoutError"
        assert span.events[0].attributes is not None
        assert span.events[0].attributes[semconv.ERROR_HANDLED] is True

    def test_short_span_is_not_an_operation(self, pipeline: Pipeline) -> None:
        """The short span counts one handled error, not a call."""
        errors.record_error(TimeoutError("slow"), component="jobs", operation="sync")
        stats = errors.get_error_stats()
        assert (stats.total, stats.handled) == (0, 1)
        assert _handled_errors(pipeline) == {("jobs", "sync", "TimeoutError"): 1}
        assert metric_points(pipeline.metrics, semconv.METRIC_OPERATION_CALLS) == {}


class TestNeverRaises:
    def test_unprintable_exception_is_recorded(self, pipeline: Pipeline) -> None:
        """An exception whose str() fails is still recorded and counted, with a placeholder."""
        tracer = pipeline.tracer_provider.get_tracer("app")
        with tracer.start_as_current_span("job"):
            errors.record_error(Unprintable(), weird=object())
        (span,) = pipeline.spans.get_finished_spans()
        attributes = dict(span.events[0].attributes or {})
        assert attributes[semconv.EXCEPTION_MESSAGE] == "<Unprintable: str() failed>"
        assert str(attributes["weird"]).startswith("<object object at")
        assert errors.get_error_stats().handled == 1

    def test_works_before_install(self) -> None:
        """Without an installed processor record_error() still returns normally."""
        errors.record_error(ValueError("early"), component="boot", weird=object())
        assert errors.get_error_stats().handled == 0
