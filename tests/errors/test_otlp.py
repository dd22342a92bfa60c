"""Exact RED metrics over the wire: configure_telemetry(sample_rate=0.1) to real OTLP receivers."""

from __future__ import annotations

import contextlib

import pytest

import flowtel
from flowtel import errors, semconv
from tests.support.otlp_receiver import OtlpGrpcReceiver, OtlpHttpReceiver

Receiver = OtlpGrpcReceiver | OtlpHttpReceiver


class CardDeclinedError(Exception):
    pass


@flowtel.traced("charge", component="billing", operation="charge")
def charge(i: int) -> None:
    if i % 70 in (3, 40, 66):  # 30 of 700
        raise CardDeclinedError(f"card {i} declined")


@flowtel.traced("query", component="search")
def query(i: int) -> None:
    if i % 15 == 7:  # 20 of 300
        raise TimeoutError("backend slow")


def run_traced_workload() -> None:
    """1,000 @traced calls, 50 of them raising one of two exception types."""
    for i in range(700):
        with contextlib.suppress(CardDeclinedError):
            charge(i)
    for i in range(300):
        with contextlib.suppress(TimeoutError):
            query(i)


DECLINED = f"{__name__}.CardDeclinedError"


def _latest(receiver: Receiver, name: str) -> dict[tuple[object, ...], float | int]:
    """Newest value per attribute set of metric ``name`` from this test's service."""
    receiver.wait_for_metric(name)
    return {
        tuple(sorted(p.attributes.items())): p.value
        for p in receiver.latest_points(name)
        if p.resource.get("service.name") == "errors-otlp"
    }


@pytest.fixture(params=["grpc", "http/protobuf"])
def receiver(
    request: pytest.FixtureRequest, otlp_grpc: OtlpGrpcReceiver, otlp_http: OtlpHttpReceiver
) -> Receiver:
    return otlp_grpc if request.param == "grpc" else otlp_http


class TestOverOtlp:
    def test_red_metrics_exact_at_ten_percent_sampling(self, receiver: Receiver) -> None:
        """Calls, durations and errors arrive exact while only ~10% of spans are exported."""
        telemetry = flowtel.configure_telemetry(
            service_name="errors-otlp",
            exporter="otlp",
            otlp_endpoint=receiver.endpoint,
            otlp_protocol="grpc" if isinstance(receiver, OtlpGrpcReceiver) else "http/protobuf",
            sample_rate=0.1,
            metric_export_interval_s=60,
            logging=False,
            force=True,
        )
        try:
            run_traced_workload()
            stats = errors.get_error_stats()
            assert telemetry.force_flush(timeout_s=10)
        finally:
            telemetry.shutdown()

        assert (stats.total, stats.errors) == (1000, 50)
        assert dict(stats.by_type) == {DECLINED: 30, "TimeoutError": 20}
        exported = [s for s in receiver.spans() if s.name in ("charge", "query")]
        assert 50 <= len(exported) <= 150, len(exported)  # binomial(1000, 0.1): sd 9.5

        def op(component: str, operation: str, status: str, etype: str | None = None) -> tuple:
            attrs = {
                semconv.COMPONENT: component,
                semconv.OPERATION: operation,
                semconv.OTEL_STATUS_CODE: status,
            }
            if etype:
                attrs[semconv.ERROR_TYPE] = etype
            return tuple(sorted(attrs.items()))

        expected_calls = {
            op("billing", "charge", "UNSET"): 670,
            op("billing", "charge", "ERROR", DECLINED): 30,
            op("search", "query", "UNSET"): 280,
            op("search", "query", "ERROR", "TimeoutError"): 20,
        }
        assert _latest(receiver, semconv.METRIC_OPERATION_CALLS) == expected_calls
        assert _latest(receiver, semconv.METRIC_OPERATION_DURATION) == expected_calls
        errors_by_type = {
            dict(attrs)[semconv.ERROR_TYPE]: n
            for attrs, n in _latest(receiver, semconv.METRIC_ERRORS).items()
        }
        assert errors_by_type == {DECLINED: 30, "TimeoutError": 20}
