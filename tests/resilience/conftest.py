"""Fixtures for the resilience tests: SDK in-memory readers and a virtual clock.

Every test gets its own MeterProvider and TracerProvider, passed to the strategies explicitly,
so tests never depend on (or fight over) OpenTelemetry's set-once global providers.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from flowtel.resilience import VirtualClock
from tests.resilience.resilience_support import Metrics, Spans


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def metrics() -> Iterator[Metrics]:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    yield Metrics(provider, reader)
    provider.shutdown()


@pytest.fixture
def spans() -> Iterator[Spans]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield Spans(provider.get_tracer("tests.resilience"), exporter)
    provider.shutdown()


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(start_s=1000.0)
