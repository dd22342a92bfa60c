"""Logs: the standard library's logging, bridged to OpenTelemetry log records with trace context.

``configure_telemetry(logging=True)`` (the default) calls :func:`instrument_logging`; the
formatters and the filter are usable on their own. Named ``logs`` so that it never shadows the
standard library's ``logging``.
"""

from __future__ import annotations

from flowtel.logs._handler import (
    DEFAULT_EXCLUDED_LOGGERS,
    ConsoleFormatter,
    JsonFormatter,
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
