"""Test helpers for the resilience tests: SDK in-memory readers with lookup helpers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Tracer


@dataclass
class Metrics:
    """A MeterProvider wired to an InMemoryMetricReader, with lookup helpers."""

    provider: MeterProvider
    reader: InMemoryMetricReader

    def points(self, name: str) -> list[tuple[dict[str, Any], Any]]:
        """(attributes, data point) for every point of metric ``name`` in one collection."""
        data = self.reader.get_metrics_data()
        found: list[tuple[dict[str, Any], Any]] = []
        if data is None:
            return found
        for rm in data.resource_metrics:
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    if metric.name == name:
                        found += [(dict(p.attributes), p) for p in metric.data.data_points]
        return found

    def value(self, name: str, attrs: dict[str, Any] | None = None) -> float:
        """Sum of counter (or gauge) values whose attributes include ``attrs``."""
        return sum(p.value for a, p in self.points(name) if _matches(a, attrs or {}))

    def count(self, name: str, attrs: dict[str, Any] | None = None) -> int:
        """Histogram sample count over points whose attributes include ``attrs``."""
        return sum(p.count for a, p in self.points(name) if _matches(a, attrs or {}))


def _matches(attributes: dict[str, Any], wanted: dict[str, Any]) -> bool:
    return all(attributes.get(k) == v for k, v in wanted.items())


@dataclass
class Spans:
    """A TracerProvider exporting to memory."""

    tracer: Tracer
    exporter: InMemorySpanExporter

    def finished(self) -> tuple[ReadableSpan, ...]:
        return self.exporter.get_finished_spans()

    def events(self, name: str) -> list[dict[str, Any]]:
        """Attributes of every span event called ``name`` on finished spans, in order."""
        return [
            dict(e.attributes or {}) for s in self.finished() for e in s.events if e.name == name
        ]
