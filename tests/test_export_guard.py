"""ExportGuard: deadlines hold, every lost item is counted, failures are logged rate-limited."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from flowtel import semconv
from flowtel._export._batch import (
    BoundedBatchSpanProcessor,
)
from flowtel._export._guard import ExportGuard, LossReason, TelemetrySignal
from tests.support.otlp_receiver import BlackHoleServer
from tests.support.sinks import end_spans, provider_with

TRACES = TelemetrySignal.TRACES


@pytest.fixture
def black_hole_exporter(black_hole: BlackHoleServer) -> Iterator[OTLPSpanExporter]:
    exporter = OTLPSpanExporter(endpoint=black_hole.endpoint, insecure=True, timeout=30)
    yield exporter


class TestBoundedShutdown:
    """Shutdown and flush never wait past their budget, whatever the exporter does."""

    def test_shutdown_with_black_holed_collector_is_bounded(
        self, black_hole_exporter: OTLPSpanExporter
    ) -> None:
        """A black-holed collector costs at most the 0.5 s budget and all 300 spans are counted."""
        guard = ExportGuard(shutdown_timeout_s=0.5)
        processor = BoundedBatchSpanProcessor(black_hole_exporter, guard, schedule_delay_s=0.01)
        provider = provider_with(processor)
        end_spans(provider, 300)
        started = time.monotonic()
        provider.shutdown()
        elapsed = time.monotonic() - started
        assert elapsed < 0.5 + 0.3
        assert guard.dropped(TRACES) == 300
        assert guard.dropped(TRACES, LossReason.QUEUE_FULL) == 0

    def test_explicit_budget_wins_over_default(self) -> None:
        """begin_shutdown(timeout_s) sets the deadline; later default calls keep it."""
        guard = ExportGuard(shutdown_timeout_s=30.0)
        assert not guard.closing
        assert guard.begin_shutdown(0.2) <= 0.2
        assert guard.begin_shutdown() <= 0.2
        assert guard.closing
        assert guard.remaining_s() < 0.2


class TestLossVisibility:
    """Losses show up as flowtel metrics and as rate-limited warnings."""

    def test_counts_are_reported_as_metrics(self) -> None:
        """flowtel.telemetry.dropped / .export.failures carry signal and reason attributes."""
        reader = InMemoryMetricReader()
        meter_provider = MeterProvider(metric_readers=[reader])
        guard = ExportGuard()
        guard.instrument(meter_provider.get_meter("flowtel"))
        guard.record_drop(TRACES, LossReason.QUEUE_FULL, 5)
        guard.record_drop(TelemetrySignal.LOGS, LossReason.EXPORT_FAILED, 2)
        guard.record_failure(TelemetrySignal.LOGS, LossReason.EXPORT_FAILED)
        data = reader.get_metrics_data()
        assert data is not None
        values = {
            (
                m.name,
                p.attributes[semconv.TELEMETRY_SIGNAL],
                p.attributes[semconv.TELEMETRY_REASON],
            ): p.value  # type: ignore[index, union-attr]
            for rm in data.resource_metrics
            for sm in rm.scope_metrics
            for m in sm.metrics
            for p in m.data.data_points
        }
        assert values == {
            (semconv.METRIC_TELEMETRY_DROPPED, "traces", "queue_full"): 5,
            (semconv.METRIC_TELEMETRY_DROPPED, "logs", "export_failed"): 2,
            (semconv.METRIC_TELEMETRY_EXPORT_FAILURES, "logs", "export_failed"): 1,
        }
        meter_provider.shutdown()

    def test_warnings_are_rate_limited(self, caplog: pytest.LogCaptureFixture) -> None:
        """1,000 drops log one warning per interval, then one that reports the suppressed count."""
        now = [0.0]
        guard = ExportGuard(log_interval_s=60, log_clock=lambda: now[0])
        with caplog.at_level(logging.WARNING, logger="flowtel.export"):
            for _ in range(1_000):
                guard.record_drop(TRACES, LossReason.QUEUE_FULL, 1)
            now[0] = 61.0
            guard.record_drop(TRACES, LossReason.QUEUE_FULL, 1)
        messages = [r.getMessage() for r in caplog.records if r.name == "flowtel.export"]
        assert len(messages) == 2
        assert "queue_full" in messages[0]
        assert "+999 similar in the last 60s" in messages[1]
        assert guard.dropped(TRACES) == 1_001
