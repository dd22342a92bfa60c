"""The assembler: ``configure_telemetry()`` builds every stage and wires the features in.

Data flow, bottom to top: the application calls the OpenTelemetry API (``@traced``, logging);
span processors (errors, Sentry) and the export stage (batching, guards, OTLP or console) sit
under the SDK providers this module builds around one Resource; metric readers pull from the
MeterProvider. This is the only module that imports every feature, and each feature is a plain
import called here: nothing installs itself, and no feature imports this module.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import threading
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry import metrics as metrics_api
from opentelemetry import trace as trace_api
from opentelemetry._logs import LoggerProvider as ApiLoggerProvider
from opentelemetry._logs import NoOpLoggerProvider

from flowtel._core import _proxy
from flowtel._core._options import UNSET, Options, _Unset
from flowtel._core._scrub import Scrubber, set_scrubber
from flowtel._core._settings import Settings, resolve
from flowtel._core._telemetry import HUB, Telemetry
from flowtel._export._guard import ExportGuard
from flowtel.exceptions import ConfigurationError

__all__ = ["configure_telemetry"]

_log = logging.getLogger("flowtel")
_lock = threading.RLock()
_atexit_registered = False


def configure_telemetry(
    *,
    service_name: str | _Unset = UNSET,
    service_version: str | _Unset | None = UNSET,
    environment: str | _Unset | None = UNSET,
    resource_attributes: Mapping[str, str] | _Unset | None = UNSET,
    exporter: str | _Unset = UNSET,
    otlp_endpoint: str | _Unset | None = UNSET,
    otlp_protocol: str | _Unset = UNSET,
    otlp_headers: Mapping[str, str] | str | _Unset | None = UNSET,
    sample_rate: float | _Unset | None = UNSET,
    count_unsampled: bool | _Unset = UNSET,
    max_span_attributes: int | _Unset = UNSET,
    max_span_events: int | _Unset = UNSET,
    max_attribute_length: int | _Unset | None = UNSET,
    batch_max_queue_size: int | _Unset = UNSET,
    batch_schedule_delay_s: float | _Unset = UNSET,
    batch_max_export_batch_size: int | _Unset = UNSET,
    batch_export_timeout_s: float | _Unset = UNSET,
    metric_export_interval_s: float | _Unset = UNSET,
    prometheus_port: int | _Unset | None = UNSET,
    prometheus_host: str | _Unset = UNSET,
    propagators: Sequence[str] | _Unset = UNSET,
    scrub: bool | _Unset = UNSET,
    scrub_patterns: Sequence[str] | _Unset = UNSET,
    error_window_minutes: int | _Unset | None = UNSET,
    error_max_keys: int | _Unset = UNSET,
    error_rate_windows_minutes: Sequence[float] | _Unset | None = UNSET,
    error_duration_histogram: bool | _Unset = UNSET,
    sentry_dsn: str | _Unset | None = UNSET,
    sentry_environment: str | _Unset | None = UNSET,
    sentry_sample_rate: float | _Unset = UNSET,
    sentry_send_default_pii: bool | _Unset = UNSET,
    sentry_trace_url_template: str | _Unset | None = UNSET,
    logging: bool | _Unset = UNSET,
    log_level: str | int | _Unset = UNSET,
    json_logs: bool | _Unset = UNSET,
    console_colors: bool | _Unset | None = UNSET,
    shutdown_timeout_s: float | _Unset = UNSET,
    drain_s: float | _Unset = UNSET,
    span_processors: Sequence[Any] | _Unset = UNSET,
    span_exporters: Sequence[Any] | _Unset = UNSET,
    metric_readers: Sequence[Any] | _Unset = UNSET,
    log_exporters: Sequence[Any] | _Unset = UNSET,
    force: bool = False,
) -> Telemetry:
    """Configure traces, metrics and logs for this process; call once at start.

    Every option also reads its environment variable (keyword > environment > default); see
    ``docs/configuration.md``. A second call warns and returns the existing handle unless
    ``force=True``, which shuts the old pipelines down and installs new ones.

    Raises:
        ConfigurationError: an option has a bad value (the message names option, value and
            what is accepted). Nothing is installed in that case.
    """
    global _atexit_registered
    options = Options(
        service_name=service_name,
        service_version=service_version,
        environment=environment,
        resource_attributes=resource_attributes,
        exporter=exporter,
        otlp_endpoint=otlp_endpoint,
        otlp_protocol=otlp_protocol,
        otlp_headers=otlp_headers,
        sample_rate=sample_rate,
        count_unsampled=count_unsampled,
        max_span_attributes=max_span_attributes,
        max_span_events=max_span_events,
        max_attribute_length=max_attribute_length,
        batch_max_queue_size=batch_max_queue_size,
        batch_schedule_delay_s=batch_schedule_delay_s,
        batch_max_export_batch_size=batch_max_export_batch_size,
        batch_export_timeout_s=batch_export_timeout_s,
        metric_export_interval_s=metric_export_interval_s,
        prometheus_port=prometheus_port,
        prometheus_host=prometheus_host,
        propagators=propagators,
        scrub=scrub,
        scrub_patterns=scrub_patterns,
        error_window_minutes=error_window_minutes,
        error_max_keys=error_max_keys,
        error_rate_windows_minutes=error_rate_windows_minutes,
        error_duration_histogram=error_duration_histogram,
        sentry_dsn=sentry_dsn,
        sentry_environment=sentry_environment,
        sentry_sample_rate=sentry_sample_rate,
        sentry_send_default_pii=sentry_send_default_pii,
        sentry_trace_url_template=sentry_trace_url_template,
        logging=logging,
        log_level=log_level,
        json_logs=json_logs,
        console_colors=console_colors,
        shutdown_timeout_s=shutdown_timeout_s,
        drain_s=drain_s,
        span_processors=span_processors,
        span_exporters=span_exporters,
        metric_readers=metric_readers,
        log_exporters=log_exporters,
    )
    with _lock:
        current = HUB.current
        if current is not None and not force:
            warnings.warn(
                "flowtel.configure_telemetry() was already called; returning the existing "
                "handle (pass force=True to reconfigure)",
                RuntimeWarning,
                stacklevel=2,
            )
            return current
        settings = resolve(options)
        if current is not None:
            current.shutdown()
        telemetry = _build(settings)
        HUB.install(telemetry)
        if not _atexit_registered:
            atexit.register(_shutdown_at_exit)
            _atexit_registered = True
        return telemetry


def _shutdown_at_exit() -> None:
    telemetry = HUB.current
    if telemetry is not None:
        telemetry.shutdown()


def _build(settings: Settings) -> Telemetry:
    set_scrubber(Scrubber(settings.scrub_patterns, enabled=settings.scrub))
    if settings.sdk_disabled:
        return Telemetry(
            settings,
            trace_api.NoOpTracerProvider(),
            metrics_api.NoOpMeterProvider(),
            NoOpLoggerProvider(),
        )

    from opentelemetry.sdk.resources import Resource

    resource = Resource.create(dict(settings.resource_attributes))
    guard = ExportGuard(
        shutdown_timeout_s=settings.shutdown_timeout_s,
        export_timeout_s=settings.batch_export_timeout_s,
    )
    tracer_provider = _tracer_provider(settings, resource, guard)
    meter_provider, readers, prometheus_port = _meter_provider(settings, resource, guard)
    logger_provider = _logger_provider(settings, resource, guard)
    telemetry = Telemetry(settings, tracer_provider, meter_provider, logger_provider)
    telemetry.prometheus_port = prometheus_port
    telemetry.resource = resource
    telemetry.metric_readers = tuple(readers)
    if settings.exporter == "otlp":
        telemetry.export_guard = guard
        guard.instrument(telemetry.meter)
    _install_globals(telemetry)
    _install_features(telemetry)
    return telemetry


def _install_features(telemetry: Telemetry) -> None:
    """Switch on what the settings ask for, each feature through its own private hook."""
    settings = telemetry.settings
    if settings.error_window_minutes:
        from flowtel.errors._api import _install as install_errors

        install_errors(telemetry)
    if settings.sentry_dsn:
        from flowtel.sentry._install import _install as install_sentry

        install_sentry(telemetry)
    if settings.logging:
        from flowtel.logs._handler import _install as install_logging

        install_logging(telemetry)


def _install_globals(telemetry: Telemetry) -> None:
    """Point the global providers at the new pipelines (see :mod:`flowtel._core._proxy`)."""
    from flowtel._core._gauge import bind_global_provider

    _proxy.install(telemetry.tracer_provider, telemetry.meter_provider, telemetry.logger_provider)
    # Breakers, limiters, lifecycles and readiness monitors created earlier report their gauges
    # through the new provider too.
    bind_global_provider()
    _install_propagators(telemetry.settings.propagators)


def _tracer_provider(
    settings: Settings, resource: Any, guard: ExportGuard
) -> trace_api.TracerProvider:
    from opentelemetry.sdk.trace import SpanLimits
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    from flowtel.tracing._provider import FlowtelTracerProvider
    from flowtel.tracing._sampler import RatioSampler

    provider = FlowtelTracerProvider(
        sampler=RatioSampler(
            settings.sample_rate,
            parent_based=settings.parent_based,
            record_unsampled=settings.count_unsampled,
        ),
        resource=resource,
        shutdown_on_exit=False,  # flowtel's own exit hook is bounded; the SDK's is not
        span_limits=SpanLimits(
            max_span_attributes=settings.max_span_attributes,
            max_events=settings.max_span_events,
            max_attribute_length=settings.max_attribute_length,
        ),
    )
    if settings.exporter == "otlp":
        from flowtel._export._batch import BoundedBatchSpanProcessor
        from flowtel._export._otlp import span_exporter

        provider.add_span_processor(
            BoundedBatchSpanProcessor(
                span_exporter(settings.otlp["traces"]),
                guard,
                max_queue_size=settings.batch_max_queue_size,
                schedule_delay_s=settings.batch_schedule_delay_s,
                max_export_batch_size=settings.batch_max_export_batch_size,
            )
        )
    elif settings.exporter == "console":
        from flowtel._export._console import ConsoleSpanProcessor

        provider.add_span_processor(ConsoleSpanProcessor(colors=settings.console_colors))
    for exporter in settings.span_exporters:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    for processor in settings.span_processors:
        provider.add_span_processor(processor)
    return provider


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
    """Expose metrics for Prometheus scraping in-process (the ``prometheus`` extra)."""
    try:
        import prometheus_client
        from opentelemetry.exporter.prometheus import PrometheusMetricReader
    except ImportError:
        raise ConfigurationError(
            "prometheus_port",
            settings.prometheus_port,
            "a port, with the 'prometheus' extra installed (pip install 'flowtel[prometheus]')",
        ) from None
    reader = PrometheusMetricReader()
    try:
        server, thread = prometheus_client.start_http_server(
            settings.prometheus_port or 0, addr=settings.prometheus_host
        )
    except OSError as exc:
        reader.shutdown()
        raise ConfigurationError(
            "prometheus_port", settings.prometheus_port, f"a free port to bind ({exc})"
        ) from None
    port = int(server.server_address[1])

    original_shutdown = reader.shutdown

    def shutdown(timeout_millis: float = 30_000, **kwargs: Any) -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=1.0)
        original_shutdown(timeout_millis=timeout_millis, **kwargs)

    reader.shutdown = shutdown  # type: ignore[method-assign]
    return reader, port


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
