"""Logs: the standard library's logging, bridged to OpenTelemetry log records with trace context.

``configure_telemetry(logging=True)`` (the default) calls :func:`instrument_logging`; the
formatters and the filter are usable on their own. Named ``logs`` so that it never shadows the
standard library's ``logging``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flowtel.logs._handler import (
    DEFAULT_EXCLUDED_LOGGERS,
    OTelLogHandler,
    TraceContextFilter,
    add_trace_context,
    current_span_id,
    current_trace_id,
    instrument_logging,
    is_instrumented,
    uninstrument_logging,
)

__all__ = [
    "DEFAULT_EXCLUDED_LOGGERS",
    "ConsoleFormatter",
    "JsonFormatter",
    "OTelLogHandler",
    "TraceContextFilter",
    "add_trace_context",
    "current_span_id",
    "current_trace_id",
    "instrument_logging",
    "is_instrumented",
    "uninstrument_logging",
]


if TYPE_CHECKING:
    from flowtel.logs._stdout import ConsoleFormatter, JsonFormatter


def __getattr__(name: str) -> Any:
    # The stdout formatters load on first use (PEP 562): an OTLP-only service never needs them.
    if name in ("ConsoleFormatter", "JsonFormatter"):
        from flowtel.logs import _stdout

        return getattr(_stdout, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
