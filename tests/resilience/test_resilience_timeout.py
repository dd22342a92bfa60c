"""Timeout: exact for coroutines, best-effort (and honest about it) for sync code."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from opentelemetry import trace

from flowtel import semconv
from flowtel.exceptions import ConfigurationError
from flowtel.resilience import VirtualClock, timeout
from tests.resilience.resilience_support import Metrics, Spans

pytestmark = pytest.mark.anyio

BOUND_S = 5.0  # generous latency bound: a 50 ms timeout must fire long before this


def calls(metrics: Metrics) -> dict[str, float]:
    return {
        a[semconv.RESILIENCE_OUTCOME]: p.value
        for a, p in metrics.points(semconv.METRIC_RESILIENCE_CALLS)
    }


class TestCoroutines:
    async def test_cancels_at_the_deadline(self, metrics: Metrics, spans: Spans) -> None:
        """A coroutine that never finishes is cancelled and the caller gets TimeoutError."""
        cancelled = asyncio.Event()

        @timeout(0.05, name="llm.complete", meter_provider=metrics.provider)
        async def hang() -> None:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                cancelled.set()
                raise

        started = time.monotonic()
        with (
            spans.tracer.start_as_current_span("call"),
            pytest.raises(TimeoutError, match=r"llm.complete did not finish within 0.05s"),
        ):
            await hang()
        assert time.monotonic() - started < BOUND_S
        assert cancelled.is_set()
        assert spans.events(semconv.EVENT_RESILIENCE_TIMEOUT) == [
            {semconv.RESILIENCE_TIMEOUT: 0.05, semconv.OPERATION: "llm.complete"}
        ]
        assert (
            metrics.value(
                semconv.METRIC_RESILIENCE_EVENTS,
                {
                    semconv.RESILIENCE_EVENT: "timeout",
                    semconv.RESILIENCE_STRATEGY: "timeout",
                    semconv.OPERATION: "llm.complete",
                    semconv.ERROR_TYPE: "TimeoutError",
                },
            )
            == 1
        )
        assert calls(metrics) == {"failed": 1}

    async def test_fast_call_passes_through(self, metrics: Metrics) -> None:
        """A call that finishes in time returns its value and counts as success."""

        @timeout(BOUND_S, meter_provider=metrics.provider)
        async def fast() -> int:
            await asyncio.sleep(0)
            return 42

        assert await fast() == 42
        assert calls(metrics) == {"success": 1}

    async def test_callee_timeout_error_is_not_ours(self, metrics: Metrics) -> None:
        """A TimeoutError raised by the callee propagates without a timeout event."""

        @timeout(BOUND_S, meter_provider=metrics.provider)
        async def own_timeout() -> None:
            raise TimeoutError("socket")

        with pytest.raises(TimeoutError, match="socket"):
            await own_timeout()
        assert metrics.value(semconv.METRIC_RESILIENCE_EVENTS) == 0
        assert calls(metrics) == {"failed": 1}

    async def test_outside_cancellation_stays_cancellation(self, metrics: Metrics) -> None:
        """Cancelling the caller's task raises CancelledError, not TimeoutError."""
        started = asyncio.Event()

        @timeout(BOUND_S, meter_provider=metrics.provider)
        async def wait_forever() -> None:
            started.set()
            await asyncio.Event().wait()

        task = asyncio.ensure_future(wait_forever())
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert metrics.value(semconv.METRIC_RESILIENCE_EVENTS) == 0

    async def test_async_with_block(self, metrics: Metrics, spans: Spans) -> None:
        """``async with timeout(...)`` bounds a block the same way."""
        with spans.tracer.start_as_current_span("call"), pytest.raises(TimeoutError):
            async with timeout(0.05, name="block", meter_provider=metrics.provider):
                await asyncio.Event().wait()
        assert spans.events(semconv.EVENT_RESILIENCE_TIMEOUT)[0][semconv.OPERATION] == "block"
        async with timeout(BOUND_S, meter_provider=metrics.provider):
            await asyncio.sleep(0)
        assert calls(metrics) == {"failed": 1, "success": 1}


class TestSyncFunctions:
    def test_caller_is_released_but_the_call_keeps_running(self, metrics: Metrics) -> None:
        """The caller gets TimeoutError at the deadline; the abandoned call still completes."""
        release, finished = threading.Event(), threading.Event()

        @timeout(0.05, meter_provider=metrics.provider)
        def blocking() -> None:
            release.wait(BOUND_S)
            finished.set()

        started = time.monotonic()
        with pytest.raises(TimeoutError):
            blocking()
        assert time.monotonic() - started < BOUND_S
        assert not finished.is_set()  # it was not interrupted ...
        release.set()
        assert finished.wait(BOUND_S)  # ... and its side effects still happen
        assert calls(metrics) == {"failed": 1}

    def test_result_exception_and_span_cross_the_thread(self, spans: Spans) -> None:
        """Return values and exceptions come back; the caller's span is current in the call."""
        seen = []

        @timeout(BOUND_S)
        def inner(x: int) -> int:
            seen.append(trace.get_current_span())
            if x < 0:
                raise ValueError("negative")
            return x * 2

        with spans.tracer.start_as_current_span("call") as span:
            assert inner(21) == 42
            with pytest.raises(ValueError, match="negative"):
                inner(-1)
        assert seen == [span, span]


class TestSyncBlocks:
    def test_overrun_is_detected_after_the_block(self, clock: VirtualClock, spans: Spans) -> None:
        """A sync block cannot be interrupted; an overrun raises TimeoutError when it ends."""
        ran_to_end = False
        with (
            spans.tracer.start_as_current_span("call"),
            pytest.raises(TimeoutError),
            timeout(1.0, name="batch", clock=clock),
        ):
            clock.advance(1.5)
            ran_to_end = True
        assert ran_to_end
        assert spans.events(semconv.EVENT_RESILIENCE_TIMEOUT) == [
            {semconv.RESILIENCE_TIMEOUT: 1.0, semconv.OPERATION: "batch"}
        ]

    def test_block_within_limit_and_errors_pass(self, clock: VirtualClock) -> None:
        """A block within the limit is silent; its own exception is not replaced."""
        with timeout(1.0, clock=clock):
            clock.advance(0.5)
        with pytest.raises(KeyError), timeout(1.0, clock=clock):
            clock.advance(5)
            raise KeyError("x")

    def test_non_positive_timeout_fails_fast(self) -> None:
        """timeout(0) is a configuration error."""
        with pytest.raises(ConfigurationError, match="seconds"):
            timeout(0)
