"""The collector misbehaves; the host app keeps its results and latency, shutdown its budget.

Each case runs a traced host-app handler 200 times, then shuts telemetry down, and asserts:
the handler's results, no exception, a per-call latency bound, a shutdown bound, and the exact
account ``received + counted lost == 200``.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

from flowtel._export._batch import BoundedBatchLogRecordProcessor
from flowtel._export._guard import ExportGuard, LossReason, TelemetrySignal
from flowtel._export._guarded import GuardedMetricExporter
from tests.faults.conftest import Pipeline, span_exporter
from tests.support.otlp_receiver import (
    BlackHoleServer,
    OtlpGrpcReceiver,
    OtlpHttpReceiver,
    OtlpReceiver,
    ResettingServer,
)

CALLS = 200
CALL_BOUND_S = 0.5
"""A traced call never waits on the network (the OTLP timeout is 10 s, its first retry 1 s);
the bound is generous because a loaded CI machine can pause any thread for tens of ms."""
SHUTDOWN_SLACK_S = 0.3
TRACES = TelemetrySignal.TRACES

PROTOCOLS = ["grpc", "http"]


def _run_app(pipeline: Pipeline) -> None:
    results = [pipeline.handle(i) for i in range(CALLS)]
    assert results == [i * 2 for i in range(CALLS)]
    assert max(pipeline.call_latencies_s) < CALL_BOUND_S


def _receiver(protocol: str, grpc: OtlpGrpcReceiver, http: OtlpHttpReceiver) -> OtlpReceiver:
    return grpc if protocol == "grpc" else http


@pytest.mark.parametrize("protocol", PROTOCOLS)
class TestUnreachableCollector:
    """Refused, black-holed and resetting collectors: bounded shutdown, every span counted."""

    def test_refused(
        self, protocol: str, refused: str, make_pipeline: Callable[..., Pipeline]
    ) -> None:
        """Connection refused: results intact, shutdown within 1 s, 200 spans counted lost."""
        pipeline = make_pipeline(span_exporter(protocol, refused))
        _run_app(pipeline)
        assert pipeline.shutdown_s() < 1.0 + SHUTDOWN_SLACK_S
        assert pipeline.guard.dropped(TRACES) == CALLS

    def test_black_holed(
        self,
        protocol: str,
        black_hole: BlackHoleServer,
        make_pipeline: Callable[..., Pipeline],
    ) -> None:
        """TCP accepted, never answered: shutdown within 1 s instead of the 10 s OTLP timeout."""
        pipeline = make_pipeline(span_exporter(protocol, black_hole.endpoint))
        _run_app(pipeline)
        assert pipeline.shutdown_s() < 1.0 + SHUTDOWN_SLACK_S
        assert pipeline.guard.dropped(TRACES) == CALLS
        assert pipeline.guard.dropped(TRACES, LossReason.SHUTDOWN_TIMEOUT) == CALLS

    def test_resets_mid_export(
        self,
        protocol: str,
        resetting_server: ResettingServer,
        make_pipeline: Callable[..., Pipeline],
    ) -> None:
        """The collector reads the request then resets: results intact, every span counted."""
        pipeline = make_pipeline(span_exporter(protocol, resetting_server.endpoint))
        _run_app(pipeline)
        assert pipeline.shutdown_s() < 1.0 + SHUTDOWN_SLACK_S
        assert pipeline.guard.dropped(TRACES) == CALLS
        assert resetting_server.connections >= 1


@pytest.mark.parametrize("protocol", PROTOCOLS)
class TestDegradedCollector:
    """Slow and temporarily unavailable collectors: nothing lost, shutdown still bounded."""

    def test_slow_collector_loses_nothing(
        self,
        protocol: str,
        otlp_grpc: OtlpGrpcReceiver,
        otlp_http: OtlpHttpReceiver,
        make_pipeline: Callable[..., Pipeline],
    ) -> None:
        """A 0.2 s-per-request collector delays export, never the app; all 200 spans arrive."""
        receiver = _receiver(protocol, otlp_grpc, otlp_http)
        receiver.delay_s = 0.2
        pipeline = make_pipeline(span_exporter(protocol, receiver.endpoint), shutdown_timeout_s=5.0)
        _run_app(pipeline)
        assert pipeline.shutdown_s() < 5.0 + SHUTDOWN_SLACK_S
        assert len(receiver.spans()) == CALLS
        assert pipeline.guard.dropped() == 0

    def test_unavailable_then_recovers(
        self,
        protocol: str,
        otlp_grpc: OtlpGrpcReceiver,
        otlp_http: OtlpHttpReceiver,
        make_pipeline: Callable[..., Pipeline],
    ) -> None:
        """Three UNAVAILABLE/503 answers, then recovery: every span arrives after it."""
        receiver = _receiver(protocol, otlp_grpc, otlp_http)
        receiver.unavailable(times=3)
        pipeline = make_pipeline(span_exporter(protocol, receiver.endpoint), shutdown_timeout_s=5.0)
        _run_app(pipeline)
        assert pipeline.processor.force_flush(10_000)
        spans = receiver.wait_for_spans(CALLS)
        assert sorted(s.attributes["request.n"] for s in spans) == list(range(CALLS))
        assert receiver.rejected() == 3
        assert pipeline.guard.dropped() == 0
        assert pipeline.shutdown_s() < 5.0 + SHUTDOWN_SLACK_S


class TestHttpErrorStatus:
    """OTLP/HTTP answering a permanent error: the batch is counted as failed and lost, once."""

    @pytest.mark.parametrize("status", [400, 413])
    def test_error_status(
        self, status: int, otlp_http: OtlpHttpReceiver, make_pipeline: Callable[..., Pipeline]
    ) -> None:
        """Every span is counted as export_failed; failures count batches, not spans."""
        otlp_http.fail_with(status)
        pipeline = make_pipeline(
            span_exporter("http", otlp_http.endpoint),
            max_export_batch_size=50,
            schedule_delay_s=60,
        )
        _run_app(pipeline)
        assert pipeline.processor.force_flush(5_000)
        assert pipeline.shutdown_s() < 1.0 + SHUTDOWN_SLACK_S
        assert otlp_http.spans() == []
        assert pipeline.guard.dropped(TRACES, LossReason.EXPORT_FAILED) == CALLS
        assert pipeline.guard.failures(TRACES, LossReason.EXPORT_FAILED) == CALLS // 50

    def test_status_500_is_lost_and_counted_within_the_budget(
        self, otlp_http: OtlpHttpReceiver, make_pipeline: Callable[..., Pipeline]
    ) -> None:
        """500 is permanent by the OTLP spec; SDKs before 1.44 retry it until the export timeout.
        Either way every span is counted lost, and shutdown keeps its budget."""
        otlp_http.fail_with(500)
        pipeline = make_pipeline(
            span_exporter("http", otlp_http.endpoint),
            max_export_batch_size=50,
            schedule_delay_s=60,
            shutdown_timeout_s=2.0,
        )
        _run_app(pipeline)
        pipeline.processor.force_flush(1_000)
        assert pipeline.shutdown_s() < 2.0 + SHUTDOWN_SLACK_S
        assert otlp_http.spans() == []
        assert pipeline.guard.dropped() == CALLS


class TestOtherSignals:
    """Metrics and logs get the same bounded shutdown against a black-holed collector."""

    def test_metrics_shutdown_bounded(self, black_hole: BlackHoleServer) -> None:
        """MeterProvider.shutdown finishes within the budget; the lost points are counted."""
        guard = ExportGuard(shutdown_timeout_s=1.0)
        exporter = GuardedMetricExporter(
            OTLPMetricExporter(endpoint=black_hole.endpoint, insecure=True, timeout=10), guard
        )
        reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
        provider = MeterProvider(metric_readers=[reader])
        counter = provider.get_meter("app").create_counter("app.calls")
        for i in range(10):
            counter.add(1, {"route": f"/r{i}"})

        started = time.monotonic()
        remaining_s = guard.begin_shutdown()
        provider.shutdown(timeout_millis=remaining_s * 1000)
        assert time.monotonic() - started < 1.0 + SHUTDOWN_SLACK_S
        assert guard.dropped(TelemetrySignal.METRICS) == 10

    def test_logs_shutdown_bounded(self, black_hole: BlackHoleServer) -> None:
        """LoggerProvider.shutdown finishes within the budget; every record is counted lost."""

        guard = ExportGuard(shutdown_timeout_s=1.0)
        exporter = OTLPLogExporter(endpoint=black_hole.endpoint, insecure=True, timeout=10)
        provider = LoggerProvider()
        provider.add_log_record_processor(
            BoundedBatchLogRecordProcessor(exporter, guard, schedule_delay_s=0.05)
        )
        logger = provider.get_logger("app")
        for i in range(50):
            logger.emit(body=f"line {i}")
        started = time.monotonic()
        provider.shutdown()
        assert time.monotonic() - started < 1.0 + SHUTDOWN_SLACK_S
        assert guard.dropped(TelemetrySignal.LOGS) == 50
