"""A circuit breaker with resilience4j semantics, asyncio-native and thread-safe.

States and transitions (resilience4j's ``CircuitBreaker``):

- CLOSED: calls pass; outcomes go into a sliding window (the last N calls, or the last N
  seconds). Once the window holds ``minimum_calls`` calls, a failure rate or a slow-call rate at
  or above its threshold opens the breaker.
- OPEN: calls are rejected at once with ``CircuitOpenError``. The first call after ``open_for_s``
  moves the breaker to HALF_OPEN (lazily, as resilience4j does without automatic transition).
- HALF_OPEN: ``half_open_calls`` trial calls get permits, others are rejected. When all trials
  have finished, their rates decide: OPEN again, or CLOSED with a fresh window.

An exception matched by ``ignore`` counts as neither success nor failure (and returns its
half-open permit); otherwise one matched by ``record`` (default: every ``Exception``) is a
failure, and any other is a success. A cancelled call is ignored: the upstream did not fail.

The lock only guards counters, never a call or an ``await``, so the same breaker is safe
across threads and tasks and never blocks the event loop. Listeners run outside the lock.
"""

from __future__ import annotations

import functools
import inspect
import logging
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any, ParamSpec, TypeVar, cast

from opentelemetry.metrics import MeterProvider

from flowtel import semconv
from flowtel._core._values import safe_predicate
from flowtel.exceptions import CircuitOpenError, ConfigurationError
from flowtel.resilience._breaker_state import (
    _DEFAULT_WINDOW,
    _STATE_EVENTS,
    BreakerMetrics,
    CircuitState,
    ExceptionMatcher,
    StateTransition,
    _matcher,
    _starts,
)
from flowtel.resilience._clock import Clock, current_clock
from flowtel.resilience._telemetry import (
    CallOutcome,
    ResilienceEvent,
    Strategy,
    operation_name,
    record_call,
    record_event,
    register_breaker,
    span_event,
)
from flowtel.resilience._window import CountRing, CountWindow, TimeRing, TimeWindow

__all__ = [
    "BreakerMetrics",
    "CircuitBreaker",
    "CircuitState",
    "CountWindow",
    "ExceptionMatcher",
    "StateTransition",
    "TimeWindow",
    "circuit_breaker",
]

P = ParamSpec("P")
R = TypeVar("R")
_log = logging.getLogger("flowtel.resilience")


