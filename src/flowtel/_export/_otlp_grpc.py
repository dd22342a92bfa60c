"""The OTLP/gRPC span exporter: the SDK's, sending the bytes of :class:`SpanEncoder`.

Why: the SDK's exporter builds the request as protobuf objects, which costs more CPU per span
than creating the span did, and flowtel's export-side scrub walked every span again before
that. This subclass keeps everything else the SDK exporter does (channel, credentials, headers,
compression, retries with backoff, reconnection, its own metrics) and swaps only the request:
``_translate_data`` returns the encoder's bytes (scrubbed on the way), and the stub sends them
as they are. Those are SDK internals, so :func:`grpc_span_exporter` checks for them and falls
back to the plain SDK exporter (scrubbed by the guarded exporter as before) when they change.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from flowtel._core._compat import otlp_grpc_bytes_hooks_ok

if TYPE_CHECKING:
    from flowtel._export._encode import SpanEncoder

__all__ = ["EncodingSpanExporter", "grpc_span_exporter"]

_log = logging.getLogger("flowtel.export")

_EXPORT_METHOD: Final = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


class _BytesTraceStub:
    """``TraceServiceStub`` for a request that is serialised already (no serializer)."""

    def __init__(self, channel: Any) -> None:
        self.Export = channel.unary_unary(
            _EXPORT_METHOD,
            request_serializer=None,
            response_deserializer=ExportTraceServiceResponse.FromString,
        )


class EncodingSpanExporter(OTLPSpanExporter):
    """The SDK's OTLP/gRPC span exporter with flowtel's encoder, which also scrubs.

    Threading contract: as the SDK's; ``export`` is called by one worker at a time.
    """

    scrubs_on_export: Final = True
    """Read by :class:`~flowtel._export._guarded.GuardedSpanExporter`: do not scrub again."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._encoder: SpanEncoder | None = None  # built on the first export, off the start path
        self._batch: tuple[Sequence[ReadableSpan], bytes] | None = None
        channel = getattr(self, "_channel", None)
        if channel is not None:
            self._stub = _BytesTraceStub  # also what a reconnection builds
            self._client = _BytesTraceStub(channel)  # type: ignore[assignment]

    def _translate_data(self, data: Sequence[ReadableSpan]) -> bytes:  # type: ignore[override]
        batch = self._batch  # a retry sends the same batch: encode it once
        if batch is None or batch[0] is not data:
            encoder = self._encoder
            if encoder is None:
                from flowtel._export._encode import SpanEncoder

                encoder = self._encoder = SpanEncoder()
            batch = self._batch = (data, encoder.encode(data))
        return batch[1]

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Export ``spans`` as the SDK exporter does (retries included), encoded by flowtel."""
        try:
            return super().export(spans)
        finally:
            self._batch = None


def grpc_span_exporter(**kwargs: Any) -> SpanExporter:
    """flowtel's encoding exporter when the installed SDK allows it, else the SDK's own."""
    if otlp_grpc_bytes_hooks_ok(OTLPSpanExporter):
        exporter = EncodingSpanExporter(**kwargs)
        if isinstance(getattr(exporter, "_client", None), _BytesTraceStub):
            return exporter
        exporter.shutdown()
    _log.debug("flowtel: OTLP/gRPC spans use the SDK encoder (exporter internals changed)")
    return OTLPSpanExporter(**kwargs)
