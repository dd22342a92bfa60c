"""How lifecycle work ended: one enum per kind of result, valued as the telemetry strings.

Each is a ``StrEnum`` so ``ShutdownOutcome.TIMEOUT == "timeout"`` and the values on spans,
metrics and ``/health`` are the same strings they always were.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["CheckOutcome", "ProbeOutcome", "ShutdownOutcome", "WorkKind"]


class CheckOutcome(StrEnum):
    """How a startup check (or one attempt of it) ended (``flowtel.startup.outcome``)."""

    SUCCESS = "success"
    FAILED = "failed"
    TIMEOUT = "timeout"
    SKIPPED = "skipped"


class ShutdownOutcome(StrEnum):
    """How a shutdown hook, or the whole shutdown, ended (``flowtel.shutdown.outcome``)."""

    SUCCESS = "success"
    FAILED = "failed"
    TIMEOUT = "timeout"


class ProbeOutcome(StrEnum):
    """A probe answer or a readiness result (``flowtel.probe.outcome``, ``/health`` status).

    ``WARN`` is only used by ``/health`` (serving, but degraded or with a high error rate);
    ``UNKNOWN`` only by a readiness check that has not finished its first run;
    ``TIMEOUT`` only by a readiness check whose last run overran its ``timeout_s``.
    """

    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    TIMEOUT = "timeout"
    UNKNOWN = "unknown"


class WorkKind(StrEnum):
    """What kind of lifecycle work overran its timeout (``flowtel.lifecycle.work``)."""

    STARTUP_CHECK = "startup_check"
    READINESS_CHECK = "readiness_check"
    SHUTDOWN_HOOK = "shutdown_hook"
    FLUSH = "flush"
