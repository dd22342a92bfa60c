"""configure_telemetry(exporter="otlp") against real OTLP receivers (gRPC and HTTP/protobuf)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap

import pytest
from opentelemetry.proto.trace.v1 import trace_pb2

import flowtel
from tests.support.otlp_receiver import OtlpGrpcReceiver, OtlpHttpReceiver

Receiver = OtlpGrpcReceiver | OtlpHttpReceiver


@pytest.fixture(params=["grpc", "http/protobuf"])
def receiver(
    request: pytest.FixtureRequest, otlp_grpc: OtlpGrpcReceiver, otlp_http: OtlpHttpReceiver
) -> Receiver:
    return otlp_grpc if request.param == "grpc" else otlp_http


def configure(receiver: Receiver, **kw: object) -> flowtel.Telemetry:
    protocol = "grpc" if isinstance(receiver, OtlpGrpcReceiver) else "http/protobuf"
    options: dict[str, object] = {
        "service_name": "export-test",
        "service_version": "1.2.3",
        "environment": "test",
        "resource_attributes": {"team": "core"},
        "exporter": "otlp",
        "otlp_endpoint": receiver.endpoint,
        "otlp_protocol": protocol,
        "otlp_headers": {"x-tenant": "acme"},
        "batch_schedule_delay_s": 0.05,
        "metric_export_interval_s": 60,
        "logging": False,
        "force": True,
    }
    options.update(kw)
    return flowtel.configure_telemetry(**options)  # type: ignore[arg-type]


class TestTraces:
    def test_spans_arrive_with_resource_parentage_status_events(self, receiver: Receiver) -> None:
        """Decoded protobuf has the resource, parent/child ids, status, events and attributes."""
        telemetry = configure(receiver)

        @flowtel.traced("child", component="billing", operation="charge")
        def child() -> None:
            raise ValueError("declined")

        with flowtel.span("parent", order_id="o-1"), pytest.raises(ValueError):
            child()
        assert telemetry.force_flush(timeout_s=10)
        parent = receiver.wait_for_span("parent")
        got_child = receiver.wait_for_span("child")

        assert parent.resource["service.name"] == "export-test"
        assert parent.resource["service.version"] == "1.2.3"
        assert parent.resource["deployment.environment.name"] == "test"
        assert parent.resource["team"] == "core"
        assert parent.resource["service.instance.id"]
        assert parent.resource["telemetry.sdk.name"] == "opentelemetry"
        assert parent.attributes["order_id"] == "o-1"

        assert got_child.span.trace_id == parent.span.trace_id
        assert got_child.span.parent_span_id == parent.span.span_id
        assert got_child.span.status.code == trace_pb2.Status.STATUS_CODE_ERROR
        assert got_child.attributes["flowtel.component"] == "billing"
        assert got_child.attributes["error.type"] == "ValueError"
        ((name, attrs),) = got_child.events
        assert name == "exception"
        assert attrs["exception.type"] == "ValueError"
        assert attrs["exception.message"] == "declined"
        assert "raise ValueError" in attrs["exception.stacktrace"]
        assert parent.span.status.code == trace_pb2.Status.STATUS_CODE_UNSET  # handled inside
        assert receiver.headers()[0]["x-tenant"] == "acme"
        telemetry.shutdown()

    def test_sampling_exports_share_and_respects_remote_parent(self, receiver: Receiver) -> None:
        """sample_rate=0 exports nothing, except under a sampled W3C traceparent from upstream."""
        from opentelemetry import context as context_api
        from opentelemetry import propagate

        telemetry = configure(receiver, sample_rate=0.0)
        for _ in range(20):
            with flowtel.span("dropped"):
                pass
        carrier = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
        token = context_api.attach(propagate.extract(carrier))
        try:
            with flowtel.span("continued"):
                pass
        finally:
            context_api.detach(token)
        assert telemetry.force_flush(timeout_s=10)
        continued = receiver.wait_for_span("continued")
        assert continued.span.trace_id.hex() == "0af7651916cd43dd8448eb211c80319c"
        assert continued.span.parent_span_id.hex() == "b7ad6b7169203331"
        assert receiver.spans_by_name("dropped") == []
        telemetry.shutdown()


class TestMetricsAndLogs:
    def test_metrics_arrive(self, receiver: Receiver) -> None:
        """A counter made on the handle's meter arrives with its attributes on flush."""
        telemetry = configure(receiver)
        counter = telemetry.meter.create_counter("test.requests", unit="{request}")
        counter.add(3, {"route": "/a"})
        assert telemetry.force_flush(timeout_s=10)
        points = receiver.wait_for_metric("test.requests")
        assert points[-1].value == 3
        assert points[-1].attributes == {"route": "/a"}
        assert points[-1].resource["service.name"] == "export-test"
        telemetry.shutdown()

    def test_logs_pipeline_exports_records(self, receiver: Receiver) -> None:
        """The LoggerProvider exports OTel log records over the same endpoint."""
        from opentelemetry._logs import LogRecord, SeverityNumber

        telemetry = configure(receiver)
        logger = telemetry.logger_provider.get_logger("test")
        logger.emit(LogRecord(body="hello", severity_number=SeverityNumber.WARN))
        assert telemetry.force_flush(timeout_s=10)
        logs = receiver.wait_for_logs(lambda got: any(r.body == "hello" for r in got))
        assert any(r.record.severity_number == SeverityNumber.WARN.value for r in logs)
        telemetry.shutdown()


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "FLOWTEL_"))}
    env.update(extra)
    return env


