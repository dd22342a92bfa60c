"""What the Sentry bridge costs the application thread, versus raw OpenTelemetry, in one run.

Run: ``python benchmarks/bench_sentry.py``. Three comparisons on identical tracer providers
(raw = no bridge, flowtel = with :class:`flowtel.sentry.SentryBridge` and real sentry-sdk):

* a span that succeeds (the bridge's fast path: no exception event, nothing to do);
* a span that fails with a fresh exception, Sentry up (a loopback ingestion endpoint);
* the same with Sentry down (connection refused) and slow (holds every request 30 s).

Per-call nanoseconds are the best of interleaved repeats. Failing calls include the GIL share
taken by the bridge's capture thread and sentry-sdk's transport thread while they keep up, so
the number is what a tight loop of failures really pays.
"""

from __future__ import annotations

import gc
import sys
import timeit
from collections.abc import Callable
from pathlib import Path

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Tracer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.sentry_server import SentryServer, refused_port

from flowtel.sentry import SentryBridge

N_OK = 20_000
N_FAIL = 200
REPEATS = 5


class BenchError(Exception):
    """Raised by the failing operation."""


def ok_call(tracer: Tracer) -> Callable[[], None]:
    def call() -> None:
        with tracer.start_as_current_span("ok"):
            pass

    return call


def failing_call(tracer: Tracer) -> Callable[[], None]:
    def call() -> None:
        try:
            with tracer.start_as_current_span("fail"):
                raise BenchError("declined")
        except BenchError:
            pass

    return call


def per_call_ns(fn: Callable[[], None], number: int) -> float:
    return timeit.timeit(fn, number=number) / number * 1e9


def compare(label: str, raw: Callable[[], None], ours: Callable[[], None], number: int) -> None:
    raw_t, our_t = [], []
    for _ in range(REPEATS):
        gc.collect()
        raw_t.append(per_call_ns(raw, number))
        gc.collect()
        our_t.append(per_call_ns(ours, number))
    r, o = min(raw_t), min(our_t)
    print(f"{label:<34} raw {r:9.0f} ns   flowtel {o:9.0f} ns   ratio {o / r:5.2f}x")


def bridged(dsn: str, **init: object) -> tuple[TracerProvider, Tracer, SentryBridge]:
    provider = TracerProvider()
    bridge = SentryBridge(shutdown_timeout_s=0.5)
    bridge.init_sentry(dsn, **init)  # type: ignore[arg-type]
    provider.add_span_processor(bridge)
    return provider, provider.get_tracer("bench"), bridge


def main() -> None:
    raw_provider = TracerProvider()
    raw = raw_provider.get_tracer("bench")
    server = SentryServer().start()
    try:
        provider, tracer, _ = bridged(server.dsn)
        failing_call(tracer)()  # warm linecache and sentry-sdk
        compare("span ok, Sentry up", ok_call(raw), ok_call(tracer), N_OK)
        compare("span fails, Sentry up", failing_call(raw), failing_call(tracer), N_FAIL)
        provider.shutdown()

        provider, tracer, _ = bridged(f"http://public@127.0.0.1:{refused_port()}/1")
        failing_call(tracer)()
        compare("span fails, Sentry down", failing_call(raw), failing_call(tracer), N_FAIL)
        provider.shutdown()

        server.delay_s = 30.0
        provider, tracer, _ = bridged(server.dsn, transport_queue_size=10)
        failing_call(tracer)()
        compare("span fails, Sentry slow (30 s)", failing_call(raw), failing_call(tracer), N_FAIL)
        provider.shutdown()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
