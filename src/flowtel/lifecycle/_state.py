"""The lifecycle state enum, kept apart so startup and lifecycle can both use it without a cycle."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["LifecycleState"]


class LifecycleState(StrEnum):
    """Where a service is in its life; probes answer from this and nothing else.

    ``STARTING -> READY | DEGRADED | FAILED``, then ``READY | DEGRADED -> DRAINING -> STOPPED``.
    ``FAILED`` and ``STARTING`` go straight to ``DRAINING``/``STOPPED`` on shutdown.
    """

    STARTING = "STARTING"
    READY = "READY"
    DEGRADED = "DEGRADED"
    DRAINING = "DRAINING"
    STOPPED = "STOPPED"
    FAILED = "FAILED"

    @property
    def serving(self) -> bool:
        """True when startup finished well enough to take traffic (READY or DEGRADED)."""
        return self in (LifecycleState.READY, LifecycleState.DEGRADED)
