"""The test OTLP receivers decode what the real OpenTelemetry OTLP exporters send.

Every other test that asserts on exported telemetry trusts these receivers, so they are checked
here against the real exporters (gRPC and http/protobuf) from an SDK provider built in the test.
"""

from __future__ import annotations

import gzip
import json
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from grpc import Compression as GrpcCompression
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogExporter
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
    OTLPMetricExporter as GrpcMetricExporter,
)
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
    OTLPSpanExporter as GrpcSpanExporter,
)
from opentelemetry.exporter.otlp.proto.http import Compression as HttpCompression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
    OTLPMetricExporter as HttpMetricExporter,
)
from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
    OTLPSpanExporter as HttpSpanExporter,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList
from opentelemetry.proto.trace.v1.trace_pb2 import Span as SpanProto
from opentelemetry.proto.trace.v1.trace_pb2 import Status as StatusProto
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind, Status, StatusCode

from tests.support.otlp_receiver import (
    BlackHoleServer,
    OtlpGrpcReceiver,
    OtlpHttpReceiver,
    OtlpReceiver,
    ResettingServer,
    Signal,
    any_value_to_python,
)

RESOURCE = Resource.create({"service.name": "receiver-test", "deployment.environment.name": "ci"})


@dataclass
class Wire:
    """A receiver plus factories for the real exporters that talk to it."""

    receiver: OtlpReceiver
    span_exporter: Callable[..., SpanExporter]
    metric_exporter: Callable[..., Any]
    log_exporter: Callable[..., Any]


def _grpc_wire(receiver: OtlpGrpcReceiver) -> Wire:
    def spans(endpoint: str | None = None, **kw: Any) -> SpanExporter:
        return GrpcSpanExporter(endpoint=endpoint or receiver.endpoint, insecure=True, **kw)

    def metrics(**kw: Any) -> Any:
        return GrpcMetricExporter(endpoint=receiver.endpoint, insecure=True, **kw)

    def logs(**kw: Any) -> Any:
        return GrpcLogExporter(endpoint=receiver.endpoint, insecure=True, **kw)

    return Wire(receiver, spans, metrics, logs)


def _http_wire(receiver: OtlpHttpReceiver) -> Wire:
    def spans(endpoint: str | None = None, **kw: Any) -> SpanExporter:
        base = endpoint or receiver.endpoint
        return HttpSpanExporter(endpoint=f"{base}/v1/traces", **kw)

    def metrics(**kw: Any) -> Any:
        return HttpMetricExporter(endpoint=receiver.url(Signal.METRICS), **kw)

    def logs(**kw: Any) -> Any:
        return HttpLogExporter(endpoint=receiver.url(Signal.LOGS), **kw)

    return Wire(receiver, spans, metrics, logs)


@pytest.fixture(params=["grpc", "http"])
def wire(
    request: pytest.FixtureRequest, otlp_grpc: OtlpGrpcReceiver, otlp_http: OtlpHttpReceiver
) -> Wire:
    """Each test runs once against the gRPC receiver and once against the HTTP receiver."""
    if request.param == "grpc":
        return _grpc_wire(otlp_grpc)
    return _http_wire(otlp_http)


@pytest.fixture
def tracer_factory() -> Iterator[Callable[[SpanExporter], TracerProvider]]:
    providers: list[TracerProvider] = []

    def make(exporter: SpanExporter) -> TracerProvider:
        provider = TracerProvider(resource=RESOURCE)
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        providers.append(provider)
        return provider

    yield make
    for provider in providers:
        provider.shutdown()


