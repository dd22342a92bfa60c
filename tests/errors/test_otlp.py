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


def test_duration_histogram_over_otlp_delta_and_cumulative(
    otlp_grpc: OtlpGrpcReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pre-aggregated duration histogram as the collector decodes it, in both temporalities.

    DELTA (``OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE=delta``): two exports carry the 670
    and then 300 successful calls of ``charge``, each with its interval's min and max; CUMULATIVE
    carries 670, then 970.
    """
    from opentelemetry.proto.metrics.v1 import metrics_pb2

    def durations(service: str) -> list[tuple[int, int, list[int], bool, bool]]:
        return [
            (
                p.metric.histogram.aggregation_temporality,
                p.point.count,
                list(p.point.bucket_counts),
                p.point.HasField("min") and p.point.min <= p.point.max,
                abs(sum(p.point.bucket_counts) - p.point.count) == 0,
            )
            for p in otlp_grpc.metric_points(semconv.METRIC_OPERATION_DURATION)
            if p.resource.get("service.name") == service
            and p.attributes.get(semconv.OPERATION) == "charge"
            and p.attributes.get(semconv.OTEL_STATUS_CODE) == "UNSET"
        ]

    for preference, service in (("delta", "durations-delta"), ("cumulative", "durations-cum")):
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", preference)
        telemetry = flowtel.configure_telemetry(
            service_name=service,
            exporter="otlp",
            otlp_endpoint=otlp_grpc.endpoint,
            otlp_protocol="grpc",
            metric_export_interval_s=60,
            logging=False,
            force=True,
        )
        try:
            for i in range(700):
                with contextlib.suppress(CardDeclinedError):
                    charge(i)
            assert telemetry.force_flush(timeout_s=10)
            for _ in range(300):
                charge(1)  # never fails
            assert telemetry.force_flush(timeout_s=10)
        finally:
            telemetry.shutdown()
        points = durations(service)
        assert points, f"no duration points for {service}"
        for _, _, _, has_min_max, consistent in points:
            assert has_min_max and consistent
        temporality = {t for t, *_ in points}
        counts = [count for _, count, *_ in points if count]
        if preference == "delta":
            assert temporality == {metrics_pb2.AGGREGATION_TEMPORALITY_DELTA}
            assert counts[:2] == [670, 300]
        else:
            assert temporality == {metrics_pb2.AGGREGATION_TEMPORALITY_CUMULATIVE}
            assert counts[:2] == [670, 970]
