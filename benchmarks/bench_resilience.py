"""Per-call overhead of flowtel.resilience, against a bare call and a raw OpenTelemetry span.

Run: ``PYTHONPATH=src python benchmarks/bench_resilience.py [--calls N]``

Everything is measured in the same process and run: the bare call, a call inside a plain SDK
span (``tracer.start_as_current_span``, no exporter), a closed circuit breaker, a rate limiter
with spare capacity, a successful ``retry`` (flowtel's and tenacity's), and the async forms.
All strategies record their metrics into a real SDK MeterProvider (InMemoryMetricReader), so
the numbers include the telemetry cost. Each figure is the best of several repeats.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider

from flowtel.resilience import circuit_breaker, rate_limit, retry, timeout

REPEATS = 7


def batch_s(fn: Callable[[], object], calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return time.perf_counter() - start


def batch_async_s(fn: Callable[[], Awaitable[object]], calls: int) -> float:
    async def loop() -> float:
        start = time.perf_counter()
        for _ in range(calls):
            await fn()
        return time.perf_counter() - start

    return asyncio.run(loop())


def best_us(rows: list[tuple[str, Callable[[], float], int]]) -> dict[str, float]:
    """Best per-call time of each row; rounds interleave the rows so load drift hits all alike."""
    best = {name: float("inf") for name, _, _ in rows}
    for _ in range(REPEATS):
        for name, run, calls in rows:
            best[name] = min(best[name], run() / calls * 1e6)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=50_000)
    calls = parser.parse_args().calls

    reader = InMemoryMetricReader()
    mp = MeterProvider(metric_readers=[reader])
    tracer = TracerProvider().get_tracer("bench")

    def upstream() -> int:
        return 1

    async def aupstream() -> int:
        return 1

    def in_span() -> int:
        with tracer.start_as_current_span("upstream"):
            return upstream()

    breaker = circuit_breaker("bench", meter_provider=mp)(upstream)
    limiter = rate_limit(1e12, burst=1e12, meter_provider=mp)(upstream)
    retried = retry(3, meter_provider=mp)(upstream)
    retried_noop = retry(3, meter_provider=NoOpMeterProvider())(upstream)
    breaker_noop = circuit_breaker("noop", meter_provider=NoOpMeterProvider())(upstream)
    abreaker = circuit_breaker("abench", meter_provider=mp)(aupstream)
    alimiter = rate_limit(1e12, burst=1e12, meter_provider=mp)(aupstream)
    atimeout = timeout(10.0, meter_provider=mp)(aupstream)

    def sync(name: str, fn: Callable[[], object], n: int = calls) -> tuple[str, Any, int]:
        return name, lambda: batch_s(fn, n), n

    def coro(name: str, fn: Callable[[], Awaitable[object]]) -> tuple[str, Any, int]:
        return name, lambda: batch_async_s(fn, calls), calls

    sync_rows = [
        sync("bare call", upstream),
        sync("raw OTel span around the call", in_span),
        sync("closed circuit breaker", breaker),
        sync("  breaker logic only (no-op meter)", breaker_noop),
        sync("rate limiter with capacity", limiter),
        sync("retry, first attempt succeeds", retried),
        sync("  retry logic only (no-op meter)", retried_noop),
    ]
    try:
        import tenacity
    except ImportError:  # pragma: no cover - tenacity is in the resilience extra
        pass
    else:
        ten = tenacity.retry(
            stop=tenacity.stop_after_attempt(3),
            wait=tenacity.wait_random_exponential(multiplier=0.1, max=10),
            reraise=True,
        )(upstream)
        sync_rows.append(sync("tenacity.retry, first attempt succeeds", ten, calls // 5))
    async_rows = [
        coro("bare coroutine call", aupstream),
        coro("closed circuit breaker (async)", abreaker),
        coro("rate limiter with capacity (async)", alimiter),
        coro("timeout (asyncio.timeout)", atimeout),
    ]
    measured = best_us(sync_rows + async_rows)
    rows = [(name, measured[name]) for name, _, _ in sync_rows]
    arows = [(name, measured[name]) for name, _, _ in async_rows]
    bare_async = arows[0][1]

    bare, span = rows[0][1], rows[1][1]
    print(f"{'sync':40} {'us/call':>9} {'x bare':>8} {'x span':>8}")
    for name, us in rows:
        print(f"{name:40} {us:9.3f} {us / bare:8.1f} {us / span:8.2f}")
    print(f"\n{'async':40} {'us/call':>9} {'x bare':>8} {'x span':>8}")
    for name, us in arows:
        print(f"{name:40} {us:9.3f} {us / bare_async:8.1f} {us / span:8.2f}")
    mp.shutdown()


if __name__ == "__main__":
    main()
