"""Send one test span, metric point and log record to the OTLP endpoint; report the answer.

The payloads are encoded with the OTLP exporters' own encoders and sent directly (HTTP with
urllib, gRPC with a channel), so the report can say what the collector answered (status code,
partial success, or the transport error) instead of the exporters' bare success flag.
"""

from __future__ import annotations

import http.client
import time
import urllib.error
import urllib.request
from typing import Any, NamedTuple

from flowtel import semconv
from flowtel._core._otlp import OtlpSignal

__all__ = ["ProbeResult", "probe_otlp"]

_HTTP_HINT = (
    "it does not answer as OTLP/HTTP: is this the gRPC port (4317)? set "
    "OTEL_EXPORTER_OTLP_PROTOCOL=grpc, or use the HTTP port (4318)"
)
_GRPC_HINT = (
    "it does not answer as OTLP/gRPC: is this the HTTP port (4318)? set "
    "OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf, or use the gRPC port (4317)"
)


class ProbeResult(NamedTuple):
    """What the endpoint answered for one signal."""

    signal: str
    ok: bool
    detail: str


def _payloads(resource_attributes: dict[str, str]) -> dict[str, Any]:
    """One span, one metric point and one log record, as OTLP protobuf requests."""
    from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
    from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    resource = Resource.create(resource_attributes)
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    with tracer_provider.get_tracer(semconv.SPAN_DOCTOR).start_as_current_span(semconv.SPAN_DOCTOR):
        pass
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader], resource=resource)
    meter_provider.get_meter(semconv.SPAN_DOCTOR).create_counter(semconv.METRIC_DOCTOR).add(1)
    metrics = reader.get_metrics_data()
    logs = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(logs))
    logger_provider.get_logger(semconv.SPAN_DOCTOR).emit(body="flowtel doctor test record")
    payloads = {
        "traces": encode_spans(spans.get_finished_spans()),
        "metrics": encode_metrics(metrics) if metrics is not None else None,
        "logs": encode_logs(logs.get_finished_logs()),
    }
    for provider in (tracer_provider, meter_provider, logger_provider):
        provider.shutdown()
    return payloads


def _http(signal: str, cfg: OtlpSignal, body: bytes, timeout_s: float) -> ProbeResult:
    url = cfg.endpoint or f"http://localhost:4318/v1/{signal}"
    headers = {"Content-Type": "application/x-protobuf", **cfg.headers}
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            status = response.status
            answer = response.read()
    except urllib.error.HTTPError as exc:
        hint = " (no OTLP receiver at this path?)" if exc.code == 404 else ""
        return ProbeResult(signal, False, f"{url} answered HTTP {exc.code} {exc.reason}{hint}")
    except ConnectionRefusedError:
        return ProbeResult(signal, False, f"{url}: connection refused (nothing listens there)")
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, ConnectionRefusedError):
            return ProbeResult(signal, False, f"{url}: connection refused (nothing listens there)")
        return ProbeResult(signal, False, f"{url}: {exc.reason}")
    except (OSError, ValueError, http.client.HTTPException) as exc:  # BadStatusLine, timeouts
        return ProbeResult(signal, False, f"{url}: {type(exc).__name__}; {_HTTP_HINT}")
    elapsed_ms = (time.monotonic() - started) * 1000
    rejected = _partial(signal, answer)
    detail = f"{url} answered HTTP {status} in {elapsed_ms:.0f} ms{rejected}"
    return ProbeResult(signal, not rejected, detail)


def _partial(signal: str, answer: bytes) -> str:
    """The partial-success part of an OTLP answer, '' when everything was accepted."""
    try:
        if signal == "traces":
            from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
                ExportTraceServiceResponse as Response,
            )
        elif signal == "metrics":
            from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
                ExportMetricsServiceResponse as Response,
            )
        else:
            from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
                ExportLogsServiceResponse as Response,
            )
        parsed = Response.FromString(answer)
    except Exception:
        return ""
    partial = parsed.partial_success
    rejected = sum(
        getattr(partial, f, 0)
        for f in ("rejected_spans", "rejected_data_points", "rejected_log_records")
    )
    if rejected or partial.error_message:
        return f"; rejected {rejected}: {partial.error_message or 'no reason given'}"
    return ""


def _grpc(signal: str, cfg: OtlpSignal, request: Any, timeout_s: float) -> ProbeResult:
    import grpc
    from opentelemetry.proto.collector.logs.v1 import logs_service_pb2_grpc
    from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2_grpc
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

    endpoint = cfg.endpoint or "http://localhost:4317"
    target = endpoint.split("://", 1)[-1].rstrip("/")
    secure = endpoint.startswith("https://") and cfg.insecure is not True
    channel = (
        grpc.secure_channel(target, grpc.ssl_channel_credentials())
        if secure
        else grpc.insecure_channel(target)
    )
    stubs: dict[str, Any] = {
        "traces": trace_service_pb2_grpc.TraceServiceStub,
        "metrics": metrics_service_pb2_grpc.MetricsServiceStub,
        "logs": logs_service_pb2_grpc.LogsServiceStub,
    }
    started = time.monotonic()
    try:
        answer = stubs[signal](channel).Export(
            request,
            timeout=timeout_s,
            metadata=tuple((k.lower(), v) for k, v in cfg.headers.items()),
        )
    except grpc.RpcError as exc:
        code = exc.code()
        details = exc.details() or ""
        lowered = details.lower().replace(".", "")
        if code == grpc.StatusCode.UNAVAILABLE and ("http1" in lowered or "http/2" in lowered):
            return ProbeResult(signal, False, f"{endpoint}: {_GRPC_HINT}")
        if code == grpc.StatusCode.UNAVAILABLE and "refused" in details.lower():
            return ProbeResult(
                signal, False, f"{endpoint}: connection refused (nothing listens there)"
            )
        return ProbeResult(signal, False, f"{endpoint} answered gRPC {code.name}: {details}")
    finally:
        channel.close()
    elapsed_ms = (time.monotonic() - started) * 1000
    rejected = _partial(signal, answer.SerializeToString())
    return ProbeResult(
        signal, not rejected, f"{endpoint} answered gRPC OK in {elapsed_ms:.0f} ms{rejected}"
    )


def probe_otlp(
    otlp: dict[str, OtlpSignal], resource_attributes: dict[str, str], timeout_s: float
) -> list[ProbeResult]:
    """Send the three test items; one result per signal."""
    payloads = _payloads(resource_attributes)
    results = []
    for signal in ("traces", "metrics", "logs"):
        cfg = otlp[signal]
        request = payloads[signal]
        if cfg.protocol == "grpc":
            results.append(_grpc(signal, cfg, request, timeout_s))
        else:
            results.append(_http(signal, cfg, request.SerializeToString(), timeout_s))
    return results
