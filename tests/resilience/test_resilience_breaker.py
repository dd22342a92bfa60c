"""Circuit breaker: resilience4j transitions, windows, permits, concurrency and telemetry."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import threading
from collections.abc import Callable
from typing import Any

import pytest

from flowtel import semconv
from flowtel.exceptions import CircuitOpenError, ConfigurationError
from flowtel.resilience import (
    CircuitBreaker,
    CircuitState,
    CountWindow,
    StateTransition,
    TimeWindow,
    VirtualClock,
    circuit_breaker,
)
from tests.resilience.resilience_support import Metrics, Spans

pytestmark = pytest.mark.anyio
CLOSED, OPEN, HALF_OPEN = CircuitState.CLOSED, CircuitState.OPEN, CircuitState.HALF_OPEN


class Upstream:
    """A callable upstream whose next result the test sets; counts the calls that reach it."""

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        self.fail = False
        self.latency_s = 0.0
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        self.clock.advance(self.latency_s)
        if self.fail:
            raise ConnectionError("down")
        return "ok"


def drive(fn: Callable[[], Any], outcomes: str) -> None:
    """Call ``fn`` once per character: ``s`` expects success, ``f`` failure, ``r`` rejection."""
    for o in outcomes:
        expected = {"s": None, "f": ConnectionError, "r": CircuitOpenError}[o]
        if expected is None:
            fn()
        else:
            with pytest.raises(expected):
                fn()


@pytest.fixture
def upstream(clock: VirtualClock) -> Upstream:
    return Upstream(clock)


def breaker(clock: VirtualClock, **kwargs: Any) -> CircuitBreaker:
    options: dict[str, Any] = {
        "window": CountWindow(4),
        "minimum_calls": 4,
        "open_for_s": 30,
        "half_open_calls": 2,
        "clock": clock,
    }
    return CircuitBreaker("llm", **(options | kwargs))


class TestCountWindow:
    def test_no_decision_below_minimum_calls(self, clock: VirtualClock, upstream: Upstream) -> None:
        """Three failures out of three do not open a breaker that needs four calls."""
        cb = breaker(clock)
        upstream.fail = True
        drive(cb(upstream), "fff")
        assert cb.state is CLOSED and cb.metrics().failure_rate is None

    def test_opens_at_the_threshold(self, clock: VirtualClock, upstream: Upstream) -> None:
        """Two failures in the last four calls is 50 %: at the threshold, so it opens."""
        cb = breaker(clock)
        call = cb(upstream)
        drive(call, "ss")
        upstream.fail = True
        drive(call, "f")
        assert cb.state is CLOSED
        drive(call, "f")
        assert cb.state is OPEN

    def test_window_slides(self, clock: VirtualClock, upstream: Upstream) -> None:
        """Old outcomes leave the window: f,s,s,s,f is 1 failure in the last 4, still closed."""
        cb = breaker(clock, failure_rate_threshold=0.5)
        call = cb(upstream)
        for fail in (True, False, False, False, True):
            upstream.fail = fail
            drive(call, "f" if fail else "s")
        assert cb.state is CLOSED and cb.metrics().failure_rate == 0.25

    def test_threshold_is_compared_as_a_rate(self, clock: VirtualClock, upstream: Upstream) -> None:
        """3 failures in 10 calls opens at a 0.3 threshold (no float rounding surprise)."""
        cb = breaker(clock, window=CountWindow(10), minimum_calls=10, failure_rate_threshold=0.3)
        call = cb(upstream)
        drive(call, "sssssss")
        upstream.fail = True
        drive(call, "ff")
        assert cb.state is CLOSED
        drive(call, "f")
        assert cb.state is OPEN

    def test_minimum_is_capped_by_a_smaller_count_window(self, clock: VirtualClock) -> None:
        """As in resilience4j, minimum_calls above the window size becomes the window size."""
        assert breaker(clock, window=CountWindow(10), minimum_calls=100).minimum_calls == 10


class TestTimeWindow:
    def test_old_failures_expire(self, clock: VirtualClock, upstream: Upstream) -> None:
        """Failures older than the window no longer count towards the rate."""
        cb = breaker(clock, window=TimeWindow(10.0, buckets=10), minimum_calls=3)
        call = cb(upstream)
        upstream.fail = True
        drive(call, "ff")
        clock.advance(11.0)
        upstream.fail = False
        drive(call, "sss")
        assert cb.state is CLOSED and cb.metrics().calls == 3
        upstream.fail = True
        drive(call, "ff")
        assert cb.state is CLOSED  # 2 of 5 = 40 %
        drive(call, "f")
        assert cb.state is OPEN  # 3 of 6 = 50 %

    def test_failures_within_the_window_add_up(
        self, clock: VirtualClock, upstream: Upstream
    ) -> None:
        """Calls spread over less than the window all count."""
        cb = breaker(clock, window=TimeWindow(60.0), minimum_calls=4)
        call = cb(upstream)
        upstream.fail = True
        for _ in range(4):
            drive(call, "f")
            clock.advance(14.0)
        assert cb.state is OPEN


class TestOpenAndHalfOpen:
    def open(self, cb: CircuitBreaker, upstream: Upstream) -> None:
        upstream.fail = True
        drive(cb(upstream), "ffff")
        upstream.fail = False
        assert cb.state is OPEN

    def test_open_rejects_immediately(self, clock: VirtualClock, upstream: Upstream) -> None:
        """While open, calls never reach the upstream and raise CircuitOpenError."""
        cb = breaker(clock)
        self.open(cb, upstream)
        before = upstream.calls
        with pytest.raises(CircuitOpenError, match=r"'llm' is open, half-open in 30.000s"):
            cb(upstream)()
        assert upstream.calls == before

    def test_half_open_after_open_for_then_closed(
        self, clock: VirtualClock, upstream: Upstream
    ) -> None:
        """After open_for_s the next call is a trial; all trials succeeding closes it."""
        cb = breaker(clock)
        self.open(cb, upstream)
        clock.advance(29.9)
        drive(cb(upstream), "r")
        clock.advance(0.1)
        drive(cb(upstream), "s")
        assert cb.state is HALF_OPEN
        drive(cb(upstream), "s")
        assert cb.state is CLOSED and cb.metrics().calls == 0  # a fresh window

    def test_failing_trials_reopen(self, clock: VirtualClock, upstream: Upstream) -> None:
        """Trials at the failure threshold send the breaker back to OPEN for open_for_s."""
        cb = breaker(clock)
        self.open(cb, upstream)
        clock.advance(30)
        drive(cb(upstream), "s")
        upstream.fail = True
        drive(cb(upstream), "f")
        assert cb.state is OPEN
        clock.advance(29)
        drive(cb(upstream), "r")

    def test_half_open_permits_limit_trials(self, clock: VirtualClock, upstream: Upstream) -> None:
        """Only half_open_calls trials are let through; the rest are rejected."""
        cb = breaker(clock)
        self.open(cb, upstream)
        clock.advance(30)
        cb.acquire_permission()
        cb.acquire_permission()
        with pytest.raises(CircuitOpenError, match="all trial permits taken"):
            cb.acquire_permission()
        cb.on_success(0.0)
        cb.on_success(0.0)
        assert cb.state is CLOSED

    def test_ignored_errors_return_their_permit(
        self, clock: VirtualClock, upstream: Upstream
    ) -> None:
        """An ignored exception counts as nothing and frees its half-open permit."""
        cb = breaker(clock, ignore=KeyError)
        self.open(cb, upstream)
        clock.advance(30)

        @cb
        def lookup() -> None:
            raise KeyError("cache miss")

        for _ in range(5):
            with pytest.raises(KeyError):
                lookup()
        assert cb.state is HALF_OPEN and cb.metrics().calls == 0
        drive(cb(upstream), "ss")
        assert cb.state is CLOSED


class TestClassification:
    def test_record_predicate_limits_failures(self, clock: VirtualClock) -> None:
        """Exceptions not matched by record count as successes (resilience4j semantics)."""
        cb = breaker(clock, record=lambda e: isinstance(e, ConnectionError))

        @cb
        def bad_input() -> None:
            raise ValueError("4xx")

        for _ in range(4):
            with pytest.raises(ValueError):
                bad_input()
        assert cb.state is CLOSED and cb.metrics().failure_rate == 0

    def test_slow_calls_open_the_breaker(self, clock: VirtualClock, upstream: Upstream) -> None:
        """Calls longer than slow_call_duration_s trip the slow-call rate, even if successful."""
        cb = breaker(clock, slow_call_duration_s=2.0, slow_call_rate_threshold=0.75)
        call = cb(upstream)
        for latency_s in (2.5, 2.0, 2.0, 3.0, 3.0):  # 2.0 is not *longer* than 2.0
            upstream.latency_s = latency_s
            drive(call, "s")
        assert cb.state is CLOSED and cb.metrics().slow_call_rate == 0.5
        drive(call, "s")  # the window is now 2.0, 3.0, 3.0, 3.0: 75 % slow
        assert cb.state is OPEN

    async def test_cancellation_is_not_a_failure(self, clock: VirtualClock) -> None:
        """A cancelled call is ignored: it releases its permit and records nothing."""
        cb = breaker(clock)
        started = asyncio.Event()

        @cb
        async def hang() -> None:
            started.set()
            await asyncio.Event().wait()

        task = asyncio.ensure_future(hang())
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert cb.metrics().calls == 0

    @pytest.mark.parametrize(
        ("option", "value"),
        [
            ("failure_rate_threshold", 0),
            ("slow_call_rate_threshold", 1.5),
            ("minimum_calls", 0),
            ("half_open_calls", 0),
            ("open_for_s", -1),
            ("window", CountWindow(0)),
            ("slow_call_duration_s", 0),
            ("record", "nope"),
        ],
    )
    def test_bad_options_fail_fast(self, clock: VirtualClock, option: str, value: Any) -> None:
        """Bad options raise ConfigurationError naming the option."""
        with pytest.raises(ConfigurationError, match=option):
            breaker(clock, **{option: value})


class TestListenersAndForms:
    def test_listeners_see_every_transition(self, clock: VirtualClock, upstream: Upstream) -> None:
        """Listeners get CLOSED->OPEN->HALF_OPEN->CLOSED; a failing listener breaks nothing."""
        cb = breaker(clock)
        seen: list[StateTransition] = []

        def broken(_: StateTransition) -> None:
            raise RuntimeError("listener bug")

        cb.add_listener(broken)
        cb.add_listener(seen.append)
        upstream.fail = True
        drive(cb(upstream), "ffff")
        clock.advance(30)
        upstream.fail = False
        drive(cb(upstream), "ss")
        assert [(t.from_state, t.to_state) for t in seen] == [
            (CLOSED, OPEN),
            (OPEN, HALF_OPEN),
            (HALF_OPEN, CLOSED),
        ]
        assert {t.name for t in seen} == {"llm"}

    async def test_context_managers(self, clock: VirtualClock) -> None:
        """``with`` and ``async with`` record outcomes and their durations."""
        cb = breaker(clock, slow_call_duration_s=1.0)
        with cb:
            clock.advance(2.0)
        async with cb:
            pass
        with pytest.raises(ConnectionError):
            async with cb:
                raise ConnectionError
        snap = cb.metrics()
        assert (snap.calls, snap.failed_calls, snap.slow_calls) == (3, 1, 1)

    def test_decorator_factory_names_after_function(self, clock: VirtualClock) -> None:
        """circuit_breaker() without a name takes the function's qualified name."""

        def fetch() -> None:
            pass

        unnamed = circuit_breaker(clock=clock)
        unnamed(fetch)
        assert unnamed.name.endswith("fetch")
        named = circuit_breaker("named", clock=clock)
        named(fetch)
        assert named.name == "named"


