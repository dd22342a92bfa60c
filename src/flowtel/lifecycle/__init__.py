"""Lifecycle: startup checks, readiness, Kubernetes probes, SIGTERM drain and shutdown hooks.

A service moves STARTING → READY → DRAINING → STOPPED (:class:`LifecycleState`); every step
is a span and a metric. :func:`add_k8s_probes` serves the probe endpoints from this state,
:func:`managed_lifecycle` drives it for workers that are not web apps.
"""

from __future__ import annotations

from flowtel.lifecycle._lifecycle import (
    Lifecycle,
    ShutdownHook,
    default_lifecycle,
    managed_lifecycle,
    register_shutdown_hook,
)
from flowtel.lifecycle._probes import (
    LivenessMonitor,
    Probe,
    ProbePaths,
    add_k8s_probes,
    probe_paths,
)
from flowtel.lifecycle._readiness import (
    ReadinessCheck,
    ReadinessMonitor,
    ReadinessStatus,
    default_readiness,
    register_readiness_check,
)
from flowtel.lifecycle._signals import SignalMode
from flowtel.lifecycle._startup import (
    CheckOutcome,
    CheckResult,
    StartupCheck,
    StartupOrchestrator,
    StartupReport,
    default_orchestrator,
    register_startup_check,
    startup_report,
)
from flowtel.lifecycle._state import LifecycleState

__all__ = [
    "CheckOutcome",
    "CheckResult",
    "Lifecycle",
    "LifecycleState",
    "LivenessMonitor",
    "Probe",
    "ProbePaths",
    "ReadinessCheck",
    "ReadinessMonitor",
    "ReadinessStatus",
    "ShutdownHook",
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
]
