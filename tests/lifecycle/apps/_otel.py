"""Telemetry for subprocess test apps: flowtel's own OTLP pipeline to the test's receiver."""

from __future__ import annotations

import flowtel


def configure(service_name: str) -> None:
    """OTLP/HTTP to ``OTEL_EXPORTER_OTLP_ENDPOINT`` (set by the test), batched, flushed at stop."""
    flowtel.configure_telemetry(
        service_name=service_name, exporter="otlp", otlp_protocol="http/protobuf"
    )
