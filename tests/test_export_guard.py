"""ExportGuard and the bounded batch processors: deadlines hold and every lost item is counted."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from flowtel import semconv
from flowtel._batch_processor import (
    BoundedBatchLogRecordProcessor,
    BoundedBatchSpanProcessor,
    queued,
)
from flowtel._export_guard import ExportGuard, GuardedSpanExporter, LossReason, TelemetrySignal
from flowtel.exceptions import ConfigurationError
from tests.support.otlp_receiver import BlackHoleServer, OtlpGrpcReceiver

TRACES = TelemetrySignal.TRACES


class _GateExporter(SpanExporter):
    """A real exporter that blocks each export until the test opens the gate (a stuck sink)."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.exported = 0

    def export(self, spans: object) -> SpanExportResult:
        self.gate.wait(30)
        self.exported += len(spans)  # type: ignore[arg-type]
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self.gate.set()


def _provider(processor: BoundedBatchSpanProcessor) -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({"service.name": "guard-test"}))
    provider.add_span_processor(processor)
    return provider


def _end_spans(provider: TracerProvider, count: int, name: str = "s") -> None:
    tracer = provider.get_tracer("t")
    for _ in range(count):
        tracer.start_span(name).end()


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
        provider = _provider(processor)
        _end_spans(provider, 300)
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

    def test_force_flush_returns_false_at_its_timeout(self) -> None:
        """force_flush on a stuck exporter returns False after its timeout, spans stay queued."""
        sink = _GateExporter()
        guard = ExportGuard(shutdown_timeout_s=0.5)
        processor = BoundedBatchSpanProcessor(sink, guard, schedule_delay_s=60)
        provider = _provider(processor)
        _end_spans(provider, 10)
        started = time.monotonic()
        assert processor.force_flush(timeout_millis=200) is False
        assert time.monotonic() - started < 1.0
        sink.gate.set()
        assert processor.force_flush(timeout_millis=5_000) is True
        assert sink.exported == 10
        assert guard.dropped() == 0
        provider.shutdown()

    def test_stuck_export_is_abandoned_and_later_batches_dropped(self) -> None:
        """An export overrunning export_timeout_s is abandoned; later batches are counted lost."""
        sink = _GateExporter()
        guard = ExportGuard(export_timeout_s=0.1, shutdown_timeout_s=0.3)
        exporter = GuardedSpanExporter(sink, guard)
        spans = _finished_spans(3)
        assert exporter.export(spans) is SpanExportResult.FAILURE
        assert exporter.export(spans) is SpanExportResult.FAILURE
        assert guard.dropped(TRACES, LossReason.EXPORT_TIMEOUT) == 6
        assert guard.failures(TRACES, LossReason.EXPORT_TIMEOUT) == 2
        started = time.monotonic()
        exporter.shutdown()
        assert time.monotonic() - started < 0.5

    def test_exporter_exception_is_contained_and_counted(self) -> None:
        """An exporter that raises never breaks the worker; its spans count as export_failed."""

        class Raising(SpanExporter):
            def export(self, spans: object) -> SpanExportResult:
                raise RuntimeError("collector exploded")

        guard = ExportGuard(shutdown_timeout_s=1.0)
        processor = BoundedBatchSpanProcessor(Raising(), guard, schedule_delay_s=60)
        provider = _provider(processor)
        _end_spans(provider, 7)
        assert processor.force_flush(2_000) is True
        _end_spans(provider, 3)
        assert processor.force_flush(2_000) is True
        assert guard.dropped(TRACES, LossReason.EXPORT_FAILED) == 10
        assert guard.failures(TRACES, LossReason.EXPORT_FAILED) == 2
        provider.shutdown()


def _finished_spans(count: int) -> list[ReadableSpan]:
    provider = TracerProvider()
    tracer = provider.get_tracer("t")
    spans = []
    for _ in range(count):
        span = tracer.start_span("x")
        span.end()
        spans.append(span)
    return spans  # type: ignore[return-value]


