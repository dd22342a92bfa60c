"""Resilience metrics and span events reach real OTLP receivers through configure_telemetry()."""

from __future__ import annotations

import pytest

import flowtel
from flowtel import resilience, semconv
from flowtel.resilience import circuit_breaker, retry
from tests.support.otlp_receiver import OtlpGrpcReceiver, OtlpHttpReceiver

Receiver = OtlpGrpcReceiver | OtlpHttpReceiver


@pytest.fixture(params=["grpc", "http/protobuf"])
def receiver(
    request: pytest.FixtureRequest, otlp_grpc: OtlpGrpcReceiver, otlp_http: OtlpHttpReceiver
) -> Receiver:
    return otlp_grpc if request.param == "grpc" else otlp_http


class TestOtlpExport:
    def test_metrics_and_events_arrive(self, receiver: Receiver) -> None:
        """Breaker state, call outcomes, retries and the retry span event reach the receiver."""
        protocol = "grpc" if isinstance(receiver, OtlpGrpcReceiver) else "http/protobuf"
        # Names unique per run: call counts on the global provider are cumulative per process.
        operation, upstream = f"otlp.fetch.{protocol}", f"otlp-upstream-{protocol}"
        telemetry = flowtel.configure_telemetry(
            service_name="resilience-otlp",
            exporter="otlp",
            otlp_endpoint=receiver.endpoint,
            otlp_protocol=protocol,
            batch_schedule_delay_s=0.05,
            metric_export_interval_s=60,
            logging=False,
            force=True,
        )
        try:
            breaker = circuit_breaker(upstream)
            attempts = 0

            @retry(3, name=operation)
            @breaker
            def fetch() -> str:
                nonlocal attempts
                attempts += 1
                if attempts == 1:
                    raise ConnectionError("reset")
                return "ok"

            with resilience.test_mode(), flowtel.span("agent.step"):
                assert fetch() == "ok"
            assert telemetry.force_flush(timeout_s=10)
        finally:
            telemetry.shutdown()

        states = {
            p.attributes[semconv.CIRCUIT_STATE]: p.value
            for p in receiver.wait_for_metric(semconv.METRIC_CIRCUIT_STATE, until=3)
            if p.attributes[semconv.RESILIENCE_NAME] == upstream
        }
        assert states == {"closed": 1, "open": 0, "half_open": 0}
        calls = {
            (
                p.attributes[semconv.RESILIENCE_STRATEGY],
                p.attributes[semconv.RESILIENCE_OUTCOME],
            ): p.value
            for p in receiver.latest_points(semconv.METRIC_RESILIENCE_CALLS)
            if p.attributes[semconv.OPERATION] in {operation, upstream}
        }
        assert calls == {
            ("retry", "success_after_retry"): 1,
            ("circuit_breaker", "failed"): 1,
            ("circuit_breaker", "success"): 1,
        }
        [event] = [
            p
            for p in receiver.latest_points(semconv.METRIC_RESILIENCE_EVENTS)
            if p.attributes[semconv.OPERATION] == operation
        ]
        assert event.attributes[semconv.RESILIENCE_EVENT] == "retry" and event.value == 1
        span = receiver.wait_for_span("agent.step")
        [(name, attrs)] = span.events
        assert name == semconv.EVENT_RESILIENCE_RETRY
        assert attrs[semconv.RESILIENCE_ATTEMPT] == 1
        assert attrs[semconv.ERROR_TYPE] == "ConnectionError"
