"""One Sentry event per exception occurrence, whichever spans (and loggers) saw it."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from opentelemetry import trace

from flowtel import semconv
from tests.sentry.conftest import MakeRig
from tests.support.sentry_server import SentryServer

log = logging.getLogger("tests.sentry.app")


class PaymentDeclinedError(Exception):
    """A domain error raised by the functions under test."""


def charge(amount: int) -> None:
    raise PaymentDeclinedError(f"card declined for {amount}")


def _span_ids(event: dict[str, Any]) -> tuple[str, str]:
    ctx = event["contexts"]["trace"]
    return ctx["trace_id"], ctx["span_id"]


class TestNestedSpans:
    def test_exception_escaping_three_spans_is_one_event_on_the_innermost(
        self, make_rig: MakeRig, sentry_server: SentryServer
    ) -> None:
        """An exception escaping nested spans yields one event, attributed to the innermost."""
        rig = make_rig()
        with pytest.raises(PaymentDeclinedError):  # noqa: SIM117 - nesting is the point
            with rig.tracer.start_as_current_span("checkout"):
                with rig.tracer.start_as_current_span("payment"):
                    with rig.tracer.start_as_current_span("charge"):
                        charge(42)
        rig.flush()

        [event] = sentry_server.wait_for_events(1)
        inner = rig.span("charge")
        assert _span_ids(event) == (
            trace.format_trace_id(inner.context.trace_id),
            trace.format_span_id(inner.context.span_id),
        )
        assert rig.sentry_counts() == {("sent", None): 1, ("dropped", "duplicate"): 2}

    def test_sibling_spans_failing_the_same_way_are_separate_occurrences(
        self, make_rig: MakeRig, sentry_server: SentryServer
    ) -> None:
        """Three attempts raising the same error in sibling spans are three events."""
        rig = make_rig()
        with pytest.raises(PaymentDeclinedError), rig.tracer.start_as_current_span("retrying"):
            for attempt in range(3):
                try:
                    with rig.tracer.start_as_current_span(f"attempt-{attempt}"):
                        charge(7)
                except PaymentDeclinedError:
                    if attempt == 2:
                        raise
        rig.flush()

        events = sentry_server.wait_for_events(3)
        assert len(events) == 3
        assert sorted(e["contexts"]["trace"]["op"] for e in events) == [
            "attempt-0",
            "attempt-1",
            "attempt-2",
        ]

    def test_outer_span_recording_outside_except_block_is_still_a_duplicate(
        self, make_rig: MakeRig, sentry_server: SentryServer
    ) -> None:
        """Without the live exception, type+message+raise site+ancestry dedupe the outer span."""
        rig = make_rig()
        outer = rig.tracer.start_span("worker")
        caught: PaymentDeclinedError | None = None
        with trace.use_span(outer, end_on_exit=False):
            try:
                with rig.tracer.start_as_current_span("job"):
                    charge(9)
            except PaymentDeclinedError as exc:
                caught = exc
        assert caught is not None
        outer.record_exception(caught)  # outside any except block: sys.exc_info() is empty
        outer.end()
        rig.flush()

        [event] = sentry_server.wait_for_events(1)
        assert event["contexts"]["trace"]["op"] == "job"
        assert rig.sentry_counts()[("dropped", "duplicate")] == 1

    def test_record_only_spans_still_reach_sentry(
        self, make_rig: MakeRig, sentry_server: SentryServer
    ) -> None:
        """Errors inside sampled-out (RECORD_ONLY) spans are sent though no span is exported,
        saying so, without a trace id that would open nothing."""
        from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult

        class RecordOnly(Sampler):
            def should_sample(self, *args: Any, **kwargs: Any) -> SamplingResult:
                return SamplingResult(Decision.RECORD_ONLY)

            def get_description(self) -> str:
                return "RecordOnly"

        rig = make_rig(sampler=RecordOnly())
        with pytest.raises(PaymentDeclinedError), rig.tracer.start_as_current_span("unsampled"):
            charge(1)
        rig.flush()

        [event] = sentry_server.wait_for_events(1)
        assert event["transaction"] == "unsampled"
        assert event["tags"]["trace_sampled"] == "false"
        assert "trace" not in event["contexts"] and "trace_id" not in event["tags"]
        assert rig.exporter.get_finished_spans() == ()


class TestLoggerException:
    def test_logged_and_reraised_exception_is_one_span_event(
        self, make_rig: MakeRig, sentry_server: SentryServer
    ) -> None:
        """logger.exception of an exception that then escapes the span adds no second event."""
        rig = make_rig()
        with pytest.raises(PaymentDeclinedError), rig.tracer.start_as_current_span("order"):
            try:
                charge(3)
            except PaymentDeclinedError:
                log.exception("charge failed")
                raise
        rig.flush()

        [event] = sentry_server.wait_for_events(1)
        assert event["exception"]["values"][-1]["mechanism"] == {
            "type": "flowtel",
            "handled": False,
        }
        assert event["contexts"]["trace"]["op"] == "order"

    def test_logged_after_span_reported_is_dropped(
        self, make_rig: MakeRig, sentry_server: SentryServer
    ) -> None:
        """logger.exception after an inner span reported the exception sends nothing more."""
        rig = make_rig()
        with rig.tracer.start_as_current_span("order"):
            try:
                with rig.tracer.start_as_current_span("charge"):
                    charge(4)
            except PaymentDeclinedError:
                log.exception("charge failed")
        rig.flush()

        [event] = sentry_server.wait_for_events(1)
        assert event["contexts"]["trace"]["op"] == "charge"
        assert rig.sentry_counts()[("dropped", "duplicate")] == 1

    def test_logged_and_swallowed_exception_is_one_handled_event_on_its_span(
        self, make_rig: MakeRig, sentry_server: SentryServer
    ) -> None:
        """A swallowed, logged exception is reported once, handled, on the span that logged it."""
        rig = make_rig()
        with rig.tracer.start_as_current_span("order"):
            try:
                charge(5)
            except PaymentDeclinedError:
                log.exception("charge failed, continuing")
        rig.flush()

        [event] = sentry_server.wait_for_events(1)
        order = rig.span("order")
        assert event["contexts"]["trace"]["span_id"] == trace.format_span_id(order.context.span_id)
        assert event["exception"]["values"][-1]["mechanism"] == {
            "type": "logging",
            "handled": True,
        }
        assert event["logentry"]["message"] == "charge failed, continuing"

    def test_logged_outside_any_span_is_sent_by_sentry_logging(
        self, make_rig: MakeRig, sentry_server: SentryServer
    ) -> None:
        """With no span around, sentry-sdk's logging integration still reports the error."""
        make_rig()
        try:
            charge(6)
        except PaymentDeclinedError:
            log.exception("batch failed")
        import sentry_sdk

        sentry_sdk.flush(timeout=5)
        [event] = sentry_server.wait_for_events(1)
        assert event["exception"]["values"][-1]["type"] == "PaymentDeclinedError"

    def test_error_log_without_exception_is_linked_to_the_current_span(
        self, make_rig: MakeRig, sentry_server: SentryServer
    ) -> None:
        """logger.error without an exception stays a Sentry event, carrying the OTel trace ids."""
        rig = make_rig()
        with rig.tracer.start_as_current_span("reconcile"):
            log.error("ledger mismatch for account api_key=ak_live_1234567890")
        rig.flush()

        [event] = sentry_server.wait_for_events(1)
        span = rig.span("reconcile")
        assert event["contexts"]["trace"]["span_id"] == trace.format_span_id(span.context.span_id)
        assert "ak_live_1234567890" not in str(event)


