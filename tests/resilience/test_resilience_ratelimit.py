"""Rate limiter: FIFO fairness, rate accuracy, max wait, adaptivity and telemetry."""

from __future__ import annotations

import asyncio
import threading

import httpx
import pytest

from flowtel import semconv
from flowtel.exceptions import ConfigurationError, RateLimitExceededError
from flowtel.resilience import RateLimiter, VirtualClock, is_http_429, rate_limit
from tests.resilience.resilience_support import Metrics, Spans

pytestmark = pytest.mark.anyio
NAME = {semconv.RESILIENCE_NAME: "llm"}


class Status429(Exception):
    status_code = 429


class TestFairnessAndRate:
    async def test_waiters_are_served_in_arrival_order(self, clock: VirtualClock) -> None:
        """Tasks that queue on an empty bucket get their permits first-come, first-served."""
        limiter = rate_limit(10, burst=1, clock=clock)
        served: list[int] = []

        async def worker(i: int) -> None:
            await limiter.acquire()
            served.append(i)

        await asyncio.gather(*(worker(i) for i in range(50)))
        assert served == list(range(50))

    async def test_rate_is_exact_over_many_acquisitions(self, clock: VirtualClock) -> None:
        """2000 permits at 50/s with burst 5 take exactly (2000 - 5) / 50 virtual seconds."""
        limiter = rate_limit(50, burst=5, clock=clock)
        start = clock.now()

        async def worker() -> None:
            for _ in range(20):
                await limiter.acquire()

        await asyncio.gather(*(worker() for _ in range(100)))
        assert clock.now() - start == pytest.approx((2000 - 5) / 50)

    def test_threads_lose_no_permits(self, clock: VirtualClock) -> None:
        """Eight threads sharing a limiter take exactly the time the rate allows."""
        limiter = rate_limit(100, per=2.0, burst=10, clock=clock)
        start = clock.now()

        def worker() -> None:
            for _ in range(125):
                limiter.acquire_sync()

        threads = [threading.Thread(target=worker) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert clock.now() - start == pytest.approx((1000 - 10) / 50)

    def test_burst_is_free_then_the_rate_applies(self, clock: VirtualClock) -> None:
        """The first ``burst`` permits cost nothing; the next waits one interval."""
        limiter = rate_limit(4, burst=3, clock=clock)
        assert [limiter.acquire_sync() for _ in range(4)] == [0, 0, 0, 0.25]
        clock.advance(10)
        assert limiter.available_permits() == 3  # refills up to burst, not beyond

    def test_multi_permit_requests_and_limits(self, clock: VirtualClock) -> None:
        """A request for n permits waits for n; more than burst is a configuration error."""
        limiter = rate_limit(2, burst=4, clock=clock)
        assert limiter.acquire_sync(4) == 0
        assert limiter.acquire_sync(3) == pytest.approx(1.5)
        with pytest.raises(ConfigurationError, match="permits"):
            limiter.acquire_sync(5)


class TestMaxWait:
    def test_rejects_at_once_without_taking_permits(
        self, clock: VirtualClock, metrics: Metrics, spans: Spans
    ) -> None:
        """A caller whose wait would exceed max_wait_s is rejected immediately."""
        limiter = rate_limit(
            1, burst=1, max_wait_s=0.5, name="llm", clock=clock, meter_provider=metrics.provider
        )
        limiter.acquire_sync()
        before = clock.now()
        with (
            spans.tracer.start_as_current_span("call"),
            pytest.raises(
                RateLimitExceededError, match=r"'llm': a permit needs 1.000s, over max_wait_s=0.5"
            ),
        ):
            limiter.acquire_sync()
        assert clock.now() == before
        assert limiter.acquire_sync(max_wait_s=None) == 1.0  # nothing was reserved
        assert spans.events(semconv.EVENT_RESILIENCE_REJECTED) == [
            {
                semconv.RESILIENCE_NAME: "llm",
                semconv.RESILIENCE_STRATEGY: "rate_limit",
                semconv.RESILIENCE_WAIT: 1.0,
            }
        ]
        assert (
            metrics.value(
                semconv.METRIC_RESILIENCE_EVENTS,
                {
                    semconv.RESILIENCE_EVENT: "rejected",
                    semconv.RESILIENCE_STRATEGY: "rate_limit",
                    semconv.OPERATION: "llm",
                },
            )
            == 1
        )

    async def test_decorated_rejection_counts_not_permitted(
        self, clock: VirtualClock, metrics: Metrics
    ) -> None:
        """Through the decorator a rejection is a not_permitted call; the function is not run."""
        ran = 0

        @rate_limit(1, burst=1, max_wait_s=0, clock=clock, meter_provider=metrics.provider)
        async def call() -> None:
            nonlocal ran
            ran += 1

        await call()
        with pytest.raises(RateLimitExceededError):
            await call()
        assert ran == 1
        outcomes = {
            a[semconv.RESILIENCE_OUTCOME]: p.value
            for a, p in metrics.points(semconv.METRIC_RESILIENCE_CALLS)
        }
        assert outcomes == {"success": 1, "not_permitted": 1}

    async def test_cancelled_waiter_returns_its_permit(self, clock: VirtualClock) -> None:
        """A task cancelled while waiting gives its reservation back."""
        limiter = rate_limit(1, burst=1, clock=clock)
        limiter.acquire_sync()
        waiter = asyncio.ensure_future(limiter.acquire())
        await asyncio.sleep(0)  # the waiter reserves a permit and starts its 1 s wait
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        # 1 s passed: the bucket refilled the waiter's debt, and the refund is a free permit.
        assert limiter.available_permits() == 1


class TestAdaptive:
    def test_throttling_halves_once_per_cooldown_down_to_the_floor(
        self, clock: VirtualClock
    ) -> None:
        """429s multiply the rate by decrease_factor, once per cooldown, never below min_rate."""
        limiter = rate_limit(16, adaptive=True, min_rate=3, decrease_cooldown_s=1.0, clock=clock)

        @limiter
        def throttled() -> None:
            raise Status429

        rates = []
        for _ in range(4):
            for _ in range(3):  # a burst of in-flight failures counts once
                with pytest.raises(Status429):
                    throttled()
            rates.append(limiter.rate_per_s)
            clock.advance(1.0)
        assert rates == [8, 4, 3, 3]

    def test_recovers_linearly_on_success(self, clock: VirtualClock) -> None:
        """After a decrease, successes raise the rate by rate/recovery_s per second."""
        limiter = rate_limit(10, adaptive=True, recovery_s=10, clock=clock)
        limiter.throttled()
        assert limiter.rate_per_s == 5
        seen = []
        for _ in range(6):
            clock.advance(1.0)
            with limiter:
                pass
            seen.append(limiter.rate_per_s)
        assert seen == pytest.approx([6, 7, 8, 9, 10, 10])

    def test_non_throttling_errors_do_not_lower_the_rate(self, clock: VirtualClock) -> None:
        """Only errors matching is_throttled count as signals."""
        limiter = rate_limit(10, adaptive=True, clock=clock)
        with pytest.raises(ValueError), limiter:
            raise ValueError
        assert limiter.rate_per_s == 10

    def test_non_adaptive_ignores_signals(self, clock: VirtualClock) -> None:
        """Without adaptive=True a 429 leaves the rate alone."""
        limiter = rate_limit(10, clock=clock)
        with pytest.raises(Status429), limiter:
            raise Status429
        assert limiter.rate_per_s == 10

    def test_http_429_detection_on_real_httpx_errors(self) -> None:
        """is_http_429 recognises httpx's HTTPStatusError carrying a 429 response."""
        request = httpx.Request("POST", "http://127.0.0.1/v1/embeddings")

        def error(status: int) -> httpx.HTTPStatusError:
            response = httpx.Response(status, request=request)
            return httpx.HTTPStatusError(str(status), request=request, response=response)

        assert is_http_429(error(429)) and not is_http_429(error(503))


class TestTelemetry:
    def test_wait_histogram_and_long_wait_events(
        self, clock: VirtualClock, metrics: Metrics, spans: Spans
    ) -> None:
        """Every wait is recorded; waits over the threshold add a span event and a count."""
        limiter = rate_limit(
            2,
            burst=1,
            wait_event_threshold_s=0.4,
            name="llm",
            clock=clock,
            meter_provider=metrics.provider,
        )
        with spans.tracer.start_as_current_span("call"):
            limiter.acquire_sync()
            clock.advance(0.2)
            limiter.acquire_sync()  # waits 0.3 s: below the threshold
            limiter.acquire_sync()  # waits 0.5 s: over it
        [(attrs, point)] = metrics.points(semconv.METRIC_RATE_LIMITER_WAIT)
        assert attrs == NAME and point.count == 3 and point.sum == pytest.approx(0.8)
        assert spans.events(semconv.EVENT_RESILIENCE_RATE_LIMITED) == [
            {semconv.RESILIENCE_NAME: "llm", semconv.RESILIENCE_WAIT: pytest.approx(0.5)}
        ]
        assert (
            metrics.value(
                semconv.METRIC_RESILIENCE_EVENTS, {semconv.RESILIENCE_EVENT: "rate_limited"}
            )
            == 1
        )

    def test_permits_and_rate_gauges(self, clock: VirtualClock, metrics: Metrics) -> None:
        """Gauges report available permits and the current rate from creation."""
        limiter = RateLimiter(
            10, burst=5, adaptive=True, name="llm", clock=clock, meter_provider=metrics.provider
        )
        assert metrics.value(semconv.METRIC_RATE_LIMITER_PERMITS, NAME) == 5
        assert metrics.value(semconv.METRIC_RATE_LIMITER_RATE, NAME) == 10
        limiter.acquire_sync(2)
        limiter.throttled()
        assert metrics.value(semconv.METRIC_RATE_LIMITER_PERMITS, NAME) == 0
        assert metrics.value(semconv.METRIC_RATE_LIMITER_RATE, NAME) == 5

    def test_decorator_names_the_limiter_after_the_function(
        self, clock: VirtualClock, metrics: Metrics
    ) -> None:
        """An unnamed limiter takes the decorated function's qualified name."""

        @rate_limit(5, clock=clock, meter_provider=metrics.provider)
        def embed() -> None:
            pass

        embed()
        [(attrs, _)] = metrics.points(semconv.METRIC_RATE_LIMITER_WAIT)
        assert attrs[semconv.RESILIENCE_NAME].endswith("embed")

    @pytest.mark.parametrize(
        ("option", "kwargs"),
        [
            ("rate", {"rate": 0}),
            ("per", {"rate": 1, "per": -1}),
            ("decrease_factor", {"rate": 1, "decrease_factor": 1.0}),
            ("min_rate", {"rate": 1, "min_rate": 2}),
            ("max_wait_s", {"rate": 1, "max_wait_s": -1}),
            ("burst", {"rate": 1, "burst": 0.5}),
        ],
    )
    def test_bad_options_fail_fast(self, option: str, kwargs: dict[str, float]) -> None:
        """Bad options raise ConfigurationError naming the option."""
        with pytest.raises(ConfigurationError, match=option):
            rate_limit(**kwargs)  # type: ignore[arg-type]
