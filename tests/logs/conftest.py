"""Fixtures for the logging tests: an in-memory pipeline and an OTLP pipeline factory."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from opentelemetry.sdk._logs import LoggerProvider, LogRecordProcessor
from opentelemetry.sdk._logs.export import (
    BatchLogRecordProcessor,
    InMemoryLogRecordExporter,
    SimpleLogRecordProcessor,
)
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from flowtel.logging import instrument_logging, uninstrument_logging
from flowtel.testing import TelemetryCapture

SERVICE = "logs-test"


class Pipeline:
    """Tracer and logger providers wired like ``configure_telemetry()``, without globals."""

    def __init__(self, processor: LogRecordProcessor) -> None:
        resource = Resource.create({"service.name": SERVICE})
        self.spans = InMemorySpanExporter()
        self.tracer_provider = TracerProvider(resource=resource)
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.tracer = self.tracer_provider.get_tracer("tests.logs")
        self.logger_provider = LoggerProvider(resource=resource, shutdown_on_exit=False)
        self.logger_provider.add_log_record_processor(processor)

    def force_flush(self, timeout_s: float | None = None) -> bool:
        return self.logger_provider.force_flush(int((timeout_s or 10) * 1000))

    def shutdown(self, timeout_s: float | None = None) -> bool:
        uninstrument_logging()
        self.logger_provider.shutdown()
        self.tracer_provider.shutdown()
        return True


@pytest.fixture(autouse=True)
def _pristine_root_logger() -> Iterator[None]:
    """Every test starts and ends with the root logger as pytest left it."""
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    yield
    uninstrument_logging()
    root.setLevel(level)
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)


@pytest.fixture
def pipeline() -> Iterator[tuple[Pipeline, TelemetryCapture]]:
    """In-memory pipeline with flowtel logging installed at INFO."""
    logs = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]
    pipe = Pipeline(SimpleLogRecordProcessor(logs))
    capture = TelemetryCapture(pipe.spans, InMemoryMetricReader(), logs, telemetry=pipe)
    instrument_logging(pipe.logger_provider, service_name=SERVICE)
    yield pipe, capture
    capture.close()


@pytest.fixture
def otlp_pipeline() -> Iterator[Callable[..., Pipeline]]:
    """Factory: a pipeline exporting logs over real OTLP (``grpc`` or ``http``) to ``endpoint``."""
    made: list[Pipeline] = []

    def make(
        endpoint: str, protocol: str = "grpc", timeout_s: float = 5, **batch: Any
    ) -> Pipeline:
        if protocol == "grpc":
            from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter

            exporter: Any = OTLPLogExporter(endpoint=endpoint, insecure=True, timeout=timeout_s)
        else:
            from opentelemetry.exporter.otlp.proto.http._log_exporter import (
                OTLPLogExporter as HttpLogExporter,
            )

            exporter = HttpLogExporter(endpoint=f"{endpoint}/v1/logs", timeout=timeout_s)
        pipe = Pipeline(BatchLogRecordProcessor(exporter, **batch))
        instrument_logging(pipe.logger_provider, service_name=SERVICE)
        made.append(pipe)
        return pipe

    yield make
    for pipe in made:
        pipe.shutdown()
