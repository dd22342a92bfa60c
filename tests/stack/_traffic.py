"""The traffic that makes every flowtel metric move, shared by the scrape test and the pipeline
driver: @traced operations that fail, the Sentry bridge, the resilience strategies, a Lifecycle
with failing and hung work, and counted telemetry loss."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from typing import Any

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider

import flowtel
from flowtel import resilience
from flowtel._export._batch import BoundedBatchSpanProcessor
from flowtel._export._guard import ExportGuard
from flowtel.errors import record_error
from flowtel.lifecycle import Lifecycle, ReadinessMonitor, StartupOrchestrator

DEADLINE_S = 60.0
POLL_S = 0.2


@flowtel.traced(component="agent", operation="plan")
def plan(fail: int) -> str:
    if fail >= 0:
        raise (TimeoutError if fail % 2 else ValueError)(f"planning step {fail} failed")
    return "plan"


@flowtel.traced(component="agent", operation="answer")
def answer(fail: int) -> str:
    return "answer"


@flowtel.traced(component="retriever", operation="search")
def search(fail: int) -> list[str]:
    if fail >= 0:
        raise (TimeoutError if fail % 2 else ValueError)(f"search {fail} failed")
    return ["doc"]


class StockError(Exception):
    """Raised by the traced functions that feed the Sentry bridge."""


@flowtel.traced(component="shop", operation="reserve")
def reserve(sku: str) -> None:
    raise StockError(f"out of stock: {sku}")


@flowtel.traced(component="shop", operation="place_order")
def place_order(sku: str) -> None:
    reserve(sku)


@flowtel.traced(component="shop", operation="checkout")
def checkout(sku: str) -> None:
    place_order(sku)


class UpstreamError(ConnectionError):
    """What the simulated upstream raises."""


class FlakyUpstream:
    """Calls a simulated upstream through flowtel.resilience on virtual time (test mode).

    One round produces every resilience metric: a plain success, a success after a retry, a
    failure after retries, a timeout, a limiter wait, and a breaker that opens and then rejects.
    """

    def __init__(self, provider: MeterProvider) -> None:
        self.clock = resilience.VirtualClock()
        kw: dict[str, Any] = {"clock": self.clock, "meter_provider": provider}
        self.retry = resilience.retry(3, backoff_s=0.05, name="llm.complete", **kw)
        self.once = resilience.retry(2, backoff_s=0.05, name="llm.embed", **kw)
        self.limiter = resilience.rate_limit(1.0, burst=1, name="llm", **kw)
        self.breaker = resilience.circuit_breaker(
            "llm",
            window=resilience.CountWindow(4),
            minimum_calls=4,
            open_for_s=600.0,
            slow_call_duration_s=5.0,
            **kw,
        )
        self.timeout = resilience.timeout(0.01, name="llm.stream", meter_provider=provider)
        self._failures_left = 0

    def _flaky(self) -> str:
        if self._failures_left > 0:
            self._failures_left -= 1
            raise UpstreamError("upstream reset the connection")
        return "ok"

    def _down(self) -> str:
        raise UpstreamError("upstream unavailable")

    async def _hang(self) -> None:
        await asyncio.Event().wait()  # never set: only the timeout ends it

    def round(self) -> None:
        self.retry(self._flaky)()  # success
        self._failures_left = 1
        self.retry(self._flaky)()  # success_after_retry
        with contextlib.suppress(UpstreamError):
            self.once(self._down)()  # failed_after_retry
        with contextlib.suppress(TimeoutError):
            asyncio.run(self.timeout(self._hang)())  # timeout
        for _ in range(2):  # the second call waits ~1 virtual second for a permit
            self.limiter(self._flaky)()
        for _ in range(5):  # four failures open the breaker; the fifth call is rejected
            with contextlib.suppress(UpstreamError, resilience.CircuitOpenError):
                self.breaker(self._down)()


# --------------------------------------------------------------------------------------------
# The instrumented service
# --------------------------------------------------------------------------------------------
class ServiceTraffic:
    """Drives every flowtel module in this process so each metric the dashboards use is emitted.

    All of it is real flowtel: @traced operations counted by the ErrorRateProcessor, the Sentry
    bridge, the resilience strategies, a Lifecycle with a StartupOrchestrator, and the export
    guard behind a bounded batch processor. Probes and readiness come from the example service
    (see :class:`ExampleService`).
    """

    def __init__(self, provider: MeterProvider) -> None:
        self._provider = provider
        self.guard = ExportGuard(export_timeout_s=5.0)
        self.guard.instrument(provider.get_meter("flowtel.stack-test"))
        self._upstream = FlakyUpstream(provider)

    # errors module: @traced operations with failures counted by the ErrorRateProcessor that
    # configure_telemetry installs, plus a handled error through record_error()
    def operations(self, rounds: int) -> None:
        for i in range(rounds):
            fail = i % 5 == 0
            with contextlib.suppress(TimeoutError, ValueError):
                [plan, answer, search][i % 3](i if fail else -1)
        try:
            raise ConnectionResetError("retriever connection reset, retried by the caller")
        except ConnectionResetError as exc:
            record_error(exc, component="retriever", operation="search")

    # lifecycle module: a startup with a failing and a hung non-critical check (DEGRADED), then
    # a shutdown with a hung hook: both overrun a short timeout_s, are abandoned and counted on
    # flowtel.lifecycle.timeouts (the hung work is released once the shutdown is done)
    def startup_and_shutdown(self) -> None:
        release = threading.Event()

        def hang() -> None:
            release.wait(DEADLINE_S)  # until released below; bounded in any case

        orchestrator = StartupOrchestrator(meter_provider=self._provider)
        orchestrator.add(lambda: {"tables": 12}, name="database", timeout_s=5)
        orchestrator.add(lambda: None, name="cache", depends_on=["database"], timeout_s=5)
        orchestrator.add(_llm_unreachable, name="llm_provider", critical=False, timeout_s=5)
        orchestrator.add(hang, name="feature_flags", critical=False, timeout_s=0.05)
        lifecycle = Lifecycle(
            orchestrator, drain_s=0, meter_provider=self._provider, flush=lambda _t: True
        )
        lifecycle.register_shutdown_hook("metrics_push", hang, timeout_s=0.05)

        readiness = ReadinessMonitor(meter_provider=self._provider)
        readiness.add(lambda: True, name="database", interval_s=60)
        readiness.add(lambda: False, name="llm_api", interval_s=60)

        async def run() -> None:
            report = await lifecycle.start()
            assert report.state.value == "DEGRADED", report
            readiness.start()  # first run of every check happens at once
            deadline = time.monotonic() + DEADLINE_S
            while any(v.ok is None for v in readiness.statuses().values()):
                assert time.monotonic() < deadline, "readiness checks never ran"
                await asyncio.sleep(POLL_S)  # polling interval, bounded by the deadline
            await readiness.stop()
            await lifecycle.shutdown()

        try:
            asyncio.run(run())
        finally:
            release.set()

    # sentry module: configure_telemetry(sentry_dsn=...) bridges span exceptions to a Sentry
    # endpoint on loopback; one exception through three spans is 1 sent + 2 duplicates
    def sentry(self) -> None:
        with contextlib.suppress(StockError):
            checkout("sku-1")

    # resilience module: retry, timeout, rate limiter and circuit breaker on one provider
    def resilience(self) -> None:
        self._upstream.round()

    # core: telemetry lost before export, counted by the real ExportGuard behind a real
    # bounded batch processor whose OTLP exporter points at a refused loopback port
    def telemetry_loss(self, endpoint: str) -> ExportGuard:
        guard = self.guard
        exporter = OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces", timeout=1)
        processor = BoundedBatchSpanProcessor(
            exporter, guard, max_queue_size=4, max_export_batch_size=4, schedule_delay_s=60.0
        )
        provider = TracerProvider()
        provider.add_span_processor(processor)
        tracer = provider.get_tracer("flowtel.stack-test")
        for _ in range(1000):  # far beyond the 4-span queue: most are dropped as queue_full
            tracer.start_span("work").end()
        provider.force_flush(timeout_millis=10_000)  # export to the refused port fails
        provider.shutdown()
        return guard


def _llm_unreachable() -> None:
    raise ConnectionError("llm provider unreachable")