class TestHandledErrors:
    def test_record_error_attribute_marks_event_handled_with_parsed_frames(
        self, make_rig: MakeRig, sentry_server: SentryServer
    ) -> None:
        """A handled exception event (flowtel.error.handled) is handled, with frames parsed."""
        rig = make_rig()
        with rig.tracer.start_as_current_span("sync") as span:
            try:
                charge(8)
            except PaymentDeclinedError as exc:
                caught = exc
            span.record_exception(caught, attributes={semconv.ERROR_HANDLED: True})
        rig.flush()

        [event] = sentry_server.wait_for_events(1)
        [value] = event["exception"]["values"]
        assert value["mechanism"] == {"type": "flowtel", "handled": True}
        assert value["type"] == "PaymentDeclinedError"
        assert value["module"] == __name__
        functions = [f["function"] for f in value["stacktrace"]["frames"]]
        assert functions[-2:] == [
            "test_record_error_attribute_marks_event_handled_with_parsed_frames",
            "charge",
        ]
        assert value["stacktrace"]["frames"][-1]["abs_path"] == __file__

    def test_two_handled_errors_on_one_span_are_two_events(
        self, make_rig: MakeRig, sentry_server: SentryServer
    ) -> None:
        """Two record_error calls on one span are two occurrences, even when they look alike."""
        rig = make_rig()
        with rig.tracer.start_as_current_span("batch") as span:
            for _ in range(2):
                try:
                    charge(10)
                except PaymentDeclinedError as exc:
                    span.record_exception(exc, attributes={semconv.ERROR_HANDLED: True})
        rig.flush()

        assert len(sentry_server.wait_for_events(2)) == 2
