"""The probe endpoints and their URL paths (which ``flowtel.fastapi`` leaves untraced)."""

from __future__ import annotations

import enum
import weakref
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

__all__ = ["Probe", "ProbePaths", "probe_paths", "remember_paths"]


class Probe(enum.StrEnum):
    """The four probe endpoints."""

    ALIVE = "alive"
    READY = "ready"
    STARTUP = "startup"
    HEALTH = "health"


@dataclass(frozen=True, slots=True)
class ProbePaths:
    """URL paths of the probes; change them when they clash with your routes."""

    alive: str = "/alive"
    ready: str = "/ready"
    startup: str = "/startup"
    health: str = "/health"

    def as_tuple(self) -> tuple[str, ...]:
        """All four paths."""
        return (self.alive, self.ready, self.startup, self.health)


_PROBE_PATHS: weakref.WeakKeyDictionary[Any, ProbePaths] = weakref.WeakKeyDictionary()


def probe_paths(app: object) -> tuple[str, ...]:
    """The probe paths ``add_k8s_probes`` gave ``app`` (the defaults if it was not called)."""
    try:
        return _PROBE_PATHS.get(app, ProbePaths()).as_tuple()
    except TypeError:  # not weak-referenceable
        return ProbePaths().as_tuple()


def remember_paths(app: object, paths: ProbePaths) -> None:
    """Record the paths ``add_k8s_probes`` gave ``app`` (when it can be weakly referenced)."""
    with suppress(TypeError):  # an app that cannot be weakly referenced keeps the defaults
        _PROBE_PATHS[app] = paths
