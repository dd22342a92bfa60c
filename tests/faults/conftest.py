"""Builders for fault tests: a host app traced through flowtel's guarded OTLP pipeline."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
    OTLPSpanExporter as GrpcSpanExporter,
)
from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
    OTLPSpanExporter as HttpSpanExporter,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter

from flowtel._export._batch import BoundedBatchSpanProcessor
from flowtel._export._guard import ExportGuard

OTLP_TIMEOUT_S = 10.0
"""The OTLP exporters' default per-export timeout: raw OTel waits this long per batch."""


def span_exporter(protocol: str, endpoint: str, timeout_s: float = OTLP_TIMEOUT_S) -> SpanExporter:
    """A real OTLP span exporter for ``protocol`` ("grpc" or "http") aimed at ``endpoint``."""
    if protocol == "grpc":
        return GrpcSpanExporter(endpoint=endpoint, insecure=True, timeout=timeout_s)
    return HttpSpanExporter(endpoint=f"{endpoint}/v1/traces", timeout=timeout_s)


@dataclass
class Pipeline:
    """A tracer provider exporting through flowtel's guard, plus host-app timing."""

    provider: TracerProvider
    processor: BoundedBatchSpanProcessor
    guard: ExportGuard
    call_latencies_s: list[float] = field(default_factory=list)

    def handle(self, i: int) -> int:
        """A host-app request handler: one span, a result the test checks."""
        started = time.perf_counter()
        with self.provider.get_tracer("app").start_as_current_span("request") as span:
            span.set_attribute("request.n", i)
            result = i * 2
        self.call_latencies_s.append(time.perf_counter() - started)
        return result

    def shutdown_s(self) -> float:
        """Shut the provider down and return how long it took."""
        started = time.monotonic()
        self.provider.shutdown()
        return time.monotonic() - started


@pytest.fixture
def make_pipeline() -> Iterator[Callable[..., Pipeline]]:
    built: list[Pipeline] = []

    def make(
        exporter: SpanExporter,
        *,
        shutdown_timeout_s: float = 1.0,
        schedule_delay_s: float = 0.05,
        **queue: Any,
    ) -> Pipeline:
        guard = ExportGuard(shutdown_timeout_s=shutdown_timeout_s)
        processor = BoundedBatchSpanProcessor(
            exporter, guard, schedule_delay_s=schedule_delay_s, **queue
        )
        provider = TracerProvider(resource=Resource.create({"service.name": "fault-app"}))
        provider.add_span_processor(processor)
        pipeline = Pipeline(provider, processor, guard)
        built.append(pipeline)
        return pipeline

    yield make
    for pipeline in built:
        pipeline.provider.shutdown()