class TestConcurrency:
    def test_threads_count_every_call(self, clock: VirtualClock) -> None:
        """Eight threads x 250 calls through one breaker: no outcome is lost."""
        cb = breaker(clock, window=CountWindow(5000), minimum_calls=5000)

        @cb
        def work(i: int) -> None:
            if i % 2:
                raise ConnectionError

        def run() -> None:
            for i in range(250):
                with contextlib.suppress(ConnectionError):
                    work(i)

        threads = [threading.Thread(target=run) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        snap = cb.metrics()
        assert (snap.calls, snap.failed_calls) == (2000, 1000)

    def test_threads_share_half_open_permits(self, clock: VirtualClock, upstream: Upstream) -> None:
        """Twelve threads race for three trial permits: exactly three get through."""
        cb = breaker(clock, half_open_calls=3)
        TestOpenAndHalfOpen().open(cb, upstream)
        clock.advance(30)
        gate, results = threading.Barrier(12), []
        lock = threading.Lock()

        def trial() -> None:
            gate.wait(5)
            try:
                cb.acquire_permission()
                outcome = "permitted"
            except CircuitOpenError:
                outcome = "rejected"
            with lock:
                results.append(outcome)

        threads = [threading.Thread(target=trial) for _ in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert sorted(results) == ["permitted"] * 3 + ["rejected"] * 9

    async def test_tasks_share_half_open_permits(
        self, clock: VirtualClock, upstream: Upstream
    ) -> None:
        """Twenty concurrent tasks in HALF_OPEN: three trials run, seventeen are rejected."""
        cb = breaker(clock, half_open_calls=3)
        TestOpenAndHalfOpen().open(cb, upstream)
        clock.advance(30)
        release = asyncio.Event()

        @cb
        async def trial() -> str:
            await release.wait()
            return "ok"

        tasks = [asyncio.ensure_future(trial()) for _ in range(20)]
        for _ in range(3):
            await asyncio.sleep(0)
        release.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert results.count("ok") == 3
        assert sum(isinstance(r, CircuitOpenError) for r in results) == 17
        assert cb.state is CLOSED


class TestTelemetry:
    def test_state_gauge_reports_every_state_from_creation(
        self, clock: VirtualClock, metrics: Metrics, upstream: Upstream
    ) -> None:
        """Before any call the gauge says closed=1, open=0, half_open=0; then it follows."""
        cb = breaker(clock, meter_provider=metrics.provider)

        def states() -> dict[str, float]:
            return {
                a[semconv.CIRCUIT_STATE]: p.value
                for a, p in metrics.points(semconv.METRIC_CIRCUIT_STATE)
                if a[semconv.RESILIENCE_NAME] == "llm"
            }

        assert states() == {"closed": 1, "open": 0, "half_open": 0}
        upstream.fail = True
        drive(cb(upstream), "ffff")
        assert states() == {"closed": 0, "open": 1, "half_open": 0}
        clock.advance(30)
        upstream.fail = False
        drive(cb(upstream), "s")
        assert states() == {"closed": 0, "open": 0, "half_open": 1}

    def test_rate_gauges_appear_once_computable(
        self, clock: VirtualClock, metrics: Metrics, upstream: Upstream
    ) -> None:
        """Failure and slow-call rates are reported once the window holds minimum_calls."""
        cb = breaker(
            clock,
            failure_rate_threshold=1.0,
            slow_call_duration_s=1.0,
            meter_provider=metrics.provider,
        )
        call = cb(upstream)
        drive(call, "sss")
        assert metrics.points(semconv.METRIC_CIRCUIT_FAILURE_RATE) == []
        upstream.fail, upstream.latency_s = True, 1.5
        drive(call, "f")
        name = {semconv.RESILIENCE_NAME: "llm"}
        assert metrics.value(semconv.METRIC_CIRCUIT_FAILURE_RATE, name) == 0.25
        assert metrics.value(semconv.METRIC_CIRCUIT_SLOW_CALL_RATE, name) == 0.25

    def test_transition_rejection_and_outcome_signals(
        self, clock: VirtualClock, metrics: Metrics, spans: Spans, upstream: Upstream
    ) -> None:
        """Transitions and rejections are counted; a rejection adds a span event."""
        cb = breaker(clock, meter_provider=metrics.provider)
        upstream.fail = True
        with spans.tracer.start_as_current_span("call"):
            drive(cb(upstream), "ffffr")
            clock.advance(30)
            upstream.fail = False
            drive(cb(upstream), "ss")
        events = {
            a[semconv.RESILIENCE_EVENT]: p.value
            for a, p in metrics.points(semconv.METRIC_RESILIENCE_EVENTS)
            if a[semconv.RESILIENCE_STRATEGY] == "circuit_breaker" and a[semconv.OPERATION] == "llm"
        }
        assert events == {
            "circuit_opened": 1,
            "rejected": 1,
            "circuit_half_opened": 1,
            "circuit_closed": 1,
        }
        outcomes = {
            a[semconv.RESILIENCE_OUTCOME]: p.value
            for a, p in metrics.points(semconv.METRIC_RESILIENCE_CALLS)
        }
        assert outcomes == {"failed": 4, "not_permitted": 1, "success": 2}
        assert spans.events(semconv.EVENT_RESILIENCE_REJECTED) == [
            {
                semconv.RESILIENCE_NAME: "llm",
                semconv.RESILIENCE_STRATEGY: "circuit_breaker",
                semconv.CIRCUIT_STATE: "open",
            }
        ]

    def test_discarded_breakers_stop_reporting(self, clock: VirtualClock, metrics: Metrics) -> None:
        """The gauge registry holds breakers weakly: a dropped breaker disappears."""
        cb = CircuitBreaker("temporary", clock=clock, meter_provider=metrics.provider)
        assert {
            a[semconv.RESILIENCE_NAME] for a, _ in metrics.points(semconv.METRIC_CIRCUIT_STATE)
        } == {"temporary"}
        del cb
        gc.collect()
        assert metrics.points(semconv.METRIC_CIRCUIT_STATE) == []
