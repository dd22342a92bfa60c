"""User-supplied predicates and hints that raise: they read as "no" and never mask the error."""

from __future__ import annotations

from typing import Any

import pytest

from flowtel.resilience import CircuitBreaker, CountWindow, VirtualClock, rate_limit, retry


def _boom(exc: BaseException) -> bool:
    raise RuntimeError("broken predicate")


class Unboolable:
    def __bool__(self) -> bool:
        raise RuntimeError("broken __bool__")


def test_retry_on_that_raises_means_do_not_retry() -> None:
    calls = []

    def fails() -> None:
        calls.append(1)
        raise ConnectionError("reset")

    policy = retry(3, retry_on=_boom, clock=VirtualClock())
    with pytest.raises(ConnectionError, match="reset"):
        policy(fails)()
    assert calls == [1]


def test_retry_on_returning_an_unusable_truth_value_means_do_not_retry() -> None:
    calls = []

    def fails() -> None:
        calls.append(1)
        raise ConnectionError("reset")

    with pytest.raises(ConnectionError):
        retry(3, retry_on=lambda e: Unboolable(), clock=VirtualClock())(fails)()
    assert calls == [1]


def test_retry_after_that_raises_falls_back_to_backoff() -> None:
    attempts = []

    def flaky() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise ConnectionError("reset")
        return "ok"

    assert retry(3, retry_after=_boom, clock=VirtualClock())(flaky)() == "ok"
    assert len(attempts) == 3


@pytest.mark.parametrize("bad", [_boom, lambda e: Unboolable()])
def test_breaker_record_and_ignore_that_raise_read_as_no(bad: object) -> None:
    """record raising: not a failure; ignore raising: not ignored. The error still propagates."""

    def breaker(name: str, **matcher: Any) -> CircuitBreaker:
        return CircuitBreaker(
            name,
            failure_rate_threshold=0.5,
            window=CountWindow(4),
            minimum_calls=4,
            clock=VirtualClock(),
            **matcher,
        )

    recording = breaker("recording", record=bad)
    for _ in range(8):
        with pytest.raises(ValueError), recording:
            raise ValueError("bad input")
    assert recording.state.name == "CLOSED"  # nothing was recorded as a failure

    ignoring = breaker("ignoring", ignore=bad)
    for _ in range(4):
        with pytest.raises(ValueError), ignoring:
            raise ValueError("bad input")
    assert ignoring.state.name == "OPEN"  # not ignored: counted as failures


def test_is_throttled_that_raises_is_not_a_throttle_signal() -> None:
    limiter = rate_limit(10, adaptive=True, is_throttled=_boom, clock=VirtualClock())
    with pytest.raises(ConnectionError), limiter:
        raise ConnectionError("reset")
    assert limiter.rate_per_s == 10
