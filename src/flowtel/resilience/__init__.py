"""Resilience strategies that report what they do: retry, timeout, rate limit, circuit breaker.

Each strategy is a decorator for sync and async functions and a context manager (``retry`` is
iterated instead, since a ``with`` block cannot run twice), and they compose by stacking::

    @retry(attempts=4)                   # outermost: retries what the others raise
    @timeout(10.0)                       # bounds each attempt
    @rate_limit(5, adaptive=True)        # waits for a permit, slows down on HTTP 429
    @circuit_breaker("llm")              # innermost: fails fast while the upstream is down
    async def complete(prompt: str) -> str: ...

Every retry, rejection, timeout and long limiter wait adds an event to the current span and
counts in ``flowtel.resilience.events``; see ``docs/resilience.md`` for every signal.
:func:`test_mode` removes every wait so tests of code using these stay fast.
"""

from __future__ import annotations

from flowtel.exceptions import CircuitOpenError, RateLimitExceededError, ResilienceError
from flowtel.resilience._breaker import (
    BreakerMetrics,
    CircuitBreaker,
    CircuitState,
    CountWindow,
    ExceptionMatcher,
    StateTransition,
    TimeWindow,
    circuit_breaker,
)
from flowtel.resilience._clock import Clock, SystemClock, VirtualClock, test_mode
from flowtel.resilience._ratelimit import RateLimiter, is_http_429, rate_limit
from flowtel.resilience._retry import Attempt, Retry, RetryOn, retry, retry_after_hint
from flowtel.resilience._telemetry import CallOutcome, ResilienceEvent, Strategy
from flowtel.resilience._timeout import Timeout, timeout

__all__ = [
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
]