class TestSpans:
    """Spans exported by the real OTLP exporters arrive decoded and complete."""

    def test_parent_child_resource_status_events_attributes(
        self, wire: Wire, tracer_factory: Callable[[SpanExporter], TracerProvider]
    ) -> None:
        """Resource, scope, ids, kind, status, events and typed attributes survive the wire."""
        tracer = tracer_factory(wire.span_exporter()).get_tracer("receiver.scope")
        with tracer.start_as_current_span("parent", kind=SpanKind.SERVER) as parent:
            parent.set_attribute("order.id", 42)
            with tracer.start_as_current_span("child") as child:
                child.set_attributes({"ratio": 0.5, "ok": True, "tags": ["a", "b"], "s": "x"})
                child.add_event("step", {"n": 3})
                child.set_status(Status(StatusCode.ERROR, "boom"))

        spans = wire.receiver.wait_for_spans(2)
        assert [s.name for s in spans] == ["child", "parent"]
        p, c = wire.receiver.span_by_name("parent"), wire.receiver.span_by_name("child")
        assert p.resource["service.name"] == "receiver-test"
        assert p.resource["deployment.environment.name"] == "ci"
        assert p.scope == "receiver.scope"
        assert c.span.trace_id == p.span.trace_id
        assert c.span.parent_span_id == p.span.span_id
        assert p.span.parent_span_id == b""
        assert p.span.kind == SpanProto.SPAN_KIND_SERVER
        assert p.attributes == {"order.id": 42}
        assert c.attributes == {"ratio": 0.5, "ok": True, "tags": ["a", "b"], "s": "x"}
        assert c.events == [("step", {"n": 3})]
        assert c.span.status.code == StatusProto.STATUS_CODE_ERROR
        assert c.span.status.message == "boom"
        assert p.span.end_time_unix_nano >= c.span.end_time_unix_nano > c.span.start_time_unix_nano

    def test_exception_event_is_decoded(
        self, wire: Wire, tracer_factory: Callable[[SpanExporter], TracerProvider]
    ) -> None:
        """An exception recorded by the SDK arrives as an event with type and message."""
        tracer = tracer_factory(wire.span_exporter()).get_tracer("t")
        with pytest.raises(KeyError), tracer.start_as_current_span("fails"):
            raise KeyError("missing")
        span = wire.receiver.wait_for_span("fails")
        [(name, attrs)] = span.events
        assert name == "exception"
        assert attrs["exception.type"] == "KeyError"
        assert "missing" in attrs["exception.message"]

    def test_headers_are_recorded(
        self, wire: Wire, tracer_factory: Callable[[SpanExporter], TracerProvider]
    ) -> None:
        """Exporter headers (gRPC metadata / HTTP headers) are recorded per request."""
        exporter = wire.span_exporter(headers={"x-tenant": "acme"})
        tracer_factory(exporter).get_tracer("t").start_span("h").end()
        wire.receiver.wait_for_span("h")
        [headers] = wire.receiver.headers(Signal.TRACES)
        assert headers["x-tenant"] == "acme"

    def test_gzip_compression_is_decoded(
        self, wire: Wire, tracer_factory: Callable[[SpanExporter], TracerProvider]
    ) -> None:
        """Gzip-compressed exports are decoded like plain ones."""
        compression = (
            GrpcCompression.Gzip if wire.receiver.transport == "grpc" else HttpCompression.Gzip
        )
        tracer = tracer_factory(wire.span_exporter(compression=compression)).get_tracer("t")
        tracer.start_span("zipped", attributes={"k": "v" * 1000}).end()
        assert wire.receiver.wait_for_span("zipped").attributes["k"] == "v" * 1000

    def test_wait_times_out_with_diagnostics(self, wire: Wire) -> None:
        """Waiting for a span that never comes raises TimeoutError naming what was seen."""
        with pytest.raises(TimeoutError, match="span 'never'"):
            wire.receiver.wait_for_span("never", timeout_s=0.05)


class TestMetrics:
    """Metric points exported by the real OTLP exporters arrive with decoded attributes."""

    def test_counter_and_histogram_points(self, wire: Wire) -> None:
        """A counter's value and a histogram's count/sum are readable per attribute set."""
        reader = PeriodicExportingMetricReader(
            wire.metric_exporter(), export_interval_millis=3_600_000
        )
        provider = MeterProvider(resource=RESOURCE, metric_readers=[reader])
        try:
            meter = provider.get_meter("receiver.metrics")
            counter = meter.create_counter("test.calls", unit="{call}")
            counter.add(2, {"route": "/a"})
            counter.add(5, {"route": "/b"})
            meter.create_histogram("test.duration", unit="s").record(0.25, {"route": "/a"})
            assert provider.force_flush(10_000)
        finally:
            provider.shutdown()

        points = wire.receiver.wait_for_metric("test.calls", 2)
        latest = wire.receiver.latest_points("test.calls")
        by_route = {p.attributes["route"]: p.value for p in latest}
        assert by_route == {"/a": 2, "/b": 5}
        assert points[0].resource["service.name"] == "receiver-test"
        assert points[0].scope == "receiver.metrics"
        assert points[0].metric.unit == "{call}"
        [hist] = wire.receiver.latest_points("test.duration")
        assert hist.value == 1
        assert hist.point.sum == pytest.approx(0.25)
        assert {"test.calls", "test.duration"} <= wire.receiver.metric_names()


