"""Global providers that delegate: installed once, re-pointed on every reconfiguration.

Why: the OpenTelemetry API lets each global provider be set once per process, and code binds to
it early (``tracer = trace.get_tracer(__name__)`` at import, instrumentation libraries). flowtel
installs one delegating provider per signal the first time it is configured, through the API's
public ``set_*_provider``, and ``configure_telemetry(force=True)`` only changes what they
delegate to. Nobody resets the API's set-once guards, and a tracer or logger obtained before a
reconfiguration follows it.

Meters are the exception the API forces on us: an instrument is bound to the meter that created
it, so instruments created before a reconfiguration keep reporting to the old pipeline. flowtel's
own instruments are re-created on the new provider (see :mod:`flowtel._core._gauge`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from opentelemetry import metrics as metrics_api
from opentelemetry import trace as trace_api
from opentelemetry._logs import (
    Logger,
    LoggerProvider,
    NoOpLoggerProvider,
    get_logger_provider,
    set_logger_provider,
)
from opentelemetry.context import Context
from opentelemetry.trace import Link, Span, SpanKind
from opentelemetry.util.types import Attributes

if TYPE_CHECKING:  # the API's return type, named only for the type checker
    from opentelemetry.util._decorator import _AgnosticContextManager

__all__ = [
    "DelegatingLoggerProvider",
    "DelegatingMeterProvider",
    "DelegatingTracerProvider",
    "after_install",
    "delegate",
    "install",
]

_log = logging.getLogger("flowtel")


def _flush(target: Any, timeout_millis: float) -> bool:
    """The target's ``force_flush`` (the API's no-op providers have none: nothing to flush)."""
    flush = getattr(target, "force_flush", None)
    return bool(flush(timeout_millis)) if flush is not None else True


class DelegatingTracerProvider(trace_api.TracerProvider):
    """The global TracerProvider flowtel installs: every call goes to :attr:`target`."""

    def __init__(self, target: trace_api.TracerProvider) -> None:
        self.target = target
        self.generation = 0

    def get_tracer(
        self,
        instrumenting_module_name: str,
        instrumenting_library_version: str | None = None,
        schema_url: str | None = None,
        attributes: Attributes | None = None,
    ) -> trace_api.Tracer:
        return _DelegatingTracer(
            self, (instrumenting_module_name, instrumenting_library_version, schema_url, attributes)
        )

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return _flush(self.target, timeout_millis)


class _DelegatingTracer(trace_api.Tracer):
    """A tracer that re-resolves itself on the provider's current target after a swap."""

    def __init__(self, provider: DelegatingTracerProvider, key: tuple[Any, ...]) -> None:
        self._provider = provider
        self._key = key
        self._generation = -1
        self._tracer: trace_api.Tracer = trace_api.NoOpTracer()

    def _current(self) -> trace_api.Tracer:
        provider = self._provider
        if self._generation != provider.generation:
            name, version, schema_url, attributes = self._key
            self._tracer = provider.target.get_tracer(name, version, schema_url, attributes)
            self._generation = provider.generation
        return self._tracer

    def start_span(
        self,
        name: str,
        context: Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
    ) -> Span:
        return self._current().start_span(
            name,
            context,
            kind,
            attributes,
            links,
            start_time,
            record_exception,
            set_status_on_exception,
        )

    def start_as_current_span(  # the delegate's own context manager, unchanged
        self,
        name: str,
        context: Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
        end_on_exit: bool = True,
    ) -> _AgnosticContextManager[Span]:
        return self._current().start_as_current_span(
            name,
            context,
            kind,
            attributes,
            links,
            start_time,
            record_exception,
            set_status_on_exception,
            end_on_exit,
        )


class DelegatingMeterProvider(metrics_api.MeterProvider):
    """The global MeterProvider flowtel installs: meters come from :attr:`target`."""

    def __init__(self, target: metrics_api.MeterProvider) -> None:
        self.target = target

    def get_meter(
        self,
        name: str,
        version: str | None = None,
        schema_url: str | None = None,
        attributes: Attributes | None = None,
    ) -> metrics_api.Meter:
        return self.target.get_meter(name, version, schema_url, attributes)

    def force_flush(self, timeout_millis: float = 30_000) -> bool:
        return _flush(self.target, timeout_millis)