class CircuitBreaker:
    """Stops calling a failing upstream; see the module notes for the exact semantics.

    Use it as a decorator (sync or async), as ``with`` / ``async with``, or drive it by hand
    with :meth:`acquire_permission` then :meth:`on_success` / :meth:`on_error` /
    :meth:`release_permission`. Defaults follow resilience4j.

    Args:
        name: ``flowtel.resilience.name`` of the breaker; default: the decorated function's
            qualified name.
        failure_rate_threshold: Open at or above this failure fraction.
        slow_call_duration_s: Calls longer than this are slow; None disables slow calls.
        slow_call_rate_threshold: Open at or above this slow-call fraction.
        window: ``CountWindow(size)`` or ``TimeWindow(size_s)``.
        minimum_calls: Calls the window needs before rates are computed.
        open_for_s: Time in OPEN before trial calls are allowed.
        half_open_calls: Trial calls in HALF_OPEN.
        record: Exceptions that count as failures; default: every ``Exception``.
        ignore: Exceptions that count as nothing (checked before ``record``).
        clock: Time source; default: the real clock, or the test-mode clock.
        meter_provider: Record metrics here instead of the global provider.

    Raises:
        ConfigurationError: An option is out of range.
    """

    def __init__(
        self,
        name: str | None = None,
        *,
        failure_rate_threshold: float = 0.5,
        slow_call_duration_s: float | None = None,
        slow_call_rate_threshold: float = 1.0,
        window: CountWindow | TimeWindow = _DEFAULT_WINDOW,
        minimum_calls: int = 100,
        open_for_s: float = 60.0,
        half_open_calls: int = 10,
        record: ExceptionMatcher | None = None,
        ignore: ExceptionMatcher | None = None,
        clock: Clock | None = None,
        meter_provider: MeterProvider | None = None,
    ) -> None:
        for option, rate in (
            ("failure_rate_threshold", failure_rate_threshold),
            ("slow_call_rate_threshold", slow_call_rate_threshold),
        ):
            if not 0 < rate <= 1:
                raise ConfigurationError(option, rate, "a fraction in (0, 1]")
        if slow_call_duration_s is not None and slow_call_duration_s <= 0:
            raise ConfigurationError(
                "slow_call_duration_s", slow_call_duration_s, "None or a float > 0"
            )
        if isinstance(window, CountWindow) and window.size < 1:
            raise ConfigurationError("window", window, "CountWindow(size >= 1)")
        if isinstance(window, TimeWindow) and (window.size_s <= 0 or window.buckets < 1):
            raise ConfigurationError("window", window, "TimeWindow(size_s > 0, buckets >= 1)")
        if not isinstance(window, CountWindow | TimeWindow):
            raise ConfigurationError("window", window, "CountWindow(...) or TimeWindow(...)")
        if minimum_calls < 1:
            raise ConfigurationError("minimum_calls", minimum_calls, "an int >= 1")
        if open_for_s < 0:
            raise ConfigurationError("open_for_s", open_for_s, "a float >= 0")
        if half_open_calls < 1:
            raise ConfigurationError("half_open_calls", half_open_calls, "an int >= 1")
        self.name = name or "circuit_breaker"  # the decorated function's name, once known
        self.failure_rate_threshold = failure_rate_threshold
        self.slow_call_duration_s = slow_call_duration_s
        self.slow_call_rate_threshold = slow_call_rate_threshold
        self.window = window
        # As in resilience4j, a count window smaller than minimum_calls lowers the minimum.
        self.minimum_calls = (
            min(minimum_calls, window.size) if isinstance(window, CountWindow) else minimum_calls
        )
        self.open_for_s = open_for_s
        self.half_open_calls = half_open_calls
        self.meter_provider = meter_provider
        self._record = _matcher("record", record, default=True)
        self._ignore = _matcher("ignore", ignore, default=False)
        self._clock = clock
        self._lock = threading.Lock()
        self._listeners: list[Callable[[StateTransition], None]] = []
        self._state = CircuitState.CLOSED
        self._ring: CountRing | TimeRing = self._closed_ring()
        self._opened_at = 0.0
        self._permits = 0
        self._named = name is not None
        register_breaker(self)

    @property
    def clock(self) -> Clock:
        return self._clock or current_clock()

    @property
    def state(self) -> CircuitState:
        """The current state (OPEN stays OPEN until a call arrives after ``open_for_s``)."""
        return self._state

    def add_listener(self, listener: Callable[[StateTransition], None]) -> None:
        """Call ``listener`` after every state change; its errors are logged, not raised."""
        self._listeners.append(listener)

    def _closed_ring(self) -> CountRing | TimeRing:
        if isinstance(self.window, CountWindow):
            return CountRing(self.window.size)
        return TimeRing(self.window.size_s, self.window.buckets)

    def _minimum(self) -> int:
        return (
            self.half_open_calls if self._state is CircuitState.HALF_OPEN else (self.minimum_calls)
        )

    def metrics(self) -> BreakerMetrics:
        """A consistent snapshot of the current window."""
        with self._lock:
            return self._snapshot(self.clock.now())

    def _snapshot(self, now: float) -> BreakerMetrics:
        calls, failed, slow = self._ring.totals(now)
        enough = calls >= self._minimum() and calls > 0
        return BreakerMetrics(
            state=self._state,
            calls=calls,
            failed_calls=failed,
            slow_calls=slow,
            failure_rate=failed / calls if enough else None,
            slow_call_rate=slow / calls if enough else None,
        )

    def _gauge_states(self) -> list[tuple[str, int]]:
        current = self._state
        return [(s.value, int(s is current)) for s in CircuitState]

    def _gauge_rates(self) -> tuple[float | None, float | None]:
        snap = self.metrics()
        return snap.failure_rate, snap.slow_call_rate

    def _move(self, to: CircuitState, now: float, changes: list[StateTransition]) -> None:
        """Change state under the lock; the caller announces ``changes`` after releasing it."""
        changes.append(StateTransition(self.name, self._state, to))
        self._state = to
        if to is CircuitState.OPEN:
            self._opened_at = now
        elif to is CircuitState.HALF_OPEN:
            self._permits = self.half_open_calls
            self._ring = CountRing(self.half_open_calls)
        else:
            self._ring = self._closed_ring()

    def _announce(self, changes: list[StateTransition]) -> None:
        for change in changes:
            record_event(
                self.meter_provider,
                _STATE_EVENTS[change.to_state],
                Strategy.CIRCUIT_BREAKER,
                self.name,
            )
            for listener in list(self._listeners):
                try:
                    listener(change)
                except Exception:
                    _log.warning(
                        "circuit breaker %r: listener %r failed", self.name, listener, exc_info=True
                    )

    def acquire_permission(self) -> None:
        """Take a permit for one call.

        Raises:
            CircuitOpenError: The breaker is open, or half-open with every trial permit taken.
        """
        if self.state is CircuitState.CLOSED:
            return  # fast path: an attribute read is atomic, and CLOSED takes no permit
        changes: list[StateTransition] = []
        with self._lock:
            now = self.clock.now()
            if self._state is CircuitState.OPEN and now - self._opened_at >= self.open_for_s:
                self._move(CircuitState.HALF_OPEN, now, changes)
            state = self._state
            permitted = state is CircuitState.CLOSED or (
                state is CircuitState.HALF_OPEN and self._permits > 0
            )
            if permitted and state is CircuitState.HALF_OPEN:
                self._permits -= 1
            remaining_s = max(self._opened_at + self.open_for_s - now, 0.0)
        self._announce(changes)
        if permitted:
            return
        record_event(
            self.meter_provider, ResilienceEvent.REJECTED, Strategy.CIRCUIT_BREAKER, self.name
        )
        record_call(
            self.meter_provider, CallOutcome.NOT_PERMITTED, Strategy.CIRCUIT_BREAKER, self.name
        )
        span_event(
            semconv.EVENT_RESILIENCE_REJECTED,
            {
                semconv.RESILIENCE_NAME: self.name,
                semconv.RESILIENCE_STRATEGY: Strategy.CIRCUIT_BREAKER.value,
                semconv.CIRCUIT_STATE: state.value,
            },
        )
        detail = (
            f"open, half-open in {remaining_s:.3f}s"
            if state is CircuitState.OPEN
            else "half-open, all trial permits taken"
        )
        raise CircuitOpenError(f"circuit breaker {self.name!r} is {detail}")

    def release_permission(self) -> None:
        """Give back a permit whose call was not made or whose outcome is ignored."""
        with self._lock:
            if self._state is CircuitState.HALF_OPEN:
                self._permits = min(self._permits + 1, self.half_open_calls)

    def on_success(self, duration_s: float) -> None:
        """Record a successful call that took ``duration_s``."""
        self._on_result(duration_s, failed=False)
        record_call(self.meter_provider, CallOutcome.SUCCESS, Strategy.CIRCUIT_BREAKER, self.name)

    def on_error(self, duration_s: float, exc: BaseException) -> None:
        """Record a call that raised ``exc``, classified by ``ignore`` and ``record``."""
        if not isinstance(exc, Exception) or safe_predicate(self._ignore, exc):
            self.release_permission()
        else:
            self._on_result(duration_s, failed=safe_predicate(self._record, exc))
        if isinstance(exc, Exception):
            record_call(
                self.meter_provider, CallOutcome.FAILED, Strategy.CIRCUIT_BREAKER, self.name
            )

    def _on_result(self, duration_s: float, failed: bool) -> None:
        now = self.clock.now()
        slow = self.slow_call_duration_s is not None and duration_s > self.slow_call_duration_s
        changes: list[StateTransition] = []
        with self._lock:
            if self._state is CircuitState.OPEN:
                return  # a call that started before the breaker opened; nothing to decide
            self._ring.record(now, failed, slow)
            calls, failures, slow_calls = self._ring.totals(now)
            if calls >= self._minimum():
                tripped = (
                    failures / calls >= self.failure_rate_threshold
                    or slow_calls / calls >= self.slow_call_rate_threshold
                )
                if tripped:
                    self._move(CircuitState.OPEN, now, changes)
                elif self._state is CircuitState.HALF_OPEN:
                    self._move(CircuitState.CLOSED, now, changes)
        self._announce(changes)

    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]:
        if not self._named:
            self.name, self._named = operation_name(fn), True
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
                self.acquire_permission()
                start = self.clock.now()
                try:
                    result = await fn(*args, **kwargs)
                except BaseException as exc:
                    self.on_error(self.clock.now() - start, exc)
                    raise
                self.on_success(self.clock.now() - start)
                return result

            return cast(Callable[P, R], async_wrapper)

        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            self.acquire_permission()
            start = self.clock.now()
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                self.on_error(self.clock.now() - start, exc)
                raise
            self.on_success(self.clock.now() - start)
            return result

        return wrapper

    def __enter__(self) -> CircuitBreaker:
        self.acquire_permission()
        _starts.set((*_starts.get(), self.clock.now()))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        stack = _starts.get()
        _starts.set(stack[:-1])
        duration_s = self.clock.now() - stack[-1]
        if exc is None:
            self.on_success(duration_s)
        else:
            self.on_error(duration_s, exc)

    async def __aenter__(self) -> CircuitBreaker:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)


circuit_breaker = CircuitBreaker
"""``@circuit_breaker("llm")``: the factory spelling of :class:`CircuitBreaker`."""
