"""Shared fixtures: real OTLP receivers (gRPC and HTTP) on loopback."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import flowtel
from tests.support.otlp_receiver import (
    BlackHoleServer,
    OtlpGrpcReceiver,
    OtlpHttpReceiver,
    ResettingServer,
    refused_endpoint,
)

pytest_plugins = ["pytester"]  # tests/testing runs users' test files against flowtel.testing


@pytest.fixture
def configure(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., flowtel.Telemetry]]:
    """Factory: ``configure_telemetry(force=True, **options)`` with a clean OTEL_*/FLOWTEL_*
    environment and the log bridge off unless asked for; every handle is shut down afterwards."""
    for key in list(os.environ):
        if key.startswith(("OTEL_", "FLOWTEL_")):
            monkeypatch.delenv(key)
    made: list[flowtel.Telemetry] = []

    def make(**options: Any) -> flowtel.Telemetry:
        options = {"service_name": "tests", "logging": False, **options}
        made.append(flowtel.configure_telemetry(force=True, **options))
        return made[-1]

    yield make
    for telemetry in made:
        telemetry.shutdown(timeout_s=1.0)


@pytest.fixture(scope="session")
def _otlp_grpc_session() -> Iterator[OtlpGrpcReceiver]:
    receiver = OtlpGrpcReceiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture(scope="session")
def _otlp_http_session() -> Iterator[OtlpHttpReceiver]:
    receiver = OtlpHttpReceiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture
def otlp_grpc(_otlp_grpc_session: OtlpGrpcReceiver) -> Iterator[OtlpGrpcReceiver]:
    """A real OTLP/gRPC receiver (session-wide server), empty and fault-free for this test.

    Point exporters at ``otlp_grpc.endpoint`` (``http://127.0.0.1:PORT``, insecure).
    """
    _otlp_grpc_session.reset()
    _otlp_grpc_session.clear()
    yield _otlp_grpc_session
    _otlp_grpc_session.reset()


@pytest.fixture
def otlp_http(_otlp_http_session: OtlpHttpReceiver) -> Iterator[OtlpHttpReceiver]:
    """A real OTLP/HTTP receiver (session-wide server), empty and fault-free for this test.

    Point exporters at ``otlp_http.endpoint`` (base URL) or ``otlp_http.url(Signal.TRACES)``.
    """
    _otlp_http_session.reset()
    _otlp_http_session.clear()
    yield _otlp_http_session
    _otlp_http_session.reset()


@pytest.fixture
def black_hole() -> Iterator[BlackHoleServer]:
    """A TCP server that accepts connections and never answers."""
    with BlackHoleServer() as server:
        yield server


@pytest.fixture
def resetting_server() -> Iterator[ResettingServer]:
    """A TCP server that reads the request and then resets the connection."""
    with ResettingServer() as server:
        yield server


@pytest.fixture
def refused() -> str:
    """An ``http://127.0.0.1:PORT`` endpoint where connections are refused."""
    return refused_endpoint()


def pytest_configure(config: pytest.Config) -> None:
    """Load flowtel's own pytest plugin when the installed metadata predates its entry point."""
    if not config.pluginmanager.has_plugin("flowtel"):
        import flowtel.testing._plugin

        config.pluginmanager.register(flowtel.testing, "flowtel")