class TestEnvironmentAndProcesses:
    def test_env_only_configuration_exports(self, receiver: Receiver) -> None:
        """A subprocess configured only by OTEL_* variables exports to the receiver."""
        protocol = "grpc" if isinstance(receiver, OtlpGrpcReceiver) else "http/protobuf"
        code = """
            import flowtel
            flowtel.configure_telemetry(logging=False)
            with flowtel.span("from-env"):
                pass
        """
        result = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(code)],
            env=_clean_env(
                OTEL_SERVICE_NAME="env-service",
                OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
                OTEL_EXPORTER_OTLP_PROTOCOL=protocol,
                OTEL_EXPORTER_OTLP_HEADERS="x-env=yes",
                OTEL_EXPORTER_OTLP_INSECURE="true",
            ),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        span = receiver.wait_for_span("from-env")  # delivered by the exit hook's flush
        assert span.resource["service.name"] == "env-service"
        assert any(h.get("x-env") == "yes" for h in receiver.headers())

    def test_forked_child_exports_its_own_spans(self, otlp_grpc: OtlpGrpcReceiver) -> None:
        """After fork, the child's spans are exported by the child."""
        code = f"""
            import os, flowtel
            t = flowtel.configure_telemetry(logging=False, exporter="otlp",
                otlp_endpoint={otlp_grpc.endpoint!r}, otlp_protocol="grpc",
                batch_schedule_delay_s=0.05)
            with flowtel.span("before-fork"):
                pass
            pid = os.fork()
            if pid == 0:
                with flowtel.span("in-child", pid=os.getpid()):
                    pass
                ok = t.force_flush(timeout_s=10)
                os._exit(0 if ok else 3)
            _, status = os.waitpid(pid, 0)
            with flowtel.span("in-parent"):
                pass
            t.shutdown(timeout_s=10)
            raise SystemExit(os.waitstatus_to_exitcode(status))
        """
        result = subprocess.run(
            [sys.executable, "-W", "ignore::DeprecationWarning", "-c", textwrap.dedent(code)],
            env=_clean_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        child = otlp_grpc.wait_for_span("in-child")
        otlp_grpc.wait_for_span("in-parent")
        assert len(otlp_grpc.spans_by_name("before-fork")) == 1  # not re-exported by the child
        assert child.attributes["pid"] != 0


@pytest.fixture(autouse=True)
def _quiet_exporter_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.CRITICAL, logger="opentelemetry")
