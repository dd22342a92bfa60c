"""Builds the OTLP exporters for each signal, importing only the transport in use.

Why lazy: the gRPC stack costs ~100 ms of import time and the HTTP stack pulls in requests; a
service that exports over one protocol should pay for that one only, and ``import flowtel`` pays
for neither.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flowtel._core._otlp import OtlpSignal

if TYPE_CHECKING:
    from opentelemetry.sdk._logs.export import LogRecordExporter
    from opentelemetry.sdk.metrics.export import MetricExporter
    from opentelemetry.sdk.trace.export import SpanExporter


def _common_kwargs(cfg: OtlpSignal) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    if cfg.endpoint is not None:
        kwargs["endpoint"] = cfg.endpoint
    if cfg.headers:
        kwargs["headers"] = dict(cfg.headers)
    if cfg.timeout_s is not None:
        kwargs["timeout"] = cfg.timeout_s
    return kwargs


def _grpc_kwargs(cfg: OtlpSignal) -> dict[str, Any]:
    kwargs = _common_kwargs(cfg)
    if cfg.insecure is not None:
        kwargs["insecure"] = cfg.insecure
    elif cfg.endpoint is not None and cfg.endpoint.startswith("http://"):
        kwargs["insecure"] = True
    return kwargs


def span_exporter(cfg: OtlpSignal) -> SpanExporter:
    """The OTLP span exporter for ``cfg.protocol`` (over gRPC, flowtel's encoding one)."""
    if cfg.protocol == "grpc":
        from flowtel._export._otlp_grpc import grpc_span_exporter

        return grpc_span_exporter(**_grpc_kwargs(cfg))
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
        OTLPSpanExporter as HttpSpanExporter,
    )

    return HttpSpanExporter(**_common_kwargs(cfg))


def metric_exporter(cfg: OtlpSignal) -> MetricExporter:
    """The OTLP metric exporter for ``cfg.protocol`` (cumulative temporality, the default)."""
    if cfg.protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter

        return OTLPMetricExporter(**_grpc_kwargs(cfg))
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
        OTLPMetricExporter as HttpMetricExporter,
    )

    return HttpMetricExporter(**_common_kwargs(cfg))


def log_exporter(cfg: OtlpSignal) -> LogRecordExporter:
    """The OTLP log-record exporter for ``cfg.protocol``."""
    if cfg.protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter

        return OTLPLogExporter(**_grpc_kwargs(cfg))
    from opentelemetry.exporter.otlp.proto.http._log_exporter import (
        OTLPLogExporter as HttpLogExporter,
    )

    return HttpLogExporter(**_common_kwargs(cfg))
