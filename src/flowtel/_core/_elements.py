"""Type checks for the SDK objects ``configure_telemetry`` accepts in lists.

Why: ``span_processors=[object()]`` used to disable all tracing silently (the SDK swallows the
``AttributeError`` of every span), and ``metric_readers=[object()]`` raised ``AttributeError``
from deep inside the MeterProvider. Each element is checked where the option is read, so the
error names the option, the element and what is accepted.
"""

from __future__ import annotations

from typing import Any, Final

from flowtel.exceptions import ConfigurationError

__all__ = ["check_elements"]

_METHODS: Final = {
    "span_processors": ("on_start", "on_end", "shutdown", "force_flush"),
    "span_exporters": ("export", "shutdown"),
    "log_exporters": ("export", "shutdown"),
}
_ACCEPTED: Final = {
    "span_processors": "opentelemetry.sdk.trace.SpanProcessor instances",
    "span_exporters": "opentelemetry.sdk.trace.export.SpanExporter instances",
    "log_exporters": "opentelemetry.sdk._logs.export.LogRecordExporter instances",
    "metric_readers": "opentelemetry.sdk.metrics.export.MetricReader instances",
}


def check_elements(option: str, items: tuple[Any, ...]) -> tuple[Any, ...]:
    """Return ``items`` when every element fits ``option``; else a ConfigurationError."""
    if not items or option not in _ACCEPTED:
        return items
    for index, item in enumerate(items):
        if option == "metric_readers":
            from opentelemetry.sdk.metrics.export import MetricReader

            ok = isinstance(item, MetricReader)
        else:  # duck-typed, like the SDK: anything with the hooks it calls
            ok = all(callable(getattr(item, name, None)) for name in _METHODS[option])
        if not ok:
            raise ConfigurationError(f"{option}[{index}]", item, _ACCEPTED[option])
    return items
