"""``configure_telemetry()`` and the :class:`Telemetry` handle it returns.

One call builds the TracerProvider, MeterProvider and LoggerProvider around one Resource, installs
them as the OpenTelemetry globals, and switches on the features the settings ask for. Every
feature plugs in through OpenTelemetry's own extension points (span processors, metric readers,
log processors); nothing here is a parallel pipeline.
"""

from __future__ import annotations

import atexit
import importlib
import logging
import os
import sys
import threading
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from opentelemetry import metrics as metrics_api
from opentelemetry import trace as trace_api
from opentelemetry._logs import LoggerProvider as ApiLoggerProvider
from opentelemetry._logs import NoOpLoggerProvider

from flowtel import _config
from flowtel._config import UNSET, Settings, _Unset
from flowtel._scrub import Scrubber, set_scrubber
from flowtel.exceptions import ConfigurationError

if TYPE_CHECKING:
    from flowtel._export_guard import ExportGuard

_log = logging.getLogger("flowtel")

_lock = threading.RLock()
_current: Telemetry | None = None
_generation = 0
_atexit_registered = False

# Feature modules and the setting that switches each on. Each exposes ``install(telemetry)``.
_FEATURES: tuple[tuple[str, Callable[[Settings], bool]], ...] = (
    ("flowtel.errors", lambda s: bool(s.error_window_minutes)),
    ("flowtel.sentry", lambda s: bool(s.sentry_dsn)),
    ("flowtel.logging", lambda s: s.logging),
    # Only when already imported: the module applies the settings itself when imported later.
    ("flowtel.lifecycle", lambda s: "flowtel.lifecycle" in sys.modules),
)


def run_bounded(fn: Callable[[], object], timeout_s: float, what: str) -> bool:
    """Run ``fn`` in a daemon thread and wait at most ``timeout_s``.

    Why a thread: exporters' flush/shutdown can block on the network far longer than a
    Kubernetes grace period (retry loops, black-holed collectors). Waiting on a daemon thread
    bounds the caller; whatever is still in flight is abandoned, never awaited.
    Returns True when ``fn`` finished in time and returned a truthy value or None.
    """
    outcome: list[object] = []

    def target() -> None:
        try:
            outcome.append(fn())
        except Exception:
            _log.warning("flowtel: %s failed", what, exc_info=True)
            outcome.append(False)

    worker = threading.Thread(target=target, name=f"flowtel-{what}", daemon=True)
    worker.start()
    worker.join(max(timeout_s, 0.0))
    if worker.is_alive():
        _log.warning("flowtel: %s did not finish within %.1fs; abandoned", what, timeout_s)
        return False
    return bool(outcome) and outcome[0] is not False


class Telemetry:
    """The handle ``configure_telemetry()`` returns: providers, and bounded flush/shutdown.

    Thread-safe. ``shutdown`` is idempotent and runs the registered shutdown callbacks (newest
    first) before the providers, so feature modules can flush into still-open pipelines.
    """

    def __init__(
        self,
        settings: Settings,
        tracer_provider: trace_api.TracerProvider,
        meter_provider: metrics_api.MeterProvider,
        logger_provider: ApiLoggerProvider,
    ) -> None:
        self.settings = settings
        self.tracer_provider = tracer_provider
        self.meter_provider = meter_provider
        self.logger_provider = logger_provider
        self.tracer = tracer_provider.get_tracer("flowtel")
        self.meter = meter_provider.get_meter("flowtel")
        self.prometheus_port: int | None = None
        self.resource: Any = None
        """The SDK Resource shared by all three providers (None when the SDK is disabled)."""
        self.metric_readers: tuple[Any, ...] = ()
        """Every MetricReader of ``meter_provider``: the OTLP, Prometheus and given readers."""
        self.export_guard: ExportGuard | None = None
        """Deadline and loss accounting of the OTLP pipelines (None without OTLP export)."""
        self._callbacks: list[Callable[[], object]] = []
        self._closed = False
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        """False when ``OTEL_SDK_DISABLED=true`` made everything a no-op."""
        return not self.settings.sdk_disabled

    def add_shutdown_callback(self, callback: Callable[[], object]) -> None:
        """Run ``callback`` at shutdown, before the providers shut down (newest first)."""
        with self._lock:
            self._callbacks.append(callback)

    def force_flush(self, timeout_s: float | None = None) -> bool:
        """Export everything buffered; return False if that did not finish within the budget."""
        budget = self.settings.shutdown_timeout_s if timeout_s is None else timeout_s
        millis = int(budget * 1000)

        def flush() -> bool:
            ok = True
            for provider in (self.tracer_provider, self.meter_provider, self.logger_provider):
                flush_fn = getattr(provider, "force_flush", None)
                if flush_fn is not None:
                    ok = bool(flush_fn(millis)) and ok
            return ok

        return run_bounded(flush, budget, "force_flush")

    def shutdown(self, timeout_s: float | None = None) -> bool:
        """Flush and stop all pipelines within ``timeout_s`` (default ``shutdown_timeout_s``)."""
        with self._lock:
            if self._closed:
                return True
            self._closed = True
            callbacks = list(reversed(self._callbacks))
        budget = self.settings.shutdown_timeout_s if timeout_s is None else timeout_s
        if self.export_guard is not None:
            self.export_guard.begin_shutdown(budget)  # exports stop waiting at this deadline

        def stop() -> bool:
            for callback in callbacks:
                try:
                    callback()
                except Exception:
                    _log.warning("flowtel: shutdown callback failed", exc_info=True)
            for provider in (self.tracer_provider, self.meter_provider, self.logger_provider):
                stop_fn = getattr(provider, "shutdown", None)
                if stop_fn is not None:
                    stop_fn()
            return True

        return run_bounded(stop, budget, "shutdown")


