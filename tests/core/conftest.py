from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import flowtel


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """flowtel configured with an in-memory span exporter, nothing else."""
    exporter = InMemorySpanExporter()
    telemetry = flowtel.configure_telemetry(
        service_name="core-tests",
        exporter="none",
        span_exporters=[exporter],
        logging=False,
        force=True,
    )
    yield exporter
    telemetry.shutdown()
