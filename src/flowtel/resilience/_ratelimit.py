"""A token-bucket rate limiter, async and thread-safe, with optional AIMD adaptivity.

Fairness without a queue: each caller *reserves* its permits on arrival, letting the bucket go
into debt, and then sleeps until the debt it joined is repaid. A later caller joins a deeper
debt and so waits longer, which serves callers in arrival order (FIFO) for async tasks and
threads alike, and lets ``max_wait_s`` reject a caller at once, before it waits, when its
reservation would come too late. The lock guards a few float updates only, so taking it on
the event loop never blocks the loop.
"""

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any, ParamSpec, TypeVar, cast

from opentelemetry.metrics import MeterProvider

from flowtel import semconv
from flowtel._core._values import safe_predicate
from flowtel.exceptions import ConfigurationError, RateLimitExceededError
from flowtel.resilience._clock import Clock, current_clock
from flowtel.resilience._telemetry import (
    CallOutcome,
    ResilienceEvent,
    Strategy,
    operation_name,
    record_call,
    record_event,
    record_wait,
    register_limiter,
    span_event,
)

__all__ = ["RateLimiter", "is_http_429", "rate_limit"]

P = ParamSpec("P")
R = TypeVar("R")
_UNSET: Any = object()


def is_http_429(exc: BaseException) -> bool:
    """Default throttling signal: the error, or its ``response``, has status code 429."""
    for holder in (exc, getattr(exc, "response", None)):
        if getattr(holder, "status_code", None) == 429 or getattr(holder, "status", None) == 429:
            return True
    return False