def current() -> Telemetry | None:
    """The handle installed by the last ``configure_telemetry()``, if any."""
    return _current


def generation() -> int:
    """Bumped on every (re)configuration so cached tracers know to refresh."""
    return _generation


def invalidate_caches() -> None:
    """Make every ``@traced`` site re-resolve its tracer and attribute preset on its next call."""
    global _generation
    with _lock:
        _generation += 1


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
    global _current, _generation, _atexit_registered
    options = {k: v for k, v in locals().items() if k != "force"}
    with _lock:
        if _current is not None and not force:
            warnings.warn(
                "flowtel.configure_telemetry() was already called; returning the existing "
                "handle (pass force=True to reconfigure)",
                RuntimeWarning,
                stacklevel=2,
            )
            return _current
        settings = _config.resolve(**options)
        if _current is not None:
            _current.shutdown()
        telemetry = _build(settings)
        _current = telemetry
        _generation += 1
        if not _atexit_registered:
            atexit.register(_shutdown_at_exit)
            _atexit_registered = True
        return telemetry


def _shutdown_at_exit() -> None:
    telemetry = _current
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

    from flowtel._export_guard import ExportGuard

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
    for module_name, enabled in _FEATURES:
        if enabled(settings):
            importlib.import_module(module_name).install(telemetry)
    return telemetry


def _tracer_provider(
    settings: Settings, resource: Any, guard: ExportGuard
) -> trace_api.TracerProvider:
    from opentelemetry.sdk.trace import SpanLimits
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    from flowtel._provider import FlowtelTracerProvider
    from flowtel._sampling import RatioSampler

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
        from flowtel._batch_processor import BoundedBatchSpanProcessor
        from flowtel._exporters import span_exporter

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
        from flowtel._console import ConsoleSpanProcessor

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
        from flowtel._exporters import metric_exporter
        from flowtel._guarded_exporters import GuardedMetricExporter

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
        from flowtel._batch_processor import BoundedBatchLogRecordProcessor
        from flowtel._exporters import log_exporter

        provider.add_log_record_processor(
            BoundedBatchLogRecordProcessor(log_exporter(settings.otlp["logs"]), guard)
        )
    for exporter in settings.log_exporters:
        provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    return provider


def _install_globals(telemetry: Telemetry) -> None:
    """Make the new providers the OpenTelemetry globals, replacing earlier flowtel ones.

    The API allows setting each global once; flowtel owns process-wide configuration, so on
    ``force=True`` it resets those once-guards (private API, guarded) before setting again.
    """
    from opentelemetry import _logs as logs_api
    from opentelemetry.util._once import Once

    try:
        trace_api._TRACER_PROVIDER_SET_ONCE = Once()
        metrics_internal = importlib.import_module("opentelemetry.metrics._internal")
        metrics_internal._METER_PROVIDER_SET_ONCE = Once()  # type: ignore[attr-defined]
        logs_internal = importlib.import_module("opentelemetry._logs._internal")
        logs_internal._LOGGER_PROVIDER_SET_ONCE = Once()  # type: ignore[attr-defined]
    except Exception:  # an SDK layout change: fall back to the API's set-once behaviour
        _log.debug("flowtel: could not reset OpenTelemetry globals", exc_info=True)
    trace_api.set_tracer_provider(telemetry.tracer_provider)
    metrics_api.set_meter_provider(telemetry.meter_provider)
    logs_api.set_logger_provider(telemetry.logger_provider)
    # Breakers, limiters, lifecycles and readiness monitors created earlier report their gauges
    # through the new provider too (neither module is loaded unless those features were used).
    for module_name in ("flowtel._resilience_telemetry", "flowtel._gauge"):
        module = sys.modules.get(module_name)
        if module is not None:
            module.bind_global_provider()

    _install_propagators(telemetry.settings.propagators)


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
