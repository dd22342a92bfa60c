"""The startup timeline: a registered check, its result, and the report of a whole run."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from flowtel._core._scrub import REDACTED, current_scrubber
from flowtel.lifecycle._outcomes import CheckOutcome
from flowtel.lifecycle._state import LifecycleState

__all__ = ["CheckFunc", "CheckResult", "StartupCheck", "StartupReport", "critical_path"]

CheckFunc = Callable[[], Any]
"""A startup check: sync or async, no arguments; it may return a mapping of details."""


@dataclass(frozen=True, slots=True)
class StartupCheck:
    """A registered check and its policy; see :meth:`StartupOrchestrator.add` for the fields."""

    name: str
    func: CheckFunc
    priority: int = 100
    timeout_s: float = 30.0
    depends_on: tuple[str, ...] = ()
    retries: int = 0
    backoff_s: float = 1.0
    backoff_max_s: float = 30.0
    critical: bool = True


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One check in the startup timeline. Times are seconds since startup began."""

    name: str
    priority: int
    critical: bool
    depends_on: tuple[str, ...]
    outcome: CheckOutcome
    attempts: int
    start_s: float
    end_s: float
    details: Mapping[str, Any] = field(default_factory=dict)
    error: str | None = None

    @property
    def ok(self) -> bool:
        """True when the check succeeded."""
        return self.outcome is CheckOutcome.SUCCESS

    @property
    def duration_s(self) -> float:
        """Wall time from first attempt to final outcome, backoff included."""
        return self.end_s - self.start_s

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view (for /health, logs, and the docs)."""
        return {
            "name": self.name,
            "priority": self.priority,
            "critical": self.critical,
            "depends_on": list(self.depends_on),
            "outcome": self.outcome.value,
            "attempts": self.attempts,
            "start_s": round(self.start_s, 6),
            "end_s": round(self.end_s, 6),
            "duration_s": round(self.duration_s, 6),
            "details": dict(self.details),
            "error": self.error,
        }


@dataclass(frozen=True, slots=True)
class StartupReport:
    """The startup timeline: every check, the resulting state and the critical path."""

    state: LifecycleState
    started_at: float
    duration_s: float
    checks: tuple[CheckResult, ...]
    critical_path: tuple[str, ...]

    def check(self, name: str) -> CheckResult:
        """The result of the check called ``name``."""
        for result in self.checks:
            if result.name == name:
                return result
        raise KeyError(name)

    @property
    def failed_critical(self) -> list[str]:
        """Names of the critical checks that did not succeed."""
        return [c.name for c in self.checks if c.critical and not c.ok]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view of the whole report."""
        return {
            "state": self.state.value,
            "started_at": self.started_at,
            "duration_s": round(self.duration_s, 6),
            "sum_of_checks_s": round(sum(c.duration_s for c in self.checks), 6),
            "critical_path": list(self.critical_path),
            "checks": [c.to_dict() for c in self.checks],
        }


def critical_path(results: Mapping[str, CheckResult]) -> tuple[str, ...]:
    """Walk back from the check that ended last through the dependency that ended last."""
    ran = [r for r in results.values() if r.attempts > 0]
    if not ran:
        return ()
    node: CheckResult | None = max(ran, key=lambda r: r.end_s)
    path: list[str] = []
    while node is not None:
        path.append(node.name)
        deps = [results[d] for d in node.depends_on if d in results]
        node = max(deps, key=lambda r: r.end_s) if deps else None
    return tuple(reversed(path))


_MAX_DETAILS = 32


def scrub_details(details: Mapping[Any, Any]) -> dict[str, Any]:
    """A bounded, JSON-ready, secret-free copy of what a check returned (it reaches /health)."""
    scrubber = current_scrubber()
    out: dict[str, Any] = {}
    for key, value in list(details.items())[:_MAX_DETAILS]:
        name = str(key)
        if scrubber.key_is_secret(name):
            out[name] = REDACTED
        elif value is None or isinstance(value, bool | int | float):
            out[name] = value
        else:
            out[name] = scrubber.scrub_text(str(value))
    return out
