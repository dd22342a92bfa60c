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
import threading
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry import metrics as metrics_api
from opentelemetry import trace as trace_api
from opentelemetry._logs import NoOpLoggerProvider

from flowtel._core import _proxy
from flowtel._core._options import UNSET, Options, _Unset
from flowtel._core._parse import checked_keywords
from flowtel._core._scrub import Scrubber, current_scrubber, set_scrubber
from flowtel._core._settings import Settings, resolve
from flowtel._core._telemetry import HUB, Telemetry
from flowtel._export._guard import ExportGuard
from flowtel._pipelines import _console, _install_propagators, _logger_provider, _meter_provider

__all__ = ["configure_telemetry"]

_log = logging.getLogger("flowtel")
_lock = threading.RLock()
_atexit_registered = False


@checked_keywords
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
    sampling: Any = UNSET,
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
    scrub_keys: Sequence[str] | _Unset = UNSET,
    error_window_minutes: int | _Unset | None = UNSET,
    error_max_keys: int | _Unset = UNSET,
    error_rate_windows_minutes: Sequence[float] | _Unset | None = UNSET,
    error_duration_histogram: bool | _Unset = UNSET,
    error_dimensions: Sequence[str] | str | _Unset | None = UNSET,
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
    console_verbosity: str | _Unset = UNSET,
    instrument: Sequence[str] | str | _Unset | None = UNSET,
    library_log_level: str | int | _Unset = UNSET,
    force: bool = False,
) -> Telemetry:
    """Configure traces, metrics and logs for this process; call once at start.

    Every option also reads its environment variable (keyword > environment > default); see
    ``docs/configuration.md``. A second call warns and returns the existing handle unless
    ``force=True``, which builds new pipelines, swaps them in, and then shuts the old ones down
    (a span ending on an old pipeline after that is counted as ``after_shutdown``).

    Raises:
        ConfigurationError: an option has a bad value (the message names option, value and
            what is accepted), or the pipeline cannot be built (e.g. a busy
            ``prometheus_port``). Nothing is installed in that case, and a pipeline configured
            before keeps working.
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
        sampling=sampling,
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
        scrub_keys=scrub_keys,
        error_window_minutes=error_window_minutes,
        error_max_keys=error_max_keys,
        error_rate_windows_minutes=error_rate_windows_minutes,
        error_duration_histogram=error_duration_histogram,
        error_dimensions=error_dimensions,
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
        console_verbosity=console_verbosity,
        instrument=instrument,
        library_log_level=library_log_level,
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
        if settings.sentry_dsn:  # before anything is built: a DSN sentry-sdk rejects fails here
            from flowtel.sentry._install import check_dsn

            check_dsn(settings.sentry_dsn)
        # Transactional: build and install the new pipeline, then shut the old one down. If the
        # build fails, nothing changed and the old pipeline keeps exporting.
        previous_scrubber = current_scrubber()
        try:
            telemetry = _build(settings)
        except BaseException:
            set_scrubber(previous_scrubber)
            raise
        HUB.install(telemetry)
        if current is not None:
            current.shutdown()  # late spans of the old pipeline are counted (after_shutdown)
        if not _atexit_registered:
            atexit.register(_shutdown_at_exit)
            _atexit_registered = True
        return telemetry


def _shutdown_at_exit() -> None:
    telemetry = HUB.current
    if telemetry is not None:
        telemetry.shutdown()


def _build(settings: Settings) -> Telemetry:
    set_scrubber(Scrubber(settings.scrub_keys, settings.scrub_patterns, enabled=settings.scrub))
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
    built: list[Any] = []  # shut down again if a later stage fails: no half pipeline runs on
    try:
        console = _console(settings) if settings.exporter == "console" else None
        tracer_provider = _tracer_provider(settings, resource, guard, console)
        built.append(tracer_provider)
        meter_provider, readers, prometheus_port = _meter_provider(settings, resource, guard)
        built.append(meter_provider)
        logger_provider = _logger_provider(settings, resource, guard)
    except BaseException:
        guard.begin_shutdown(0.5)
        for provider in built:
            try:
                provider.shutdown()
            except Exception:
                _log.debug("flowtel: cleaning up a failed build", exc_info=True)
        raise
    telemetry = Telemetry(settings, tracer_provider, meter_provider, logger_provider)
    telemetry.prometheus_port = prometheus_port
    telemetry.resource = resource
    telemetry.metric_readers = tuple(readers)
    if settings.exporter == "otlp":
        telemetry.export_guard = guard
        guard.instrument(telemetry.meter)
    if console is not None:
        console.instrument(telemetry.meter)
        console.activate()  # log records print through it, under their span
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
    if settings.sampling is not None:
        from flowtel.tracing._tail import _install as install_sampling

        install_sampling(telemetry)
    if settings.logging:
        from flowtel.logs._handler import _install as install_logging

        install_logging(telemetry)
    if settings.instrument:
        from flowtel._instrumentations import _install as install_instrumentations

        install_instrumentations(telemetry)


def _install_globals(telemetry: Telemetry) -> None:
    """Point the global providers at the new pipelines (see :mod:`flowtel._core._proxy`); gauges
    made earlier move to the new MeterProvider through ``_proxy.after_install``."""
    _proxy.install(telemetry.tracer_provider, telemetry.meter_provider, telemetry.logger_provider)
    _install_propagators(telemetry.settings.propagators)


def _tracer_provider(
    settings: Settings, resource: Any, guard: ExportGuard, console: Any = None
) -> trace_api.TracerProvider:
    from opentelemetry.sdk.trace import SpanLimits
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    from flowtel.tracing._provider import FlowtelTracerProvider, RatioSampler

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
    export, tail = provider.add_span_processor, None
    if settings.sampling is not None:  # tail sampling: the exporters see whole kept traces
        from flowtel.tracing._tail import TailSamplingProcessor

        tail = TailSamplingProcessor(settings.sampling)
        export = tail.add_exporter
    if settings.exporter == "otlp":
        from flowtel._export._batch import BoundedBatchSpanProcessor
        from flowtel._export._otlp import span_exporter

        export(
            BoundedBatchSpanProcessor(
                span_exporter(settings.otlp["traces"]),
                guard,
                max_queue_size=settings.batch_max_queue_size,
                schedule_delay_s=settings.batch_schedule_delay_s,
                max_export_batch_size=settings.batch_max_export_batch_size,
            )
        )
    elif console is not None:
        export(console)
    for exporter in settings.span_exporters:
        export(SimpleSpanProcessor(exporter))
    if tail is not None:
        provider.add_span_processor(tail)
    for processor in settings.span_processors:
        provider.add_span_processor(processor)
    return provider
