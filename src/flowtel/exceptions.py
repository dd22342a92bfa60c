"""flowtel's error hierarchy.

::

    Exception
    └── FlowtelError                      anything flowtel raises on purpose
        ├── ConfigurationError (+ValueError)  bad option at configure_telemetry() / constructors
        ├── StartupError                   a critical startup check failed, or the graph is invalid
        └── ResilienceError                raised by flowtel.resilience instead of calling through
            ├── CircuitOpenError           an open breaker rejected the call
            └── RateLimitExceededError     a rate limiter could not grant a permit in time

Instrumentation itself never raises into user code at run time; these are raised only where the
caller asked for a decision (configuration, startup, resilience).
"""

from __future__ import annotations

__all__ = [
    "CircuitOpenError",
    "ConfigurationError",
    "FlowtelError",
    "RateLimitExceededError",
    "ResilienceError",
    "StartupError",
]


class FlowtelError(Exception):
    """Base class of every error flowtel raises on purpose."""


class ConfigurationError(FlowtelError, ValueError):
    """An option has a bad value. The message names the option, the value and what is accepted."""

    def __init__(self, option: str, value: object, accepted: str) -> None:
        self.option = option
        self.value = value
        self.accepted = accepted
        super().__init__(f"{option}: invalid value {value!r}; accepted: {accepted}")


class StartupError(FlowtelError):
    """Startup cannot complete: a critical check failed or the check graph is invalid."""


class ResilienceError(FlowtelError):
    """A resilience strategy refused to call through."""


class CircuitOpenError(ResilienceError):
    """The circuit breaker is open (or half-open with no permits left); the call was not made."""


class RateLimitExceededError(ResilienceError):
    """A rate limiter could not grant a permit within the caller's maximum wait."""
