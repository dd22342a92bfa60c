"""Time for the resilience strategies: a real monotonic clock and a virtual one for tests.

Why a clock object: retry backoff, limiter waits and breaker open periods are all "wait this
long" decisions. Routing them through one seam lets :func:`flowtel.resilience.test_mode` swap
in a :class:`VirtualClock` whose sleeps return at once and advance virtual time, so tests of
code that uses ``@retry`` or ``@rate_limit`` stay fast and exact.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "SystemClock", "VirtualClock", "current_clock", "test_mode"]


@runtime_checkable
class Clock(Protocol):
    """Monotonic time and sleeping, in seconds.

    Threading contract: every method may be called from any thread and from the event loop;
    ``now`` must not block.
    """

    def now(self) -> float:
        """Monotonic seconds; only differences are meaningful."""
        ...

    def sleep(self, seconds: float) -> None:
        """Block the calling thread for ``seconds``."""
        ...

    async def asleep(self, seconds: float) -> None:
        """Suspend the calling task for ``seconds`` without blocking the loop."""
        ...


class SystemClock:
    """The real clock: ``time.monotonic`` and the real sleeps."""

    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

    async def asleep(self, seconds: float) -> None:
        await asyncio.sleep(max(seconds, 0.0))


class VirtualClock:
    """A clock whose sleeps return immediately and move virtual time forward.

    Sleeping advances ``now`` by the requested amount (an async sleep still yields once to the
    loop so other tasks run). :meth:`advance` moves time without sleeping, e.g. to let an open
    circuit breaker reach its half-open time.
    """

    def __init__(self, start_s: float = 0.0) -> None:
        self._now = start_s
        self._lock = threading.Lock()
        self.slept_s = 0.0
        """Total virtual time spent in :meth:`sleep` and :meth:`asleep`."""

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        """Move virtual time forward by ``seconds`` (negative values are ignored)."""
        with self._lock:
            self._now += max(seconds, 0.0)

    def sleep(self, seconds: float) -> None:
        with self._lock:
            step = max(seconds, 0.0)
            self._now += step
            self.slept_s += step

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)
        await asyncio.sleep(0)


_SYSTEM: Clock = SystemClock()
_override: list[Clock] = []


def current_clock() -> Clock:
    """The clock strategies use when none was passed: the test-mode clock or the real one."""
    return _override[-1] if _override else _SYSTEM


@contextmanager
def test_mode(clock: VirtualClock | None = None) -> Iterator[VirtualClock]:
    """Remove every resilience wait inside the block; yields the virtual clock in use.

    Process-wide (not per task or thread) on purpose: the code under test often runs in worker
    threads or tasks created before the block. Strategies constructed with an explicit
    ``clock=`` keep it. Timeouts still use real time, since they bound waits rather than add them.
    """
    vc = clock if clock is not None else VirtualClock()
    _override.append(vc)
    try:
        yield vc
    finally:
        _override.remove(vc)


# Keep pytest from collecting ``test_mode`` when users import it into a test module.
test_mode.__test__ = False  # type: ignore[attr-defined]
