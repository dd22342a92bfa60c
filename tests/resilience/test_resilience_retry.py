"""Retry: backoff sequence and caps, Retry-After hints, outcomes and telemetry."""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import random
import time
from typing import Any

import httpx
import pytest

from flowtel import resilience, semconv
from flowtel.exceptions import CircuitOpenError, ConfigurationError
from flowtel.resilience import VirtualClock, retry
from tests.resilience.resilience_support import Metrics, Spans

pytestmark = pytest.mark.anyio
RETRY_EVENT = semconv.EVENT_RESILIENCE_RETRY


class Flaky:
    """Fails ``failures`` times with ``exc``, then returns ``"ok"``."""

    def __init__(self, failures: int, exc: BaseException | None = None) -> None:
        self.failures = failures
        self.exc = exc or ConnectionError("upstream reset")
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.exc
        return "ok"


class Throttled(Exception):
    def __init__(self, retry_after: object) -> None:
        super().__init__("429")
        self.retry_after = retry_after


def delays(spans: Spans) -> list[float]:
    return [e[semconv.RESILIENCE_DELAY] for e in spans.events(RETRY_EVENT)]


class TestBackoff:
    def test_exponential_sequence_capped_by_max_delay(
        self, clock: VirtualClock, spans: Spans, metrics: Metrics
    ) -> None:
        """Without jitter the delays are backoff_s * multiplier**n, capped at max_delay_s."""
        fn = retry(
            6,
            backoff_s=0.1,
            multiplier=2,
            max_delay_s=0.5,
            jitter=False,
            clock=clock,
            meter_provider=metrics.provider,
        )(Flaky(5))
        with spans.tracer.start_as_current_span("call"):
            assert fn() == "ok"
        assert delays(spans) == pytest.approx([0.1, 0.2, 0.4, 0.5, 0.5])
        assert clock.slept_s == pytest.approx(1.7)

    def test_full_jitter_draws_uniformly_below_the_ceiling(
        self, clock: VirtualClock, spans: Spans
    ) -> None:
        """With jitter each delay is rng.uniform(0, ceiling): reproducible with a seeded rng."""
        fn = retry(
            5, backoff_s=1.0, multiplier=3, max_delay_s=20, clock=clock, rng=random.Random(7)
        )(Flaky(4))
        with spans.tracer.start_as_current_span("call"):
            fn()
        expected_rng = random.Random(7)
        expected = [expected_rng.uniform(0, c) for c in (1.0, 3.0, 9.0, 20.0)]
        assert delays(spans) == pytest.approx(expected)
        assert all(0 <= d <= c for d, c in zip(delays(spans), (1, 3, 9, 20), strict=True))

    def test_attempts_cap_reraises_the_last_error(self, clock: VirtualClock) -> None:
        """After ``attempts`` calls the original exception propagates unchanged."""
        flaky = Flaky(10)
        with pytest.raises(ConnectionError, match="upstream reset"):
            retry(3, clock=clock)(flaky)()
        assert flaky.calls == 3

    def test_total_timeout_stops_before_a_delay_that_would_cross_it(
        self, clock: VirtualClock
    ) -> None:
        """A delay that would end past total_timeout_s is not taken."""
        flaky = Flaky(10)
        policy = retry(
            10, backoff_s=1.0, multiplier=2, jitter=False, total_timeout_s=2.5, clock=clock
        )
        with pytest.raises(ConnectionError):
            policy(flaky)()
        assert flaky.calls == 2  # delays 1.0 then 2.0: 1 + 2 > 2.5
        assert clock.slept_s == pytest.approx(1.0)

    def test_huge_attempt_numbers_do_not_overflow(self) -> None:
        """The ceiling saturates at max_delay_s even for absurd attempt counts."""
        assert retry(backoff_s=1, multiplier=10, max_delay_s=7).backoff_ceiling(10_000) == 7


