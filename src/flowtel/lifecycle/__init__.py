"""Lifecycle: startup checks, readiness, Kubernetes probes, SIGTERM drain and shutdown hooks.

A service moves STARTING → READY → DRAINING → STOPPED (:class:`LifecycleState`); every step
is a span and a metric. :func:`add_k8s_probes` serves the probe endpoints from this state,
:func:`managed_lifecycle` drives it for workers that are not web apps.
"""

from __future__ import annotations

from flowtel.lifecycle._hooks import ShutdownHook
from flowtel.lifecycle._k8s import add_k8s_probes
from flowtel.lifecycle._lifecycle import Lifecycle
from flowtel.lifecycle._liveness import LivenessMonitor
from flowtel.lifecycle._managed import default_lifecycle, managed_lifecycle, register_shutdown_hook
from flowtel.lifecycle._outcomes import CheckOutcome, ProbeOutcome, ShutdownOutcome
from flowtel.lifecycle._paths import Probe, ProbePaths, probe_paths
from flowtel.lifecycle._readiness import (
    ReadinessCheck,
    ReadinessMonitor,
    ReadinessStatus,
    default_readiness,
    register_readiness_check,
)
from flowtel.lifecycle._report import CheckResult, StartupCheck, StartupReport
from flowtel.lifecycle._signals import SignalMode
from flowtel.lifecycle._startup import (
    StartupOrchestrator,
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
]