class RateLimiter:
    """Grants ``rate`` permits per ``per`` seconds, with bursts up to ``burst``.

    Use :meth:`acquire` / :meth:`acquire_sync`, ``async with`` / ``with``, or decorate
    functions (sync or async); one instance shared by several functions shares the budget.
    A token bucket with FIFO waiters.

    Args:
        rate: Permits per ``per`` seconds (the maximum rate when adaptive).
        per: The period of ``rate``, seconds.
        burst: Bucket capacity; default ``max(1, rate)``.
        max_wait_s: Longest a caller may wait; beyond it ``RateLimitExceededError`` is raised
            immediately. None waits as long as needed.
        adaptive: Lower the rate on throttling signals (AIMD): multiply by
            ``decrease_factor``, then recover linearly on successes.
        is_throttled: Which exceptions are throttling signals; default: HTTP 429.
        min_rate: Floor for the adaptive rate (per ``per``); default ``rate / 100``.
        decrease_factor: Multiplicative decrease on each signal.
        recovery_s: Time of successful traffic to climb from 0 back to ``rate``.
        decrease_cooldown_s: Signals this close to the last decrease count once; set it near
            the upstream's latency.
        wait_event_threshold_s: Waits longer than this add a span event and count an event.
        name: ``flowtel.resilience.name``; default: the first decorated function's name.
        clock: Time source; default: the real clock, or the test-mode clock.
        meter_provider: Record metrics here instead of the global provider.

    Raises:
        ConfigurationError: An option is out of range.
    """

    def __init__(
        self,
        rate: float,
        per: float = 1.0,
        *,
        burst: float | None = None,
        max_wait_s: float | None = None,
        adaptive: bool = False,
        is_throttled: Callable[[BaseException], bool] = is_http_429,
        min_rate: float | None = None,
        decrease_factor: float = 0.5,
        recovery_s: float = 10.0,
        decrease_cooldown_s: float = 1.0,
        wait_event_threshold_s: float = 0.1,
        name: str | None = None,
        clock: Clock | None = None,
        meter_provider: MeterProvider | None = None,
    ) -> None:
        _positive("rate", rate)
        _positive("per", per)
        _positive("recovery_s", recovery_s)
        if burst is not None and not burst >= 1:
            raise ConfigurationError("burst", burst, "None or a number >= 1 (one call's permit)")
        if max_wait_s is not None and max_wait_s < 0:
            raise ConfigurationError("max_wait_s", max_wait_s, "None or a float >= 0")
        for option, value in (
            ("decrease_cooldown_s", decrease_cooldown_s),
            ("wait_event_threshold_s", wait_event_threshold_s),
        ):
            if value < 0:
                raise ConfigurationError(option, value, "a number >= 0 (seconds)")
        if not 0 < decrease_factor < 1:
            raise ConfigurationError("decrease_factor", decrease_factor, "a float in (0, 1)")
        if min_rate is not None and not 0 < min_rate <= rate:
            raise ConfigurationError("min_rate", min_rate, f"a float in (0, rate={rate}]")
        self.max_rate_per_s = rate / per
        self.min_rate_per_s = (min_rate if min_rate is not None else rate / 100) / per
        self.burst = float(burst) if burst is not None else max(1.0, float(rate))
        self.max_wait_s = max_wait_s
        self.adaptive = adaptive
        self.decrease_factor = decrease_factor
        self.recovery_s = recovery_s
        self.decrease_cooldown_s = decrease_cooldown_s
        self.wait_event_threshold_s = wait_event_threshold_s
        self.name = name or "rate_limit"
        self._named = name is not None
        self.meter_provider = meter_provider
        self._is_throttled = is_throttled
        self._clock = clock
        self._lock = threading.Lock()
        self._rate = self.max_rate_per_s
        self._tokens = self.burst
        now = self.clock.now()
        self._last = now
        self._last_adjust = now
        self._last_decrease: float | None = None
        register_limiter(self)

    @property
    def clock(self) -> Clock:
        return self._clock or current_clock()

    @property
    def rate_per_s(self) -> float:
        """The current permit rate (below ``max_rate_per_s`` after throttling)."""
        return self._rate

    def _refill(self, now: float) -> None:
        # max(): a limiter built before test_mode() sees its clock jump; never refill backwards.
        elapsed = max(now - self._last, 0.0)
        self._tokens = min(self.burst, self._tokens + elapsed * self._rate)
        self._last = now

    def available_permits(self) -> float:
        """Permits a caller could take right now without waiting."""
        with self._lock:
            self._refill(self.clock.now())
            return max(self._tokens, 0.0)

    def _gauge_permits(self) -> tuple[float, float]:
        return self.available_permits(), self._rate

    def _reserve(self, permits: float, max_wait_s: float | None) -> float:
        """Take ``permits`` now (possibly into debt); return the wait until they are ours."""
        if not 0 < permits <= self.burst:
            raise ConfigurationError("permits", permits, f"a float in (0, burst={self.burst:g}]")
        limit = self.max_wait_s if max_wait_s is _UNSET else max_wait_s
        with self._lock:
            self._refill(self.clock.now())
            after = self._tokens - permits
            wait = 0.0 if after >= 0 else -after / self._rate
            if limit is None or wait <= limit:
                self._tokens = after
                return wait
        record_event(self.meter_provider, ResilienceEvent.REJECTED, Strategy.RATE_LIMIT, self.name)
        span_event(
            semconv.EVENT_RESILIENCE_REJECTED,
            {
                semconv.RESILIENCE_NAME: self.name,
                semconv.RESILIENCE_STRATEGY: Strategy.RATE_LIMIT.value,
                semconv.RESILIENCE_WAIT: wait,
            },
        )
        raise RateLimitExceededError(
            f"rate limiter {self.name!r}: a permit needs {wait:.3f}s, over max_wait_s={limit}"
        )

    def _refund(self, permits: float) -> None:
        # A waiter that gives up returns its reservation so the capacity is not lost.
        with self._lock:
            self._tokens = min(self.burst, self._tokens + permits)

    def _waited(self, wait_s: float) -> None:
        record_wait(self.meter_provider, self.name, wait_s)
        if wait_s > self.wait_event_threshold_s:
            record_event(
                self.meter_provider, ResilienceEvent.RATE_LIMITED, Strategy.RATE_LIMIT, self.name
            )
            span_event(
                semconv.EVENT_RESILIENCE_RATE_LIMITED,
                {
                    semconv.RESILIENCE_NAME: self.name,
                    semconv.RESILIENCE_WAIT: wait_s,
                },
            )

    async def acquire(self, permits: float = 1.0, *, max_wait_s: float | None = _UNSET) -> float:
        """Wait for ``permits``; return the seconds waited.

        Raises:
            RateLimitExceededError: The wait would exceed ``max_wait_s`` (the call's, else
                the limiter's); raised at once, without waiting.
        """
        wait = self._reserve(permits, max_wait_s)
        if wait > 0:
            try:
                await self.clock.asleep(wait)
            except BaseException:
                self._refund(permits)
                raise
        self._waited(wait)
        return wait

    def acquire_sync(self, permits: float = 1.0, *, max_wait_s: float | None = _UNSET) -> float:
        """Blocking :meth:`acquire` for threads; never call it on the event loop."""
        wait = self._reserve(permits, max_wait_s)
        if wait > 0:
            try:
                self.clock.sleep(wait)
            except BaseException:
                self._refund(permits)
                raise
        self._waited(wait)
        return wait

    def throttled(self) -> None:
        """Report a throttling signal: multiply the rate by ``decrease_factor``.

        Signals within ``decrease_cooldown_s`` of the last decrease count once, since the
        requests in flight when an upstream starts throttling all fail together. The bucket's
        saved burst is dropped so the lower rate applies at once.
        """
        with self._lock:
            now = self.clock.now()
            self._refill(now)
            if self._last_decrease is not None and (
                0 <= now - self._last_decrease < self.decrease_cooldown_s
            ):
                return
            self._rate = max(self.min_rate_per_s, self._rate * self.decrease_factor)
            self._tokens = min(self._tokens, 0.0)
            self._last_decrease = self._last_adjust = now

    def recovered(self) -> None:
        """Report a success: raise the rate linearly, reaching the maximum in ``recovery_s``."""
        with self._lock:
            if self._rate >= self.max_rate_per_s:
                return
            now = self.clock.now()
            self._refill(now)
            elapsed = max(now - self._last_adjust, 0.0)
            step = self.max_rate_per_s * elapsed / self.recovery_s
            self._rate = min(self.max_rate_per_s, self._rate + step)
            self._last_adjust = now

    def _outcome(self, exc: BaseException | None, operation: str) -> None:
        if exc is None:
            if self.adaptive:
                self.recovered()
            record_call(self.meter_provider, CallOutcome.SUCCESS, Strategy.RATE_LIMIT, operation)
            return
        if self.adaptive and safe_predicate(self._is_throttled, exc):
            self.throttled()
        record_call(self.meter_provider, CallOutcome.FAILED, Strategy.RATE_LIMIT, operation)

    def _permit(self) -> None:
        try:
            self.acquire_sync()
        except RateLimitExceededError:
            record_call(
                self.meter_provider, CallOutcome.NOT_PERMITTED, Strategy.RATE_LIMIT, self.name
            )
            raise

    async def _apermit(self) -> None:
        try:
            await self.acquire()
        except RateLimitExceededError:
            record_call(
                self.meter_provider, CallOutcome.NOT_PERMITTED, Strategy.RATE_LIMIT, self.name
            )
            raise

    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]:
        if not self._named:
            self.name, self._named = operation_name(fn), True
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
                await self._apermit()
                try:
                    result = await fn(*args, **kwargs)
                except Exception as exc:
                    self._outcome(exc, self.name)
                    raise
                self._outcome(None, self.name)
                return result

            return cast(Callable[P, R], async_wrapper)

        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            self._permit()
            try:
                result = fn(*args, **kwargs)
            except Exception as exc:
                self._outcome(exc, self.name)
                raise
            self._outcome(None, self.name)
            return result

        return wrapper

    async def __aenter__(self) -> RateLimiter:
        await self._apermit()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None or isinstance(exc, Exception):
            self._outcome(exc, self.name)

    def __enter__(self) -> RateLimiter:
        self._permit()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None or isinstance(exc, Exception):
            self._outcome(exc, self.name)


def _positive(option: str, value: float) -> None:
    if not value > 0:
        raise ConfigurationError(option, value, "a number > 0")


rate_limit = RateLimiter
"""``@rate_limit(5, adaptive=True)``: the factory spelling of :class:`RateLimiter`."""
