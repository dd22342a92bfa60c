"""Small real span sinks and helpers shared by the export tests."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

__all__ = ["GateExporter", "end_spans", "provider_with"]


class GateExporter(SpanExporter):
    """An exporter that blocks each export until the test opens ``gate``: a stuck collector
    whose release the test controls. Shutting it down opens the gate."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.exported = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.gate.wait(30)
        self.exported += len(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self.gate.set()


def provider_with(processor: SpanProcessor) -> TracerProvider:
    """A tracer provider whose only processor is ``processor``."""
    provider = TracerProvider(resource=Resource.create({"service.name": "export-test"}))
    provider.add_span_processor(processor)
    return provider


def end_spans(provider: TracerProvider, count: int, name: str = "s") -> None:
    """Start and end ``count`` spans called ``name``."""
    tracer = provider.get_tracer("t")
    for _ in range(count):
        tracer.start_span(name).end()
