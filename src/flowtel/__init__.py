"""flowtel: OpenTelemetry-native instrumentation for Python services.

One call at process start, ``configure_telemetry()``, then ``@traced`` on your work. Only
OpenTelemetry is imported here; optional integrations load when they are used.
"""

from __future__ import annotations

from flowtel._telemetry import Telemetry, configure_telemetry
from flowtel.exceptions import ConfigurationError, FlowtelError
from flowtel.tracing import span, traced

__all__ = [
    "ConfigurationError",
    "FlowtelError",
    "Telemetry",
    "configure_telemetry",
    "span",
    "traced",
]
