"""Timeouts: exact and cancellation-safe for coroutines, best-effort for sync code.

What is possible, and what flowtel does:

- Coroutines are cancelled at the deadline through :func:`asyncio.timeout`; the caller gets
  ``TimeoutError``. A cancellation that comes from outside (the task itself is cancelled)
  stays a ``CancelledError``, and a ``TimeoutError`` raised by the callee is not counted as our
  timeout.
- A running Python thread cannot be stopped safely. A decorated *sync* function therefore runs
  in a fresh daemon thread (with the caller's contextvars, so the current span carries over);
  the caller gets ``TimeoutError`` at the deadline, but the abandoned call keeps running to its
  end and its side effects still happen.
- A sync ``with timeout(...)`` block cannot be interrupted at all: the block runs to completion
  and ``TimeoutError`` is raised afterwards if it overran. Use it to detect, not to bound.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any, ParamSpec, TypeVar, cast

from opentelemetry.metrics import MeterProvider

from flowtel import semconv
from flowtel.exceptions import ConfigurationError
from flowtel.resilience._clock import Clock, SystemClock
from flowtel.resilience._telemetry import (
    CallOutcome,
    ResilienceEvent,
    Strategy,
    error_type,
    operation_name,
    record_call,
    record_event,
    span_event,
)

__all__ = ["Timeout", "timeout"]

_REAL = SystemClock()

P = ParamSpec("P")
R = TypeVar("R")


class Timeout:
    """A timeout policy: decorator for sync and async functions, and a context manager.

    Used as a context manager an instance tracks one block per task (async) or per thread
    (sync); nesting the same instance inside itself is not supported.

    Args:
        seconds: The time limit.
        name: ``flowtel.operation`` in telemetry; default: the function's qualified name.
        clock: Measures sync ``with`` blocks (default: the real clock, even in test mode).
            Coroutine and sync-function deadlines always use real time.
        meter_provider: Record metrics here instead of the global provider.

    Raises:
        ConfigurationError: ``seconds`` is not positive.
    """

    def __init__(
        self,
        seconds: float,
        *,
        name: str | None = None,
        clock: Clock | None = None,
        meter_provider: MeterProvider | None = None,
    ) -> None:
        if not seconds > 0:
            raise ConfigurationError("seconds", seconds, "a float > 0")
        self.timeout_s = float(seconds)
        self.name = name
        self.meter_provider = meter_provider
        self._clock = clock
        self._async_blocks: dict[int, asyncio.Timeout] = {}
        self._sync_blocks: dict[int, float] = {}

    def _timed_out(self, operation: str) -> TimeoutError:
        record_event(
            self.meter_provider,
            ResilienceEvent.TIMEOUT,
            Strategy.TIMEOUT,
            operation,
            error_type(TimeoutError()),
        )
        record_call(self.meter_provider, CallOutcome.FAILED, Strategy.TIMEOUT, operation)
        span_event(
            semconv.EVENT_RESILIENCE_TIMEOUT,
            {
                semconv.RESILIENCE_TIMEOUT: self.timeout_s,
                semconv.OPERATION: operation,
            },
        )
        return TimeoutError(f"{operation} did not finish within {self.timeout_s:g}s")

    def _finished(self, operation: str, ok: bool) -> None:
        outcome = CallOutcome.SUCCESS if ok else CallOutcome.FAILED
        record_call(self.meter_provider, outcome, Strategy.TIMEOUT, operation)

    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]:
        operation = self.name or operation_name(fn)
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
                scope = asyncio.timeout(self.timeout_s)
                try:
                    async with scope:
                        result = await fn(*args, **kwargs)
                except TimeoutError as exc:
                    if scope.expired():
                        raise self._timed_out(operation) from exc
                    self._finished(operation, ok=False)
                    raise
                except Exception:
                    self._finished(operation, ok=False)
                    raise
                self._finished(operation, ok=True)
                return result

            return cast(Callable[P, R], async_wrapper)

        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            box: list[Any] = []
            done = threading.Event()
            ctx = contextvars.copy_context()

            def run() -> None:
                try:
                    box.append((True, ctx.run(fn, *args, **kwargs)))
                except BaseException as exc:
                    box.append((False, exc))
                finally:
                    done.set()

            worker = threading.Thread(target=run, name=f"flowtel-timeout:{operation}", daemon=True)
            worker.start()
            if not done.wait(self.timeout_s):
                raise self._timed_out(operation)
            ok, value = box[0]
            self._finished(operation, ok=ok)
            if not ok:
                raise value
            return cast(R, value)

        return wrapper

    async def __aenter__(self) -> Timeout:
        scope = asyncio.timeout(self.timeout_s)
        await scope.__aenter__()
        self._async_blocks[id(asyncio.current_task())] = scope
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        scope = self._async_blocks.pop(id(asyncio.current_task()))
        operation = self.name or "timeout"
        try:
            await scope.__aexit__(exc_type, exc, tb)
        except TimeoutError as err:
            raise self._timed_out(operation) from err
        if exc is None or isinstance(exc, Exception):
            self._finished(operation, ok=exc is None)
        return None

    def __enter__(self) -> Timeout:
        self._sync_blocks[threading.get_ident()] = (self._clock or _REAL).now()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        started = self._sync_blocks.pop(threading.get_ident())
        operation = self.name or "timeout"
        if exc is None and (self._clock or _REAL).now() - started > self.timeout_s:
            raise self._timed_out(operation)
        if exc is None or isinstance(exc, Exception):
            self._finished(operation, ok=exc is None)


timeout = Timeout
"""``@timeout(10.0)``: the factory spelling of :class:`Timeout` (the same signature)."""