class DelegatingLoggerProvider(LoggerProvider):
    """The global LoggerProvider flowtel installs: every logger follows :attr:`target`."""

    def __init__(self, target: LoggerProvider) -> None:
        self.target = target
        self.generation = 0

    def get_logger(
        self,
        name: str,
        version: str | None = None,
        schema_url: str | None = None,
        attributes: Attributes | None = None,
    ) -> Logger:
        return _DelegatingLogger(self, (name, version, schema_url, attributes))

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return _flush(self.target, timeout_millis)


class _DelegatingLogger(Logger):
    def __init__(self, provider: DelegatingLoggerProvider, key: tuple[Any, ...]) -> None:
        super().__init__(key[0], key[1], key[2], key[3])
        self._provider = provider
        self._key = key
        self._generation = -1
        self._logger: Logger | None = None

    def _current(self) -> Logger:
        provider = self._provider
        if self._generation != provider.generation or self._logger is None:
            name, version, schema_url, attributes = self._key
            self._logger = provider.target.get_logger(name, version, schema_url, attributes)
            self._generation = provider.generation
        return self._logger

    def emit(self, record: Any = None, **kwargs: Any) -> None:
        logger = self._current()
        if record is None:
            logger.emit(**kwargs)
        else:
            logger.emit(record)

    def enabled(self, **kwargs: Any) -> bool:  # API >= 1.35; older APIs never call it
        enabled = getattr(self._current(), "enabled", None)
        return True if enabled is None else bool(enabled(**kwargs))


_installed: tuple[DelegatingTracerProvider, DelegatingMeterProvider, DelegatingLoggerProvider]
_installed = (
    DelegatingTracerProvider(trace_api.NoOpTracerProvider()),
    DelegatingMeterProvider(metrics_api.NoOpMeterProvider()),
    DelegatingLoggerProvider(NoOpLoggerProvider()),
)
_globals_set = False
_foreign_logged = False
_after_install: list[Callable[[], None]] = []


def after_install(callback: Callable[[], None]) -> None:
    """Have every later :func:`install` call ``callback`` once the delegates point at the new
    pipelines (once per function). Gauges register when the first one is made, so a process
    that has none never loads them."""
    if callback not in _after_install:
        _after_install.append(callback)


def install(
    tracer_provider: trace_api.TracerProvider,
    meter_provider: metrics_api.MeterProvider,
    logger_provider: LoggerProvider,
) -> None:
    """Point the global providers at these (installing the delegates on first use).

    When another library set a global provider before flowtel, the API keeps it (its set-once
    rule); flowtel then warns once and its own code keeps using its providers directly.
    """
    global _globals_set, _foreign_logged
    tracers, meters, loggers = _installed
    tracers.target, meters.target, loggers.target = tracer_provider, meter_provider, logger_provider
    tracers.generation += 1
    loggers.generation += 1
    if not _globals_set:
        _globals_set = True
        trace_api.set_tracer_provider(tracers)
        metrics_api.set_meter_provider(meters)
        set_logger_provider(loggers)
    foreign = [
        kind
        for kind, current, ours in (
            ("TracerProvider", trace_api.get_tracer_provider(), tracers),
            ("MeterProvider", metrics_api.get_meter_provider(), meters),
            ("LoggerProvider", get_logger_provider(), loggers),
        )
        if current is not ours
    ]
    if foreign and not _foreign_logged:
        _foreign_logged = True
        _log.warning(
            "flowtel: another global OpenTelemetry %s was set before configure_telemetry(); "
            "it stays the global one (the API allows setting it once). Call "
            "configure_telemetry() before other OpenTelemetry setup.",
            " and ".join(foreign),
        )
    for callback in list(_after_install):
        callback()


def delegate(provider: Any) -> Any:
    """The provider a flowtel delegate points at, or ``provider`` itself."""
    if isinstance(
        provider, DelegatingTracerProvider | DelegatingMeterProvider | DelegatingLoggerProvider
    ):
        return provider.target
    return provider


def global_meter_provider() -> metrics_api.MeterProvider:
    """The MeterProvider behind the global one (the real pipeline, not the delegate)."""
    resolved: metrics_api.MeterProvider = delegate(metrics_api.get_meter_provider())
    return resolved


def targets() -> Mapping[str, Any]:
    """What the delegates point at now (for tests and ``flowtel doctor``)."""
    tracers, meters, loggers = _installed
    return {"traces": tracers.target, "metrics": meters.target, "logs": loggers.target}
