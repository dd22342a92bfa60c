"""The event-loop heartbeat behind ``/alive``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from flowtel.exceptions import ConfigurationError

__all__ = ["LivenessMonitor"]


class LivenessMonitor:
    """An event-loop heartbeat: the process is wedged when the loop stops turning.

    A task wakes every ``interval_s`` and stamps the time; ``/alive`` fails when the last stamp
    is older than ``max_lag_s`` (a blocking call, a deadlock, a runaway CPU loop).

    Args:
        interval_s: heartbeat period.
        max_lag_s: oldest acceptable heartbeat.
        clock: monotonic seconds, injectable for tests.
    """

    def __init__(
        self,
        *,
        interval_s: float = 1.0,
        max_lag_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if interval_s <= 0:
            raise ConfigurationError("heartbeat_interval_s", interval_s, "seconds > 0")
        if max_lag_s <= interval_s:
            raise ConfigurationError("alive_max_lag_s", max_lag_s, "seconds > heartbeat interval")
        self.interval_s = interval_s
        self.max_lag_s = max_lag_s
        self._clock = clock
        self._last_beat = clock()
        self._lag_s = 0.0
        self._task: asyncio.Task[None] | None = None

    def beat(self) -> None:
        """Stamp the heartbeat now."""
        self._last_beat = self._clock()

    def stale_s(self) -> float:
        """Seconds since the last heartbeat."""
        return max(0.0, self._clock() - self._last_beat)

    def lag_s(self) -> float:
        """How late the last heartbeat woke up versus its schedule (event-loop lag)."""
        return self._lag_s

    def alive(self) -> bool:
        """False when the loop has not turned for longer than ``max_lag_s``."""
        return self.stale_s() <= self.max_lag_s

    def start(self) -> None:
        """Start the heartbeat task on the running loop."""
        if self._task is None:
            self.beat()
            self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        """Stop the heartbeat task."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            expected = self._clock() + self.interval_s
            await asyncio.sleep(self.interval_s)
            self._lag_s = max(0.0, self._clock() - expected)
            self.beat()
