"""The public API: every public module's ``__all__`` is pinned, sorted, importable and complete.

A change to a public name fails here first, so it is a decision (and a CHANGELOG line), not an
accident of a refactoring.
"""

from __future__ import annotations

import importlib
import pkgutil
import types

import pytest

import flowtel

PINNED: dict[str, list[str]] = {
    "flowtel.cli": ["main"],
    "flowtel.distro": ["FlowtelConfigurator", "FlowtelDistro"],
    "flowtel.errors": [
        "ErrorRateProcessor",
        "ErrorStats",
        "OperationStats",
        "get_error_stats",
        "record_error",
    ],
    "flowtel.exceptions": [
        "CircuitOpenError",
        "ConfigurationError",
        "FlowtelError",
        "RateLimitExceededError",
        "ResilienceError",
        "StartupError",
    ],
    "flowtel.fastapi": ["instrument_fastapi"],
    "flowtel.lifecycle": [
        "CheckOutcome",
        "CheckResult",
        "Lifecycle",
        "LifecycleState",
        "LivenessMonitor",
        "Probe",
        "ProbeOutcome",
        "ProbePaths",
        "ReadinessCheck",
        "ReadinessMonitor",
        "ReadinessStatus",
        "ShutdownHook",
        "ShutdownOutcome",
        "SignalMode",
        "StartupCheck",
        "StartupOrchestrator",
        "StartupReport",
        "add_k8s_probes",
        "default_lifecycle",
        "default_orchestrator",
        "default_readiness",
        "managed_lifecycle",
        "probe_paths",
        "register_readiness_check",
        "register_shutdown_hook",
        "register_startup_check",
        "startup_report",
    ],
    "flowtel.logs": [
        "ConsoleFormatter",
        "DEFAULT_EXCLUDED_LOGGERS",
        "JsonFormatter",
        "OTelLogHandler",
        "TraceContextFilter",
        "add_trace_context",
        "current_span_id",
        "current_trace_id",
        "instrument_logging",
        "is_instrumented",
        "uninstrument_logging",
    ],
    "flowtel.resilience": [
        "Attempt",
        "BreakerMetrics",
        "CallOutcome",
        "CircuitBreaker",
        "CircuitOpenError",
        "CircuitState",
        "Clock",
        "CountWindow",
        "ExceptionMatcher",
        "RateLimitExceededError",
        "RateLimiter",
        "ResilienceError",
        "ResilienceEvent",
        "Retry",
        "RetryOn",
        "StateTransition",
        "Strategy",
        "SystemClock",
        "TimeWindow",
        "Timeout",
        "VirtualClock",
        "circuit_breaker",
        "is_http_429",
        "rate_limit",
        "retry",
        "retry_after_hint",
        "test_mode",
        "timeout",
    ],
    "flowtel.semconv": [
        "ATTRIBUTES",
        "AttributeDef",
        "DURATION_BUCKETS_S",
        "EVENTS",
        "EventDef",
        "Instrument",
        "METRICS",
        "MetricDef",
        "SPANS",
        "SpanDef",
        "metric",
        "prometheus_label",
        "prometheus_name",
        "reference_markdown",
    ],
    "flowtel.sentry": ["SentryBridge", "SentryDropReason", "SentryOutcome", "SentryTag"],
    "flowtel.testing": ["HistogramValue", "TelemetryCapture"],
    "flowtel.tracing": ["Sampling", "SpanScope", "keep_trace", "span", "traced"],
}

TOP_LEVEL = [
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


def _public_modules() -> list[str]:
    names = []
    for info in pkgutil.walk_packages(flowtel.__path__, "flowtel."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            names.append(info.name)
    return sorted(names)


class TestPublicApi:
    def test_top_level_all_is_pinned(self) -> None:
        """flowtel.__all__ is exactly the pinned, sorted list."""
        assert list(flowtel.__all__) == TOP_LEVEL

    def test_every_public_module_is_pinned(self) -> None:
        """Every public module has an __all__, without duplicates, and it is the pinned one."""
        assert _public_modules() == sorted(PINNED)
        for name, expected in PINNED.items():
            module = importlib.import_module(name)
            assert len(set(module.__all__)) == len(module.__all__), name
            assert sorted(module.__all__) == expected, name

    @pytest.mark.parametrize("name", ["flowtel", *sorted(PINNED)])
    def test_every_name_resolves(self, name: str) -> None:
        """Every name in a public __all__ is an attribute of its module."""
        module = importlib.import_module(name)
        for attr in module.__all__:
            assert getattr(module, attr) is not None, f"{name}.{attr}"

    def test_no_public_name_missing_from_all(self) -> None:
        """Every public, non-module attribute of flowtel is listed in __all__."""
        public = {
            name
            for name, value in vars(flowtel).items()
            if not name.startswith("_")
            and not isinstance(value, types.ModuleType)
            and name not in ("annotations", "TYPE_CHECKING", "Any")
        }
        assert public <= set(flowtel.__all__), public - set(flowtel.__all__)

    def test_top_level_names_are_their_modules_objects(self) -> None:
        """A lazily loaded top-level name is the very object its public module exports."""
        for name in flowtel.__all__:
            value = getattr(flowtel, name)
            owners = [importlib.import_module(m) for m in PINNED if name in PINNED[m]]
            assert all(getattr(owner, name) is value for owner in owners), name

    def test_no_feature_install_hook_is_public(self) -> None:
        """Feature hooks are the assembler's business: none is exported."""
        for name, names in PINNED.items():
            assert "install" not in names, name

    def test_all_is_small(self) -> None:
        """The top-level API stays small (about 20 names); the rest lives in public modules."""
        assert len(flowtel.__all__) <= 24
