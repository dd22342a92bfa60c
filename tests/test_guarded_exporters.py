"""Guarded exporters: overrunning calls are abandoned, failures counted, metrics bounded."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from flowtel._export._guard import ExportGuard, LossReason, TelemetrySignal
from flowtel._export._guarded import GuardedSpanExporter
from tests.support.sinks import GateExporter

TRACES = TelemetrySignal.TRACES


def _finished_spans(count: int) -> list[ReadableSpan]:
    provider = TracerProvider()
    tracer = provider.get_tracer("t")
    spans = []
    for _ in range(count):
        span = tracer.start_span("x")
        span.end()
        spans.append(span)
    return spans  # type: ignore[return-value]


class TestGuardedSpanExporter:
    """Exports are bounded by the guard; every failure is counted against its batch."""

    def test_stuck_export_is_abandoned_and_later_batches_dropped(self) -> None:
        """An export overrunning export_timeout_s is abandoned; later batches are counted lost."""
        sink = GateExporter()
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

    def test_raising_exporter_is_counted_as_failed(self) -> None:
        """An exporter that raises returns FAILURE; its spans count as export_failed."""

        class Raising(SpanExporter):
            def export(self, spans: object) -> SpanExportResult:
                raise RuntimeError("boom")

        guard = ExportGuard()
        exporter = GuardedSpanExporter(Raising(), guard)
        assert exporter.export(_finished_spans(4)) is SpanExportResult.FAILURE
        assert guard.dropped(TRACES, LossReason.EXPORT_FAILED) == 4
        assert guard.failures(TRACES) == 1


class TestExportThread:
    """Exports run on one long-lived thread per exporter, not on a new thread each."""

    def test_one_thread_for_many_exports(self) -> None:
        """Fifty exports run on the same helper thread, which exits at shutdown."""
        seen: set[threading.Thread] = set()

        class Recording(SpanExporter):
            def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
                seen.add(threading.current_thread())
                return SpanExportResult.SUCCESS

        exporter = GuardedSpanExporter(Recording(), ExportGuard())
        spans = _finished_spans(2)
        for _ in range(50):
            assert exporter.export(spans) is SpanExportResult.SUCCESS
        [thread] = seen
        assert thread is not threading.current_thread()
        exporter.shutdown()
        thread.join(timeout=5.0)
        assert not thread.is_alive()

    def test_released_export_frees_the_thread(self) -> None:
        """Once an abandoned export returns, the next batch is exported on the same thread."""
        sink = GateExporter()
        guard = ExportGuard(export_timeout_s=0.1)
        exporter = GuardedSpanExporter(sink, guard)
        spans = _finished_spans(2)
        assert exporter.export(spans) is SpanExportResult.FAILURE  # stuck, abandoned
        sink.gate.set()
        assert exporter.export(spans) is SpanExportResult.SUCCESS
        assert sink.exported == 4  # the abandoned batch arrived late; it is still counted lost
        assert guard.dropped(TRACES, LossReason.EXPORT_TIMEOUT) == 2
        exporter.shutdown()
