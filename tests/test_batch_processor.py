"""Bounded batch processors: exact loss accounting, bounded flush, contained exporter errors."""

from __future__ import annotations

import threading
import time

import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

from flowtel._export._batch import (
    BoundedBatchLogRecordProcessor,
    BoundedBatchSpanProcessor,
    queued,
)
from flowtel._export._guard import ExportGuard, LossReason, TelemetrySignal
from flowtel.exceptions import ConfigurationError
from tests.support.otlp_receiver import OtlpGrpcReceiver
from tests.support.sinks import GateExporter, end_spans, provider_with

TRACES = TelemetrySignal.TRACES


class TestBoundedWaits:
    """Flush waits at most its timeout; a failing exporter never stops the worker."""

    def test_force_flush_returns_false_at_its_timeout(self) -> None:
        """force_flush on a stuck exporter returns False after its timeout, spans stay queued."""
        sink = GateExporter()
        guard = ExportGuard(shutdown_timeout_s=0.5)
        processor = BoundedBatchSpanProcessor(sink, guard, schedule_delay_s=60)
        provider = provider_with(processor)
        end_spans(provider, 10)
        started = time.monotonic()
        assert processor.force_flush(timeout_millis=200) is False
        assert time.monotonic() - started < 1.0
        sink.gate.set()
        assert processor.force_flush(timeout_millis=5_000) is True
        assert sink.exported == 10
        assert guard.dropped() == 0
        provider.shutdown()

    def test_exporter_exception_is_contained_and_counted(self) -> None:
        """An exporter that raises never breaks the worker; its spans count as export_failed."""

        class Raising(SpanExporter):
            def export(self, spans: object) -> SpanExportResult:
                raise RuntimeError("collector exploded")

        guard = ExportGuard(shutdown_timeout_s=1.0)
        processor = BoundedBatchSpanProcessor(Raising(), guard, schedule_delay_s=60)
        provider = provider_with(processor)
        end_spans(provider, 7)
        assert processor.force_flush(2_000) is True
        end_spans(provider, 3)
        assert processor.force_flush(2_000) is True
        assert guard.dropped(TRACES, LossReason.EXPORT_FAILED) == 10
        assert guard.failures(TRACES, LossReason.EXPORT_FAILED) == 2
        provider.shutdown()


class TestQueueAccounting:
    """Every ended span is exported or counted as dropped, exactly."""

    def test_overflow_is_counted_exactly(self) -> None:
        """With the exporter stuck, spans beyond max_queue_size are counted as queue_full."""
        sink = GateExporter()
        guard = ExportGuard(shutdown_timeout_s=5.0)
        processor = BoundedBatchSpanProcessor(
            sink, guard, max_queue_size=100, max_export_batch_size=10, schedule_delay_s=60
        )
        provider = provider_with(processor)
        end_spans(provider, 10)  # reaches the batch size: the worker takes them and blocks
        deadline = time.monotonic() + 5
        while queued(processor) and time.monotonic() < deadline:
            threading.Event().wait(0.001)  # poll the worker hand-off with a deadline
        end_spans(provider, 150)
        assert guard.dropped(TRACES, LossReason.QUEUE_FULL) == 50
        sink.gate.set()
        provider.shutdown()
        assert sink.exported + guard.dropped(TRACES) == 160
        assert sink.exported == 110

    def test_unsampled_spans_are_ignored(self) -> None:
        """Spans that are not sampled are neither exported nor counted as lost."""
        sink = InMemorySpanExporter()
        guard = ExportGuard()
        processor = BoundedBatchSpanProcessor(sink, guard)
        provider = TracerProvider(sampler=ALWAYS_OFF)
        provider.add_span_processor(processor)
        end_spans(provider, 5)
        assert processor.force_flush(1_000)
        assert sink.get_finished_spans() == ()
        assert guard.dropped() == 0
        provider.shutdown()

    def test_round_trip_to_real_receiver(self, otlp_grpc: OtlpGrpcReceiver) -> None:
        """Through a healthy collector every span arrives and nothing is counted lost."""
        guard = ExportGuard()
        exporter = OTLPSpanExporter(endpoint=otlp_grpc.endpoint, insecure=True)
        processor = BoundedBatchSpanProcessor(exporter, guard, max_export_batch_size=64)
        provider = provider_with(processor)
        end_spans(provider, 500, "ok")
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
