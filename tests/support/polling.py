"""Waiting on background work in tests: poll a condition until a deadline, never a fixed sleep."""

from __future__ import annotations

import time
from collections.abc import Callable

POLL_INTERVAL_S = 0.01
"""How often a condition is re-checked; the deadline, not this, bounds the wait."""


def wait_until(predicate: Callable[[], object], *, timeout_s: float = 10.0, what: str = "") -> None:
    """Poll ``predicate`` until true, failing after ``timeout_s`` (a deadline, not a sleep)."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what or predicate}")
        time.sleep(POLL_INTERVAL_S)
