"""flowtel: OpenTelemetry-native instrumentation for Python services.

One call at process start, ``configure_telemetry()``, then ``@traced`` on your work. Only
OpenTelemetry is imported here; the other public names load on first use (PEP 562), so
``import flowtel`` stays cheap and never imports FastAPI, Sentry or gRPC.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from flowtel._telemetry import Telemetry, configure_telemetry
from flowtel.exceptions import ConfigurationError, FlowtelError, StartupError
from flowtel.tracing import span, traced

if TYPE_CHECKING:
    from flowtel.errors import ErrorStats, get_error_stats, record_error
    from flowtel.fastapi import instrument_fastapi
    from flowtel.lifecycle import LifecycleState, managed_lifecycle, register_shutdown_hook
    from flowtel.logging import current_span_id, current_trace_id
    from flowtel.probes import add_k8s_probes
    from flowtel.readiness import register_readiness_check
    from flowtel.startup import StartupOrchestrator, register_startup_check, startup_report

__all__ = [
    "ConfigurationError",
    "ErrorStats",
    "FlowtelError",
    "LifecycleState",
    "StartupError",
    "StartupOrchestrator",
    "Telemetry",
    "add_k8s_probes",
    "configure_telemetry",
    "current_span_id",
    "current_trace_id",
    "get_error_stats",
    "instrument_fastapi",
    "managed_lifecycle",
    "record_error",
    "register_readiness_check",
    "register_shutdown_hook",
    "register_startup_check",
    "span",
    "startup_report",
    "traced",
]

_LAZY: dict[str, str] = {
    "ErrorStats": "flowtel.errors",
    "get_error_stats": "flowtel.errors",
    "record_error": "flowtel.errors",
    "instrument_fastapi": "flowtel.fastapi",
    "LifecycleState": "flowtel.lifecycle",
    "managed_lifecycle": "flowtel.lifecycle",
    "register_shutdown_hook": "flowtel.lifecycle",
    "add_k8s_probes": "flowtel.probes",
    "current_span_id": "flowtel.logging",
    "current_trace_id": "flowtel.logging",
    "register_readiness_check": "flowtel.readiness",
    "StartupOrchestrator": "flowtel.startup",
    "register_startup_check": "flowtel.startup",
    "startup_report": "flowtel.startup",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'flowtel' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