class TestRetryOn:
    def test_non_matching_error_is_not_retried(self, clock: VirtualClock) -> None:
        """An exception outside retry_on propagates after one attempt."""
        flaky = Flaky(1, KeyError("k"))
        with pytest.raises(KeyError):
            retry(3, retry_on=ConnectionError, clock=clock)(flaky)()
        assert flaky.calls == 1

    def test_predicate_decides(self, clock: VirtualClock) -> None:
        """A predicate over the exception selects what is retried."""
        flaky = Flaky(2, ValueError("transient"))
        fn = retry(3, retry_on=lambda e: "transient" in str(e), clock=clock)(flaky)
        assert fn() == "ok"
        assert flaky.calls == 3

    def test_breaker_rejections_are_not_retried_by_default(self, clock: VirtualClock) -> None:
        """CircuitOpenError is immediate; the default policy does not burn attempts on it."""
        flaky = Flaky(5, CircuitOpenError("open"))
        with pytest.raises(CircuitOpenError):
            retry(3, clock=clock)(flaky)()
        assert flaky.calls == 1

    def test_base_exceptions_are_never_retried(self, clock: VirtualClock) -> None:
        """KeyboardInterrupt passes through even when retry_on matches everything."""
        flaky = Flaky(1, KeyboardInterrupt())
        with pytest.raises(KeyboardInterrupt):
            retry(3, retry_on=BaseException, clock=clock)(flaky)()
        assert flaky.calls == 1

    def test_bad_retry_on_fails_fast(self) -> None:
        """retry_on must be exception types or a predicate."""
        with pytest.raises(ConfigurationError, match="retry_on"):
            retry(retry_on=(ValueError, "nope"))  # type: ignore[arg-type]

    @pytest.mark.parametrize(
        ("option", "value"),
        [("attempts", 0), ("backoff_s", -1), ("multiplier", 0.5), ("total_timeout_s", 0)],
    )
    def test_bad_options_fail_fast(self, option: str, value: float) -> None:
        """Out-of-range options raise ConfigurationError naming the option."""
        with pytest.raises(ConfigurationError, match=option):
            retry(**{option: value})


class TestRetryAfter:
    def test_seconds_hint_replaces_backoff(self, clock: VirtualClock, spans: Spans) -> None:
        """A retry_after attribute in seconds is used as the exact delay, without jitter."""
        fn = retry(3, backoff_s=0.01, max_delay_s=30, clock=clock)(Flaky(1, Throttled("3")))
        with spans.tracer.start_as_current_span("call"):
            fn()
        assert delays(spans) == [3.0]

    def test_http_header_on_a_real_httpx_error(self, clock: VirtualClock, spans: Spans) -> None:
        """The Retry-After header of an httpx HTTPStatusError's response is honoured."""
        request = httpx.Request("GET", "http://127.0.0.1/v1/complete")
        response = httpx.Response(429, headers={"Retry-After": "2"}, request=request)
        error = httpx.HTTPStatusError("429", request=request, response=response)
        with spans.tracer.start_as_current_span("call"):
            retry(2, clock=clock)(Flaky(1, error))()
        assert delays(spans) == [2.0]

    def test_http_date_hint(self) -> None:
        """An HTTP-date hint becomes the seconds until that date."""
        when = email.utils.formatdate(time.time() + 120, usegmt=True)
        hint = resilience.retry_after_hint(Throttled(when))
        assert hint is not None and 110 < hint <= 120

    def test_hint_beyond_max_delay_ends_retries(self, clock: VirtualClock) -> None:
        """Calling before the upstream is ready would fail again, so retrying stops."""
        flaky = Flaky(1, Throttled(60))
        with pytest.raises(Throttled):
            retry(3, max_delay_s=10, clock=clock)(flaky)()
        assert flaky.calls == 1 and clock.slept_s == 0

    def test_custom_extractor_and_garbage(self) -> None:
        """Unparseable hints are ignored; a custom extractor can read anything."""
        assert resilience.retry_after_hint(Throttled("soon")) is None
        assert resilience.retry_after_hint(ValueError()) is None
        policy = retry(2, retry_after=lambda e: 0.25, clock=VirtualClock())
        flaky = Flaky(1)
        policy(flaky)()
        assert flaky.calls == 2


class TestForms:
    async def test_async_function(self, clock: VirtualClock, spans: Spans) -> None:
        """Coroutines are retried with the clock's async sleep."""
        calls = 0

        @retry(3, backoff_s=0.5, jitter=False, clock=clock)
        async def fetch() -> int:
            nonlocal calls
            calls += 1
            if calls < 3:
                raise ConnectionError
            return calls

        with spans.tracer.start_as_current_span("call"):
            assert await fetch() == 3
        assert delays(spans) == [0.5, 1.0]

    def test_block_form(self, clock: VirtualClock) -> None:
        """``for attempt in policy: with attempt:`` re-runs a block until it succeeds."""
        flaky = Flaky(2)
        numbers = []
        for attempt in retry(5, clock=clock):
            with attempt:
                numbers.append(attempt.number)
                flaky()
        assert numbers == [1, 2, 3]

    def test_block_form_reraises_when_exhausted(self, clock: VirtualClock) -> None:
        """The last failure escapes the loop."""
        with pytest.raises(ConnectionError):
            for attempt in retry(2, clock=clock):
                with attempt:
                    Flaky(5)()

    async def test_async_block_form(self, clock: VirtualClock) -> None:
        """``async for attempt in policy`` works in coroutines."""
        flaky = Flaky(1)
        async for attempt in retry(3, clock=clock):
            with attempt:
                flaky()
        assert flaky.calls == 2

    def test_wraps_keeps_metadata(self) -> None:
        """The decorated function keeps its name and docstring."""

        @retry()
        def named() -> None:
            """Doc."""

        assert named.__name__ == "named" and named.__doc__ == "Doc."


