"""Examples mypy --strict must accept: the resilience decorators keep signatures exactly."""

from __future__ import annotations

from typing import assert_type

from flowtel.resilience import (
    CircuitBreaker,
    RateLimiter,
    circuit_breaker,
    rate_limit,
    retry,
    timeout,
)


@retry(3)
@timeout(1.0)
@rate_limit(5)
@circuit_breaker("llm")
async def complete(prompt: str, *, max_tokens: int = 256) -> str:
    return prompt[:max_tokens]


@retry(attempts=2, retry_on=ConnectionError)
def fetch(url: str) -> bytes:
    return url.encode()


assert_type(fetch("u"), bytes)
assert_type(rate_limit(1), RateLimiter)
assert_type(circuit_breaker(), CircuitBreaker)


async def use_blocks(limiter: RateLimiter, breaker: CircuitBreaker) -> None:
    async with limiter, breaker, timeout(2.0):
        pass
    with limiter, breaker:
        pass
    for attempt in retry(3):
        with attempt:
            fetch("u")
    waited: float = await limiter.acquire()
    assert_type(waited, float)
    assert_type(await complete("hi", max_tokens=3), str)
