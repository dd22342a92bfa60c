"""flowtel's OTLP span encoder: the SDK's bytes, scrubbed on the way, each value once."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    TraceState,
    set_span_in_context,
)

import flowtel
from flowtel._core import _scrub as _scrub
from flowtel._core._scrub import REDACTED, Scrubber
from flowtel._export import _encode, _otlp_grpc
from flowtel._export._encode import SpanEncoder
from flowtel._export._scrub import scrub_spans
from tests.support.otlp_receiver import OtlpGrpcReceiver

REMOTE = SpanContext(0xABC, 0xDEF, True, TraceFlags(1), TraceState([("k", "v"), ("z", "y")]))


@pytest.fixture
def record() -> Iterator[Callable[..., tuple[TracerProvider, InMemorySpanExporter]]]:
    """Factory: an SDK provider (with ``limits``) recording into memory."""
    made: list[TracerProvider] = []

    def make(limits: SpanLimits | None = None) -> tuple[TracerProvider, InMemorySpanExporter]:
        exporter = InMemorySpanExporter()
        provider = TracerProvider(
            resource=Resource.create({"service.name": "enc", "n": 3}), span_limits=limits
        )
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        made.append(provider)
        return provider, exporter

    yield make
    for provider in made:
        provider.shutdown()


def _sdk_bytes(spans: list[ReadableSpan]) -> bytes:
    return encode_spans(scrub_spans(spans)).SerializeToString()  # type: ignore[no-any-return]


def _varied(provider: TracerProvider) -> None:
    """Every field the encoder writes: kinds, values of each type, events, links, status."""
    scoped = provider.get_tracer("a", "1.0", schema_url="https://schema", attributes={"s": "v"})
    values = {
        "s": "x",
        "empty": "",
        "b": True,
        "i": -5,
        "big": 2**62,
        "f": 1.5,
        "t": ("a", "b"),
        "ti": (1, 2),
        "tb": (True, False),
        "tf": (1.0,),
        "none": (),
    }
    with scoped.start_as_current_span("root", kind=SpanKind.SERVER, attributes=values) as span:
        span.add_event("ev", {"password": "hunter2", "x": 1, "dsn": "postgres://u:pw@db/x"})
        span.add_event("bare")
        span.set_status(Status(StatusCode.ERROR, "failed: token=sk_live_abcdefghijklmnop12"))
        with provider.get_tracer("b").start_as_current_span(
            "child Bearer abcdefghijklmnopqrstuv",
            links=[Link(REMOTE, {"l": "x", "api_key": "zz"})],
            attributes={"user.password": 5, "tags": ("Bearer abcdefghijkl", "ok")},
        ):
            pass
    parent = set_span_in_context(NonRecordingSpan(REMOTE))
    with scoped.start_as_current_span("remote", context=parent, kind=SpanKind.CONSUMER) as span:
        span.set_status(Status(StatusCode.OK))
    with scoped.start_as_current_span("") as span:
        span.set_attribute("long", "x" * 1000 + " password=abcdefgh123")
        span.set_attribute("huge", "y" * 20_000)


class TestSameBytesAsTheSdk:
    """The request equals what the SDK encodes from scrub_spans' output, byte for byte."""

    def test_every_field(
        self, record: Callable[..., tuple[TracerProvider, InMemorySpanExporter]]
    ) -> None:
        """Names, values of every type, events, links, status, parents and scopes match."""
        provider, exporter = record()
        _varied(provider)
        spans = list(exporter.get_finished_spans())
        encoder = SpanEncoder()
        assert encoder.encode(spans) == _sdk_bytes(spans)
        assert encoder.encode(spans) == _sdk_bytes(spans)  # again, from the caches

    def test_dropped_counts_are_kept(
        self, record: Callable[..., tuple[TracerProvider, InMemorySpanExporter]]
    ) -> None:
        """Attributes, events and links beyond the limits are counted as the SDK counts them."""
        provider, exporter = record(SpanLimits(max_span_attributes=2, max_events=1, max_links=1))
        links = [Link(REMOTE), Link(REMOTE)]
        with provider.get_tracer("q").start_as_current_span("d", links=links) as span:
            span.set_attributes({"a": 1, "b": 2, "c": 3})
            span.add_event("x")
            span.add_event("y")
        spans = list(exporter.get_finished_spans())
        assert SpanEncoder().encode(spans) == encode_spans(spans).SerializeToString()

    def test_secret_attribute_name(
        self, record: Callable[..., tuple[TracerProvider, InMemorySpanExporter]]
    ) -> None:
        """A name that is itself data is scrubbed like scrub_span does; counts survive."""
        provider, exporter = record(SpanLimits(max_span_attributes=1))
        with provider.get_tracer("q").start_as_current_span("k") as span:
            span.set_attribute("first", 1)
            span.set_attribute("key.sk_live_abcdefghijklmnop1234", "v")
        spans = list(exporter.get_finished_spans())
        ours = ExportTraceServiceRequest.FromString(SpanEncoder().encode(spans))
        expected = ExportTraceServiceRequest.FromString(_sdk_bytes(spans))
        span = expected.resource_spans[0].scope_spans[0].spans[0]
        assert [kv.key for kv in span.attributes] == [f"key.{REDACTED}"]
        span.dropped_attributes_count = 1  # scrub_span's copy loses the count; ours keeps it
        assert ours == expected

    def test_values_the_sdk_cannot_encode_are_skipped(
        self, record: Callable[..., tuple[TracerProvider, InMemorySpanExporter]]
    ) -> None:
        """An integer beyond int64 is left out, as the SDK's encoder leaves it out."""
        provider, exporter = record()
        with provider.get_tracer("q").start_as_current_span("k") as span:
            span.set_attribute("ok", 1)
            span.set_attribute("huge", 2**70)
        spans = list(exporter.get_finished_spans())
        assert SpanEncoder().encode(spans) == _sdk_bytes(spans)