class TestTelemetry:
    def test_span_event_per_retry(self, clock: VirtualClock, spans: Spans) -> None:
        """Each retry adds attempt number, error type, delay and operation to the span."""
        fn = retry(3, backoff_s=1, jitter=False, name="llm.complete", clock=clock)(Flaky(2))
        with spans.tracer.start_as_current_span("call"):
            fn()
        assert spans.events(RETRY_EVENT) == [
            {
                semconv.RESILIENCE_ATTEMPT: 1,
                semconv.ERROR_TYPE: "ConnectionError",
                semconv.RESILIENCE_DELAY: 1.0,
                semconv.OPERATION: "llm.complete",
            },
            {
                semconv.RESILIENCE_ATTEMPT: 2,
                semconv.ERROR_TYPE: "ConnectionError",
                semconv.RESILIENCE_DELAY: 2.0,
                semconv.OPERATION: "llm.complete",
            },
        ]

    @pytest.mark.parametrize(
        ("failures", "attempts", "outcome"),
        [
            (0, 3, "success"),
            (2, 3, "success_after_retry"),
            (1, 1, "failed"),
            (5, 3, "failed_after_retry"),
        ],
    )
    def test_outcome_taxonomy(
        self, clock: VirtualClock, metrics: Metrics, failures: int, attempts: int, outcome: str
    ) -> None:
        """Each call is counted once under exactly one outcome."""
        fn = retry(attempts, name="op", clock=clock, meter_provider=metrics.provider)(
            Flaky(failures)
        )
        with contextlib.suppress(ConnectionError):
            fn()
        points = metrics.points(semconv.METRIC_RESILIENCE_CALLS)
        assert [(a, p.value) for a, p in points] == [
            (
                {
                    semconv.RESILIENCE_OUTCOME: outcome,
                    semconv.RESILIENCE_STRATEGY: "retry",
                    semconv.OPERATION: "op",
                },
                1,
            )
        ]

    def test_events_counter_and_attempt_histogram(
        self, clock: VirtualClock, metrics: Metrics
    ) -> None:
        """Retries are counted with error.type; every attempt's duration is recorded."""

        def slow_then_ok(state: dict[str, int] = {"n": 0}) -> None:  # noqa: B006
            state["n"] += 1
            clock.advance(0.25)
            if state["n"] < 3:
                raise TimeoutError

        retry(3, name="op", clock=clock, meter_provider=metrics.provider)(slow_then_ok)()
        assert (
            metrics.value(
                semconv.METRIC_RESILIENCE_EVENTS,
                {
                    semconv.RESILIENCE_EVENT: "retry",
                    semconv.RESILIENCE_STRATEGY: "retry",
                    semconv.OPERATION: "op",
                    semconv.ERROR_TYPE: "TimeoutError",
                },
            )
            == 2
        )
        durations = metrics.points(semconv.METRIC_RESILIENCE_ATTEMPT_DURATION)
        by_error = {a.get(semconv.ERROR_TYPE): (p.count, p.sum) for a, p in durations}
        assert by_error == {"TimeoutError": (2, 0.5), None: (1, 0.25)}

    async def test_cancellation_is_not_an_outcome(
        self, clock: VirtualClock, metrics: Metrics
    ) -> None:
        """A cancelled call is neither retried nor counted."""
        started = asyncio.Event()

        @retry(3, clock=clock, meter_provider=metrics.provider)
        async def hang() -> None:
            started.set()
            await asyncio.Event().wait()

        task = asyncio.ensure_future(hang())
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert metrics.points(semconv.METRIC_RESILIENCE_CALLS) == []
        assert metrics.points(semconv.METRIC_RESILIENCE_EVENTS) == []

    def test_no_current_span_is_fine(self, clock: VirtualClock) -> None:
        """Without a recording span the retry still works and emits no error."""
        assert retry(2, clock=clock)(Flaky(1))() == "ok"


class TestTestMode:
    def test_waits_are_virtual(self) -> None:
        """Inside test_mode a 10-minute backoff returns at once and is counted in virtual time."""
        started = time.monotonic()
        with resilience.test_mode() as vc:
            retry(3, backoff_s=300, max_delay_s=600, jitter=False)(Flaky(2))()
        assert vc.slept_s == 900
        assert time.monotonic() - started < 5

    async def test_async_waits_are_virtual(self) -> None:
        """Async retries also sleep on the virtual clock."""

        async def fail() -> Any:
            raise ConnectionError

        with resilience.test_mode() as vc, pytest.raises(ConnectionError):
            await retry(4, backoff_s=60, max_delay_s=1000, jitter=False)(fail)()
        assert vc.slept_s == 60 + 120 + 240
        await asyncio.sleep(0)
