"""Examples mypy --strict must accept: flowtel.logging and flowtel.testing as users call them."""

from __future__ import annotations

import logging
from typing import Any, assert_type

from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk.trace import ReadableSpan

from flowtel.logs import (
    ConsoleFormatter,
    JsonFormatter,
    TraceContextFilter,
    add_trace_context,
    current_span_id,
    current_trace_id,
)
from flowtel.testing import HistogramValue, TelemetryCapture

assert_type(current_trace_id(), str | None)
assert_type(current_span_id(), str | None)

handler = logging.StreamHandler()
handler.setFormatter(JsonFormatter(service_name="orders"))
handler.setFormatter(ConsoleFormatter())
handler.addFilter(TraceContextFilter())
event = add_trace_context(None, "info", {"event": "hi"})


def check(telemetry: TelemetryCapture) -> None:
    assert_type(telemetry.find_span("checkout"), ReadableSpan)
    assert_type(telemetry.spans, list[ReadableSpan])
    assert_type(telemetry.logs, list[ReadableLogRecord])
    assert_type(telemetry.log_messages(13), list[str])
    assert_type(telemetry.metric_value("orders", {"region": "eu"}), int | float | HistogramValue)
    tree = telemetry.span_tree(attributes=False)
    assert_type(tree, list[dict[str, Any]])