class TestQueueAccounting:
    """Every ended span is exported or counted as dropped, exactly."""

    def test_overflow_is_counted_exactly(self) -> None:
        """With the exporter stuck, spans beyond max_queue_size are counted as queue_full."""
        sink = _GateExporter()
        guard = ExportGuard(shutdown_timeout_s=5.0)
        processor = BoundedBatchSpanProcessor(
            sink, guard, max_queue_size=100, max_export_batch_size=10, schedule_delay_s=60
        )
        provider = _provider(processor)
        _end_spans(provider, 10)  # reaches the batch size: the worker takes them and blocks
        deadline = time.monotonic() + 5
        while queued(processor) and time.monotonic() < deadline:
            threading.Event().wait(0.001)  # poll the worker hand-off with a deadline
        _end_spans(provider, 150)
        assert guard.dropped(TRACES, LossReason.QUEUE_FULL) == 50
        sink.gate.set()
        provider.shutdown()
        assert sink.exported + guard.dropped(TRACES) == 160
        assert sink.exported == 110

    def test_unsampled_spans_are_ignored(self) -> None:
        """Spans that are not sampled are neither exported nor counted as lost."""
        from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

        sink = InMemorySpanExporter()
        guard = ExportGuard()
        processor = BoundedBatchSpanProcessor(sink, guard)
        provider = TracerProvider(sampler=ALWAYS_OFF)
        provider.add_span_processor(processor)
        _end_spans(provider, 5)
        assert processor.force_flush(1_000)
        assert sink.get_finished_spans() == ()
        assert guard.dropped() == 0
        provider.shutdown()

    def test_round_trip_to_real_receiver(self, otlp_grpc: OtlpGrpcReceiver) -> None:
        """Through a healthy collector every span arrives and nothing is counted lost."""
        guard = ExportGuard()
        exporter = OTLPSpanExporter(endpoint=otlp_grpc.endpoint, insecure=True)
        processor = BoundedBatchSpanProcessor(exporter, guard, max_export_batch_size=64)
        provider = _provider(processor)
        _end_spans(provider, 500, "ok")
        assert processor.force_flush(10_000)
        assert len(otlp_grpc.wait_for_spans(500)) == 500
        assert guard.dropped() == 0 and guard.failures() == 0
        provider.shutdown()

    @pytest.mark.parametrize(
        ("option", "kwargs"),
        [
            ("max_queue_size", {"max_queue_size": 0}),
            ("max_export_batch_size", {"max_queue_size": 10, "max_export_batch_size": 11}),
            ("schedule_delay_s", {"schedule_delay_s": 0}),
        ],
    )
    def test_bad_settings_raise_configuration_error(
        self, option: str, kwargs: dict[str, float]
    ) -> None:
        """Invalid queue settings fail fast naming the option."""
        with pytest.raises(ConfigurationError, match=option):
            BoundedBatchSpanProcessor(InMemorySpanExporter(), ExportGuard(), **kwargs)  # type: ignore[arg-type]


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
        assert "999 similar suppressed" in messages[1]
        assert guard.dropped(TRACES) == 1_001


class TestLogProcessor:
    """The log record processor has the same bounded, counted behaviour."""

    def test_records_are_exported_in_order(self) -> None:
        """Records reach the exporter in emission order and nothing is counted lost."""
        sink = InMemoryLogRecordExporter()
        guard = ExportGuard()
        processor = BoundedBatchLogRecordProcessor(
            sink, guard, max_queue_size=5, max_export_batch_size=5, schedule_delay_s=60
        )
        provider = LoggerProvider()
        provider.add_log_record_processor(processor)
        logger = provider.get_logger("t")
        for i in range(4):
            logger.emit(body=f"r{i}")
        assert processor.force_flush(2_000)
        assert [r.log_record.body for r in sink.get_finished_logs()] == ["r0", "r1", "r2", "r3"]
        provider.shutdown()
        assert guard.dropped() == 0
