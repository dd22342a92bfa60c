"""`flowtel doctor`, run as the console script a user runs, against real endpoints."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from flowtel import semconv
from tests.support.otlp_receiver import refused_endpoint
from tests.support.sentry_server import SentryServer

FLOWTEL = str(Path(sys.executable).parent / "flowtel")


def doctor(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "FLOWTEL_"))}
    clean.pop("SENTRY_DSN", None)
    return subprocess.run(
        [FLOWTEL, "doctor", "--timeout-s", "3", *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def problems(result: subprocess.CompletedProcess[str]) -> list[str]:
    _, _, tail = result.stdout.partition("problem")
    return [line for line in tail.splitlines() if line.startswith("✗ ")]


class TestOtlp:
    @pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
    def test_receiver_gets_span_metric_and_log(
        self, protocol: str, otlp_grpc: Any, otlp_http: Any
    ) -> None:
        """One test span, metric point and log record arrive; exit 0; the answer is shown."""
        receiver = otlp_grpc if protocol == "grpc" else otlp_http
        result = doctor(
            OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint, OTEL_EXPORTER_OTLP_PROTOCOL=protocol
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert receiver.wait_for_span(semconv.SPAN_DOCTOR)
        assert receiver.wait_for_metric(semconv.METRIC_DOCTOR)
        assert receiver.wait_for_logs(1)
        answer = "answered gRPC OK" if protocol == "grpc" else "answered HTTP 200"
        assert result.stdout.count(answer) == 3
        assert f"otlp_endpoint         {receiver.endpoint}" in result.stdout
        assert "env OTEL_EXPORTER_OTLP_ENDPOINT" in result.stdout

    def test_argument_source_is_shown(self, otlp_http: Any) -> None:
        """A command-line option wins over the environment and is reported as 'argument'."""
        result = doctor(
            "--otlp-endpoint",
            otlp_http.endpoint,
            "--otlp-protocol",
            "http/protobuf",
            OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9",
        )
        assert result.returncode == 0, result.stdout
        assert any(
            line.split()[:1] == ["otlp_endpoint"] and line.endswith("argument")
            for line in result.stdout.splitlines()
        )

    @pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
    def test_refused_port(self, protocol: str) -> None:
        """Nothing listening: exit 1, one line per signal saying the connection was refused."""
        result = doctor(
            OTEL_EXPORTER_OTLP_ENDPOINT=refused_endpoint(), OTEL_EXPORTER_OTLP_PROTOCOL=protocol
        )
        assert result.returncode == 1
        lines = problems(result)
        assert len(lines) == 3 and all("connection refused" in line for line in lines), lines

    def test_http_to_the_grpc_port(self, otlp_grpc: Any) -> None:
        """OTLP/HTTP sent to a gRPC receiver: the problem line suggests the protocol switch."""
        result = doctor(
            OTEL_EXPORTER_OTLP_ENDPOINT=otlp_grpc.endpoint,
            OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
        )
        assert result.returncode == 1
        lines = problems(result)
        assert len(lines) == 3
        assert all("OTEL_EXPORTER_OTLP_PROTOCOL=grpc" in line for line in lines), lines

    def test_grpc_to_the_http_port(self, otlp_http: Any) -> None:
        """OTLP/gRPC sent to an HTTP receiver: the problem line suggests the protocol switch."""
        result = doctor(
            OTEL_EXPORTER_OTLP_ENDPOINT=otlp_http.endpoint, OTEL_EXPORTER_OTLP_PROTOCOL="grpc"
        )
        assert result.returncode == 1
        lines = problems(result)
        assert len(lines) == 3
        assert all("OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf" in line for line in lines), lines


class TestSentry:
    def test_bad_dsn_is_one_masked_line(self) -> None:
        """A DSN sentry-sdk rejects: exit 1, one line naming the reason, the key masked."""
        result = doctor(SENTRY_DSN="https://s3cretkey@o0.ingest.sentry.io/not-a-project")
        assert result.returncode == 1
        (line,) = problems(result)
        assert line.startswith("✗ sentry: sentry_dsn") and "Invalid project" in line
        assert "s3cretkey" not in result.stdout

    def test_test_event_reaches_sentry(self) -> None:
        """--send-test-event sends one event; the answer is reported."""
        server = SentryServer().start()
        try:
            result = doctor("--send-test-event", SENTRY_DSN=server.dsn)
            assert result.returncode == 0, result.stdout
            (event,) = server.wait_for_events(1)
            assert "flowtel doctor test event" in str(event)
            assert "accepted (HTTP 200)" in result.stdout
        finally:
            server.stop()


class TestPrometheus:
    def test_port_taken_by_something_else(self) -> None:
        """A prometheus_port that another program holds is a problem, said in one line."""
        with socket.socket() as holder:
            holder.bind(("127.0.0.1", 0))
            holder.listen()
            port = holder.getsockname()[1]
            result = doctor(FLOWTEL_PROMETHEUS_PORT=str(port), FLOWTEL_PROMETHEUS_HOST="127.0.0.1")
        assert result.returncode == 1
        (line,) = problems(result)
        assert f"127.0.0.1:{port} is already in use" in line

    def test_free_port(self) -> None:
        """A free port passes."""
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        result = doctor(FLOWTEL_PROMETHEUS_PORT=str(port), FLOWTEL_PROMETHEUS_HOST="127.0.0.1")
        assert result.returncode == 0 and "is free to serve /metrics" in result.stdout