class TestLogs:
    """Log records exported by the real OTLP exporters arrive with body, severity and context."""

    def test_log_record_fields(
        self, wire: Wire, tracer_factory: Callable[[SpanExporter], TracerProvider]
    ) -> None:
        """Body, severity, attributes, resource and the active trace id are decoded."""
        provider = LoggerProvider(resource=RESOURCE)
        provider.add_log_record_processor(SimpleLogRecordProcessor(wire.log_exporter()))
        tracer = tracer_factory(wire.span_exporter()).get_tracer("t")
        try:
            with tracer.start_as_current_span("around") as span:
                provider.get_logger("receiver.logs").emit(
                    body="hello",
                    severity_number=SeverityNumber.WARN,
                    severity_text="WARN",
                    attributes={"user.count": 3},
                )
                trace_id = span.get_span_context().trace_id
        finally:
            provider.shutdown()

        [log] = wire.receiver.wait_for_logs(1)
        assert log.body == "hello"
        assert log.attributes == {"user.count": 3}
        assert log.record.severity_number == SeverityNumber.WARN.value
        assert log.resource["service.name"] == "receiver-test"
        assert log.scope == "receiver.logs"
        assert int.from_bytes(log.record.trace_id, "big") == trace_id


class TestFaults:
    """Injected faults reach the exporter the way a failing collector would."""

    def test_unavailable_then_recovers(
        self, wire: Wire, tracer_factory: Callable[[SpanExporter], TracerProvider]
    ) -> None:
        """After N UNAVAILABLE/503 answers the exporter's retry succeeds and the span lands."""
        wire.receiver.unavailable(times=2)
        tracer_factory(wire.span_exporter(timeout=10)).get_tracer("t").start_span("late").end()
        assert wire.receiver.wait_for_span("late").name == "late"
        assert wire.receiver.rejected(Signal.TRACES) == 2
        assert wire.receiver.attempts(Signal.TRACES) == 3

    @pytest.mark.parametrize("status", [500, 413])
    def test_status_fails_the_export(self, wire: Wire, status: int) -> None:
        """A non-retryable status makes the export fail and nothing is stored."""
        wire.receiver.fail_with(status)
        tracer = TracerProvider(resource=RESOURCE).get_tracer("t")
        span = tracer.start_span("rejected")
        span.end()
        exporter = wire.span_exporter(timeout=2)
        try:
            assert exporter.export([span]) is SpanExportResult.FAILURE  # type: ignore[list-item]
        finally:
            exporter.shutdown()
        assert wire.receiver.spans() == []
        assert wire.receiver.rejected(Signal.TRACES) >= 1

    def test_status_for_one_signal_leaves_the_others_alone(self, wire: Wire) -> None:
        """fail_with(signal=...) rejects only that signal's requests and counts only those."""
        wire.receiver.fail_with(500, times=1, signal=Signal.LOGS)
        tracer = TracerProvider(resource=RESOURCE).get_tracer("t")
        span = tracer.start_span("accepted")
        span.end()
        exporter = wire.span_exporter(timeout=2)
        try:
            assert exporter.export([span]) is SpanExportResult.SUCCESS  # type: ignore[list-item]
        finally:
            exporter.shutdown()
        assert [s.name for s in wire.receiver.spans()] == ["accepted"]
        assert wire.receiver.rejected(Signal.TRACES) == 0

    def test_delay_slows_every_answer(self, wire: Wire) -> None:
        """With delay_s set, an export takes at least that long and still succeeds."""
        wire.receiver.delay_s = 0.3
        tracer = TracerProvider(resource=RESOURCE).get_tracer("t")
        span = tracer.start_span("slow")
        span.end()
        exporter = wire.span_exporter(timeout=5)
        try:
            started = time.monotonic()
            assert exporter.export([span]) is SpanExportResult.SUCCESS  # type: ignore[list-item]
            assert time.monotonic() - started >= 0.3
        finally:
            exporter.shutdown()

    @pytest.mark.parametrize("server_cls", [BlackHoleServer, ResettingServer])
    def test_misbehaving_tcp_servers_fail_exports(
        self, wire: Wire, server_cls: type[BlackHoleServer | ResettingServer]
    ) -> None:
        """Black-holed and resetting servers accept the connection and the export fails."""
        tracer = TracerProvider(resource=RESOURCE).get_tracer("t")
        span = tracer.start_span("lost")
        span.end()
        with server_cls() as server:
            exporter = wire.span_exporter(endpoint=server.endpoint, timeout=0.5)
            try:
                started = time.monotonic()
                result = exporter.export([span])  # type: ignore[list-item]
                elapsed = time.monotonic() - started
            finally:
                exporter.shutdown()
            assert server.connections >= 1
        assert result is SpanExportResult.FAILURE
        assert elapsed < 5

    def test_refused_port_fails_export(self, wire: Wire, refused: str) -> None:
        """Nothing listens on the refused endpoint, so the export fails."""
        tracer = TracerProvider(resource=RESOURCE).get_tracer("t")
        span = tracer.start_span("nobody")
        span.end()
        exporter = wire.span_exporter(endpoint=refused, timeout=0.5)
        try:
            assert exporter.export([span]) is SpanExportResult.FAILURE  # type: ignore[list-item]
        finally:
            exporter.shutdown()


