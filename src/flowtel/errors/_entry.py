"""Which finished spans are entries (requests, jobs, messages), and whether an entry failed.

Why a second level: one exception that escapes three nested ``@traced`` functions fails three
operations but one request. The service's error rate (``/health``, the ``flowtel.error_ratio``
gauge, dashboards, alerts) counts entries: one per local root span (no parent, or a remote
parent) and one per span of kind SERVER or CONSUMER, whatever its depth. flowtel's own startup,
shutdown and ``record_error`` spans are not the service's work: they keep their own metrics.

An HTTP server span fails on a 5xx answer, never on a 4xx: by the OpenTelemetry HTTP semantic
conventions a 4xx is the client's error, so the server span's status stays unset.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanContext, SpanKind, StatusCode

from flowtel import semconv
from flowtel.errors._buckets import OTHER_TYPE

__all__ = ["EXCLUDED_NAMES", "EXCLUDED_SCOPES", "entry_failed", "error_type_of", "is_entry"]

EXCLUDED_SCOPES: Final = frozenset({"flowtel.lifecycle", "flowtel.startup", semconv.SCOPE_ERRORS})
"""Instrumentation scopes of flowtel's own lifecycle spans (startup, shutdown, hooks)."""
EXCLUDED_NAMES: Final = frozenset(
    {
        semconv.SPAN_STARTUP,
        semconv.SPAN_STARTUP_CHECK,
        semconv.SPAN_SHUTDOWN,
        semconv.SPAN_SHUTDOWN_HOOK,
        semconv.SPAN_RECORD_ERROR,
    }
)
_SERVER: Final = SpanKind.SERVER
_CONSUMER: Final = SpanKind.CONSUMER
_HTTP_STATUS: Final = (semconv.HTTP_RESPONSE_STATUS_CODE, semconv.HTTP_STATUS_CODE_OLD)


def is_entry(kind: SpanKind, parent: SpanContext | None, name: str, scope: str | None) -> bool:
    """Whether a finished span counts at the entry level."""
    if not (parent is None or parent.is_remote or kind is _SERVER or kind is _CONSUMER):
        return False
    return name not in EXCLUDED_NAMES and scope not in EXCLUDED_SCOPES


def entry_failed(kind: SpanKind, code: StatusCode, attributes: Mapping[str, object]) -> bool:
    """Whether an entry failed: a 5xx on an HTTP server span, else an ERROR status."""
    if kind is _SERVER:
        for key in _HTTP_STATUS:
            status = attributes.get(key)
            if isinstance(status, int) and not isinstance(status, bool):
                return status >= 500
    return code is StatusCode.ERROR


def error_type_of(span: ReadableSpan, attributes: Mapping[str, object]) -> str:
    """A failed span's type: ``error.type``, else its first exception event's, else ``_OTHER``."""
    error_type = attributes.get(semconv.ERROR_TYPE)
    if isinstance(error_type, str) and error_type:
        return error_type
    for event in span.events:
        if event.name == semconv.EVENT_EXCEPTION:
            exc_type = (event.attributes or {}).get(semconv.EXCEPTION_TYPE)
            if isinstance(exc_type, str) and exc_type:
                return exc_type
            break
    return OTHER_TYPE
