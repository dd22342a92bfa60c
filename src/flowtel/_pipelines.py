"""The provider builders the assembler calls: one function per signal, around one Resource."""

from __future__ import annotations

import os
import sys
from typing import Any

from opentelemetry import metrics as metrics_api
from opentelemetry._logs import LoggerProvider as ApiLoggerProvider

from flowtel._core._settings import Settings
from flowtel._export._guard import ExportGuard


def _console(settings: Settings) -> Any:
    """The console span processor; with ``json_logs`` it writes to stderr (stdout is JSON only).

    When ``exporter="auto"`` chose it because no endpoint is set, its first line says so.
    """
    from flowtel._export._console import ConsoleSpanProcessor

    console = ConsoleSpanProcessor(
        sys.stderr if settings.json_logs else None,
        colors=settings.console_colors,
        verbosity=settings.console_verbosity,
        close_timeout_s=min(1.0, settings.shutdown_timeout_s / 2),
    )
    if settings.console_fallback:
        console.writer.write(
            "flowtel: no OTLP endpoint is set (OTEL_EXPORTER_OTLP_ENDPOINT), so nothing is "
            "exported; spans are printed here instead.\n"
        )
    return console


def _meter_provider(
    settings: Settings, resource: Any, guard: ExportGuard
) -> tuple[metrics_api.MeterProvider, list[Any], int | None]:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

    readers: list[Any] = list(settings.metric_readers)
    if settings.exporter == "otlp":
        from flowtel._export._guarded import GuardedMetricExporter
        from flowtel._export._otlp import metric_exporter

        readers.append(
            PeriodicExportingMetricReader(
                GuardedMetricExporter(metric_exporter(settings.otlp["metrics"]), guard),
                export_interval_millis=settings.metric_export_interval_s * 1000,
            )
        )
    port: int | None = None
    if settings.prometheus_port is not None:
        reader, port = _prometheus_reader(settings)
        readers.append(reader)
    provider = MeterProvider(metric_readers=readers, resource=resource, shutdown_on_exit=False)
    return provider, readers, port


def _prometheus_reader(settings: Settings) -> tuple[Any, int]:
    """Expose metrics for Prometheus scraping in-process (the ``prometheus`` extra); the same
    port across a reconfiguration hands the running endpoint over."""
    from flowtel._export._prometheus import prometheus_reader

    return prometheus_reader(settings.prometheus_port, settings.prometheus_host)


def _logger_provider(settings: Settings, resource: Any, guard: ExportGuard) -> ApiLoggerProvider:
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor

    provider = LoggerProvider(resource=resource, shutdown_on_exit=False)
    if settings.exporter == "otlp":
        from flowtel._export._batch import BoundedBatchLogRecordProcessor
        from flowtel._export._otlp import log_exporter

        provider.add_log_record_processor(
            BoundedBatchLogRecordProcessor(log_exporter(settings.otlp["logs"]), guard)
        )
    for exporter in settings.log_exporters:
        provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    return provider


def _install_propagators(names: tuple[str, ...]) -> None:
    """Make ``names`` the global W3C propagators.

    When they are the API's own default and nothing has imported ``opentelemetry.propagate``
    yet, there is nothing to do: that module builds exactly this composite (tracecontext +
    baggage, ``OTEL_PROPAGATORS`` unset) when first imported by whoever injects or extracts.
    Skipping the import saves about 3 ms of every process start.
    """
    if (
        names == ("tracecontext", "baggage")
        and "opentelemetry.propagate" not in sys.modules
        and "OTEL_PROPAGATORS" not in os.environ
    ):
        return
    from opentelemetry import propagate
    from opentelemetry.propagators.composite import CompositePropagator

    propagators: list[Any] = []
    for name in names:
        if name == "tracecontext":
            from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

            propagators.append(TraceContextTextMapPropagator())
        elif name == "baggage":
            from opentelemetry.baggage.propagation import W3CBaggagePropagator

            propagators.append(W3CBaggagePropagator())
    propagate.set_global_textmap(CompositePropagator(propagators))
