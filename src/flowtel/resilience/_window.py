"""Sliding windows of call outcomes for the circuit breaker.

Two shapes, as in resilience4j: the last N calls (a ring with running totals, O(1) per call)
or the last N seconds (a ring of time buckets; a bucket is reset when its slot is reused and
skipped when it is older than the window, so idle time needs no timer).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["CountRing", "CountWindow", "TimeRing", "TimeWindow"]


@dataclass(frozen=True, slots=True)
class CountWindow:
    """A count-based sliding window over the last ``size`` calls."""

    size: int = 100


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """A time-based sliding window over the last ``size_s`` seconds, kept in ``buckets``."""

    size_s: float = 60.0
    buckets: int = 10


class CountRing:
    """Outcomes of the last ``size`` calls, with running totals (O(1) per call)."""

    def __init__(self, size: int) -> None:
        self._slots: list[tuple[bool, bool] | None] = [None] * size
        self._next = 0
        self.calls = self.failed = self.slow = 0

    def record(self, now: float, failed: bool, slow: bool) -> None:
        old = self._slots[self._next]
        if old is not None:
            self.calls -= 1
            self.failed -= old[0]
            self.slow -= old[1]
        self._slots[self._next] = (failed, slow)
        self._next = (self._next + 1) % len(self._slots)
        self.calls += 1
        self.failed += failed
        self.slow += slow

    def totals(self, now: float) -> tuple[int, int, int]:
        return self.calls, self.failed, self.slow


class TimeRing:
    """Per-bucket counts over the last ``size_s`` seconds; stale buckets are skipped."""

    def __init__(self, size_s: float, buckets: int) -> None:
        self._width = size_s / buckets
        self._epochs = [-1] * buckets
        self._counts = [[0, 0, 0] for _ in range(buckets)]

    def record(self, now: float, failed: bool, slow: bool) -> None:
        epoch = math.floor(now / self._width)
        i = epoch % len(self._epochs)
        if self._epochs[i] != epoch:
            self._epochs[i] = epoch
            self._counts[i] = [0, 0, 0]
        c = self._counts[i]
        c[0] += 1
        c[1] += failed
        c[2] += slow

    def totals(self, now: float) -> tuple[int, int, int]:
        current = math.floor(now / self._width)
        calls = failed = slow = 0
        for epoch, c in zip(self._epochs, self._counts, strict=True):
            if current - len(self._epochs) < epoch <= current:
                calls, failed, slow = calls + c[0], failed + c[1], slow + c[2]
        return calls, failed, slow