class TestCaches:
    """Memory stays bounded, and a new scrubber is never answered from old entries."""

    def test_bounded(
        self, record: Callable[..., tuple[TracerProvider, InMemorySpanExporter]]
    ) -> None:
        """Distinct values beyond the cache size clear it instead of growing it."""
        provider, exporter = record()
        tracer = provider.get_tracer("q")
        for i in range(_encode._CACHE_MAX + 10):
            tracer.start_span("s", attributes={"id": f"order-{i}"}).end()
        encoder = SpanEncoder()
        encoder.encode(list(exporter.get_finished_spans()))
        assert 0 < len(encoder._attrs) <= _encode._CACHE_MAX

    def test_new_scrubber_clears(
        self,
        record: Callable[..., tuple[TracerProvider, InMemorySpanExporter]],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """A value encoded with scrubbing off is redacted once scrubbing is switched on."""
        provider, exporter = record()
        provider.get_tracer("q").start_span("s", attributes={"dsn": "postgres://u:pw1@db"}).end()
        spans = list(exporter.get_finished_spans())
        encoder = SpanEncoder()
        monkeypatch.setattr(_scrub, "_current", Scrubber(enabled=False))
        assert b"pw1" in encoder.encode(spans)
        monkeypatch.setattr(_scrub, "_current", Scrubber())
        assert b"pw1" not in encoder.encode(spans)


def _raw_api_secrets() -> None:
    """Secrets set through the plain OpenTelemetry API on a flowtel span, twice."""
    from opentelemetry import trace

    @flowtel.traced(component="enc", operation="op")
    def work() -> None:
        span = trace.get_current_span()
        span.set_attribute("db.statement", "select 1 -- password=Hunter2-Pw!x")
        span.add_event("auth", {"header": "Authorization: Bearer abcdefghijklmnop"})

    work()
    work()


class TestThroughTheCollector:
    """What a user's collector receives over OTLP/gRPC, with and without the fast path."""

    def test_scrubbed_and_complete(
        self,
        otlp_grpc: OtlpGrpcReceiver,
        configure: Callable[..., flowtel.Telemetry],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """Both spans arrive, encoded by flowtel, with their documented attributes, no secret."""
        encoded: list[int] = []
        original = SpanEncoder.encode

        def counting(self: SpanEncoder, spans: list[ReadableSpan]) -> bytes:
            encoded.append(len(spans))
            return original(self, spans)

        monkeypatch.setattr(SpanEncoder, "encode", counting)
        telemetry = configure(exporter="otlp", otlp_endpoint=otlp_grpc.endpoint)
        _raw_api_secrets()
        assert telemetry.force_flush(timeout_s=10.0)
        assert sum(encoded) == 2
        spans = otlp_grpc.wait_for_spans(2)
        for span in spans:
            assert span.attributes["flowtel.operation"] == "op"
            assert "code.function.name" in span.attributes
            assert "Hunter2" not in span.attributes["db.statement"]
            assert "abcdefghijklmnop" not in str(span.events)

    def test_sdk_exporter_when_internals_change(
        self,
        otlp_grpc: OtlpGrpcReceiver,
        configure: Callable[..., flowtel.Telemetry],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """Without the SDK internals it replaces, the SDK exporter is used, still scrubbed."""
        monkeypatch.setattr(_otlp_grpc, "otlp_grpc_bytes_hooks_ok", lambda cls: False)
        telemetry = configure(exporter="otlp", otlp_endpoint=otlp_grpc.endpoint)
        _raw_api_secrets()
        assert telemetry.force_flush(timeout_s=10.0)
        spans = otlp_grpc.wait_for_spans(2)
        assert all("Hunter2" not in s.attributes["db.statement"] for s in spans)
        assert all("abcdefghijklmnop" not in str(s.events) for s in spans)
