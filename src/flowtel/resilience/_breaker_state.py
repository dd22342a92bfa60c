"""A circuit breaker's states, transitions and counters, and how exceptions are matched."""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import cast

from flowtel.exceptions import ConfigurationError
from flowtel.resilience._telemetry import (
    ResilienceEvent,
)
from flowtel.resilience._window import CountWindow

ExceptionMatcher = (
    type[BaseException] | tuple[type[BaseException], ...] | Callable[[BaseException], bool]
)
"""Exception types, or a predicate over an exception."""


class CircuitState(StrEnum):
    """A breaker's state (``flowtel.circuit.state``)."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


_DEFAULT_WINDOW = CountWindow(100)

_STATE_EVENTS = {
    CircuitState.OPEN: ResilienceEvent.CIRCUIT_OPENED,
    CircuitState.HALF_OPEN: ResilienceEvent.CIRCUIT_HALF_OPENED,
    CircuitState.CLOSED: ResilienceEvent.CIRCUIT_CLOSED,
}


@dataclass(frozen=True, slots=True)
class StateTransition:
    """What a listener receives when a breaker changes state."""

    name: str
    from_state: CircuitState
    to_state: CircuitState


@dataclass(frozen=True, slots=True)
class BreakerMetrics:
    """A snapshot of a breaker's window; rates are None below ``minimum_calls``."""

    state: CircuitState
    calls: int
    failed_calls: int
    slow_calls: int
    failure_rate: float | None
    slow_call_rate: float | None


# Start times of the breaker calls in progress in this task or thread (context-manager form).
_starts: contextvars.ContextVar[tuple[float, ...]] = contextvars.ContextVar(
    "flowtel_breaker_starts", default=()
)


def _matcher(
    option: str, value: ExceptionMatcher | None, default: bool
) -> Callable[[BaseException], bool]:
    if value is None:
        return (lambda e: isinstance(e, Exception)) if default else (lambda e: False)
    if isinstance(value, type) and issubclass(value, BaseException):
        return lambda e: isinstance(e, value)
    if isinstance(value, tuple):
        if not all(isinstance(t, type) and issubclass(t, BaseException) for t in value):
            raise ConfigurationError(option, value, "exception types or a predicate")
        return lambda e: isinstance(e, value)
    if callable(value):
        return cast(Callable[[BaseException], bool], value)
    raise ConfigurationError(option, value, "exception types or a predicate")