class TestHttpBodies:
    """The HTTP receiver also accepts OTLP/JSON and gzip bodies sent by hand."""

    def _post(self, url: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status), bytes(response.read())

    def test_json_body(self, otlp_http: OtlpHttpReceiver) -> None:
        """An OTLP/JSON trace request is decoded and answered in JSON."""
        payload = {
            "resourceSpans": [
                {
                    "resource": {
                        "attributes": [{"key": "service.name", "value": {"stringValue": "j"}}]
                    },
                    "scopeSpans": [
                        {
                            "scope": {"name": "js"},
                            "spans": [
                                {
                                    "traceId": "5B8EFFF798038103D269B633813FC60C",
                                    "spanId": "EEE19B7EC3C1B174",
                                    "name": "from-json",
                                    "kind": 1,
                                }
                            ],
                        }
                    ],
                }
            ]
        }
        status, body = self._post(
            otlp_http.url(Signal.TRACES),
            json.dumps(payload).encode(),
            {"Content-Type": "application/json"},
        )
        assert status == 200
        assert json.loads(body) == {}
        span = otlp_http.span_by_name("from-json")
        assert span.resource == {"service.name": "j"}
        assert span.scope == "js"

    def test_unknown_path_is_404(self, otlp_http: OtlpHttpReceiver) -> None:
        """Only the three OTLP paths are served."""
        with pytest.raises(urllib.error.HTTPError) as info:
            self._post(f"{otlp_http.endpoint}/v1/nope", b"", {})
        info.value.close()
        assert info.value.code == 404

    def test_garbage_protobuf_is_400(self, otlp_http: OtlpHttpReceiver) -> None:
        """A body that is not a valid protobuf is rejected with 400 and not stored."""
        with pytest.raises(urllib.error.HTTPError) as info:
            self._post(
                otlp_http.url(Signal.LOGS),
                gzip.compress(b"\xff\xff\xff"),
                {"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"},
            )
        info.value.close()
        assert info.value.code == 400
        assert otlp_http.requests() == []


class TestAnyValue:
    """The AnyValue decoder maps every OTLP value kind to Python."""

    def test_every_kind(self) -> None:
        """Scalars, bytes, arrays, kvlists and the empty value decode as Python values."""
        nested = AnyValue(
            kvlist_value=KeyValueList(
                values=[
                    KeyValue(key="a", value=AnyValue(int_value=1)),
                    KeyValue(
                        key="b",
                        value=AnyValue(
                            array_value=ArrayValue(
                                values=[AnyValue(string_value="x"), AnyValue(bool_value=False)]
                            )
                        ),
                    ),
                ]
            )
        )
        assert any_value_to_python(nested) == {"a": 1, "b": ["x", False]}
        assert any_value_to_python(AnyValue(double_value=1.5)) == 1.5
        assert any_value_to_python(AnyValue(bytes_value=b"\x00\xff")) == b"\x00\xff"
        assert any_value_to_python(AnyValue()) is None
