"""Fixtures for the logging tests: flowtel configured in memory, or exporting over real OTLP."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import flowtel
from flowtel.logs import uninstrument_logging
from flowtel.testing import TelemetryCapture

SERVICE = "logs-test"
Piped = tuple[flowtel.Telemetry, TelemetryCapture]


@pytest.fixture(autouse=True)
def _no_leftover_sentry_client() -> None:
    """Unbind a Sentry client that an earlier test left in the global scope.

    A closed flowtel Sentry bridge stays bound and still runs ``before_send`` (scrubbing) for
    every ERROR record, including the OTLP exporter's own, on the exporter's thread; these tests
    measure flowtel logging, not that leak (reported to the lead).
    """
    sentry_sdk = sys.modules.get("sentry_sdk")
    if sentry_sdk is not None and sentry_sdk.get_client().is_active():
        sentry_sdk.get_global_scope().set_client(None)


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
def pipeline() -> Iterator[Piped]:
    """flowtel configured with in-memory exporters and logging at INFO."""
    capture = TelemetryCapture.configure(service_name=SERVICE)
    telemetry = capture.telemetry
    assert telemetry is not None
    yield telemetry, capture
    capture.close()


@pytest.fixture
def otlp_pipeline() -> Iterator[Callable[..., flowtel.Telemetry]]:
    """Factory: flowtel exporting over real OTLP (``grpc`` or ``http/protobuf``) to ``endpoint``."""
    made: list[flowtel.Telemetry] = []

    def make(endpoint: str, protocol: str = "grpc", **options: Any) -> flowtel.Telemetry:
        options.setdefault("batch_schedule_delay_s", 0.05)
        telemetry = flowtel.configure_telemetry(
            service_name=SERVICE,
            exporter="otlp",
            otlp_endpoint=endpoint,
            otlp_protocol=protocol,
            metric_export_interval_s=60,
            force=True,
            **options,
        )
        made.append(telemetry)
        return telemetry

    yield make
    for telemetry in made:
        telemetry.shutdown()
