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

from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider

from flowtel.resilience import circuit_breaker, rate_limit, retry, timeout

REPEATS = 5


def per_call_us(fn: Callable[[], object], calls: int) -> float:
    best = float("inf")
    for _ in range(REPEATS):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        best = min(best, time.perf_counter() - start)
    return best / calls * 1e6


def per_call_us_async(fn: Callable[[], Awaitable[object]], calls: int) -> float:
    async def loop() -> float:
        start = time.perf_counter()
        for _ in range(calls):
            await fn()
        return time.perf_counter() - start

    return min(asyncio.run(loop()) for _ in range(REPEATS)) / calls * 1e6


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

    rows: list[tuple[str, float]] = [
        ("bare call", per_call_us(upstream, calls)),
        ("raw OTel span around the call", per_call_us(in_span, calls)),
        ("closed circuit breaker", per_call_us(breaker, calls)),
        ("rate limiter with capacity", per_call_us(limiter, calls)),
        ("retry, first attempt succeeds", per_call_us(retried, calls)),
        ("  same, no-op meter (logic only)", per_call_us(retried_noop, calls)),
        ("  closed breaker, no-op meter", per_call_us(breaker_noop, calls)),
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
        rows.append(("tenacity.retry, first attempt succeeds", per_call_us(ten, calls // 5)))
    bare_async = per_call_us_async(aupstream, calls)
    async_rows = [
        ("bare coroutine call", bare_async),
        ("closed circuit breaker (async)", per_call_us_async(abreaker, calls)),
        ("rate limiter with capacity (async)", per_call_us_async(alimiter, calls)),
        ("timeout (asyncio.timeout)", per_call_us_async(atimeout, calls)),
    ]

    bare, span = rows[0][1], rows[1][1]
    print(f"{'sync':40} {'us/call':>9} {'x bare':>8} {'x span':>8}")
    for name, us in rows:
        print(f"{name:40} {us:9.3f} {us / bare:8.1f} {us / span:8.2f}")
    print(f"\n{'async':40} {'us/call':>9} {'x bare':>8} {'x span':>8}")
    for name, us in async_rows:
        print(f"{name:40} {us:9.3f} {us / bare_async:8.1f} {us / span:8.2f}")
    mp.shutdown()


if __name__ == "__main__":
    main()
