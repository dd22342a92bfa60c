"""flowtel: OpenTelemetry-native instrumentation for Python services.

One call at process start, ``configure_telemetry()``, then ``@traced`` on your work. Only
OpenTelemetry is imported here; the other public names load on first use (PEP 562), so
``import flowtel`` stays cheap and never imports FastAPI, Sentry or gRPC.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flowtel._configure import configure_telemetry
from flowtel._core._telemetry import Telemetry
from flowtel.exceptions import ConfigurationError, FlowtelError, StartupError
from flowtel.tracing import span, traced

if TYPE_CHECKING:
    from flowtel.errors import ErrorStats, get_error_stats, record_error
    from flowtel.fastapi import instrument_fastapi
    from flowtel.lifecycle import (
        LifecycleState,
        StartupOrchestrator,
        add_k8s_probes,
        managed_lifecycle,
        register_readiness_check,
        register_shutdown_hook,
        register_startup_check,
        startup_report,
    )
    from flowtel.logs import current_span_id, current_trace_id
    from flowtel.tracing import keep_trace

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
    "keep_trace",
    "managed_lifecycle",
    "record_error",
    "register_readiness_check",
    "register_shutdown_hook",
    "register_startup_check",
    "span",
    "startup_report",
    "traced",
]

_ERRORS = frozenset({"ErrorStats", "get_error_stats", "record_error"})
_LIFECYCLE = frozenset(
    {
        "LifecycleState",
        "StartupOrchestrator",
        "add_k8s_probes",
        "managed_lifecycle",
        "register_readiness_check",
        "register_shutdown_hook",
        "register_startup_check",
        "startup_report",
    }
)
_LOGS = frozenset({"current_span_id", "current_trace_id"})


def __getattr__(name: str) -> Any:
    # The features load on first use (PEP 562): ``import flowtel`` stays cheap.
    module: Any
    if name in _ERRORS:
        from flowtel import errors as module
    elif name in _LIFECYCLE:
        from flowtel import lifecycle as module
    elif name in _LOGS:
        from flowtel import logs as module
    elif name == "keep_trace":
        from flowtel import tracing as module
    elif name == "instrument_fastapi":
        from flowtel import fastapi as module
    else:
        raise AttributeError(f"module 'flowtel' has no attribute {name!r}")
    value = getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
