"""Stacked strategies, test mode, global-provider resolution and fault tolerance."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider

from flowtel import resilience, semconv
from flowtel.exceptions import CircuitOpenError
from flowtel.resilience import (
    CircuitState,
    CountWindow,
    circuit_breaker,
    rate_limit,
    retry,
    timeout,
)
from tests.resilience.resilience_support import Metrics, Spans

pytestmark = pytest.mark.anyio
SRC = str(Path(__file__).resolve().parents[2] / "src")


class RateLimited(Exception):
    status_code = 429

    def __init__(self, retry_after_s: float) -> None:
        super().__init__("429 Too Many Requests")
        self.retry_after_s = retry_after_s


class TestStacked:
    async def test_retry_timeout_limiter_breaker(self, metrics: Metrics, spans: Spans) -> None:
        """A 429 and a hang are retried; every layer reports; no real time is spent waiting."""
        mp = metrics.provider
        script = iter(["429", "hang", "ok"])
        seen_rates = []

        limiter = rate_limit(5, adaptive=True, name="llm", meter_provider=mp)

        @retry(4, backoff_s=0.2, name="llm.complete", meter_provider=mp)
        @timeout(0.05, name="llm.complete", meter_provider=mp)
        @limiter
        @circuit_breaker("llm", minimum_calls=10, meter_provider=mp)
        async def complete(prompt: str) -> str:
            seen_rates.append(limiter.rate_per_s)
            step = next(script)
            if step == "429":
                raise RateLimited(retry_after_s=1.5)
            if step == "hang":
                await resilience_forever()
            return f"answer to {prompt}"

        started = time.monotonic()
        with resilience.test_mode() as clock, spans.tracer.start_as_current_span("agent.step"):
            assert await complete("q") == "answer to q"
        assert time.monotonic() - started < 5  # only the 50 ms timeout is real
        assert seen_rates == [5, 2.5, 2.5]  # the 429 halved the adaptive rate
        retries = spans.events(semconv.EVENT_RESILIENCE_RETRY)
        assert [r[semconv.ERROR_TYPE] for r in retries] == [
            f"{__name__}.RateLimited",
            "TimeoutError",
        ]
        assert retries[0][semconv.RESILIENCE_DELAY] == 1.5  # the Retry-After hint
        assert clock.slept_s >= 1.5
        assert len(spans.events(semconv.EVENT_RESILIENCE_TIMEOUT)) == 1
        outcomes = {
            (a[semconv.RESILIENCE_STRATEGY], a[semconv.RESILIENCE_OUTCOME]): p.value
            for a, p in metrics.points(semconv.METRIC_RESILIENCE_CALLS)
        }
        assert outcomes == {
            ("retry", "success_after_retry"): 1,
            ("timeout", "failed"): 2,
            ("timeout", "success"): 1,
            ("rate_limit", "failed"): 1,
            ("rate_limit", "success"): 1,
            ("circuit_breaker", "failed"): 1,
            ("circuit_breaker", "success"): 1,
        }

    def test_retry_does_not_hammer_an_open_breaker(self) -> None:
        """Stacked over a breaker, the default retry stops on the first rejection."""
        calls = 0

        @retry(5)
        @circuit_breaker("db", window=CountWindow(2), minimum_calls=2)
        def query() -> None:
            nonlocal calls
            calls += 1
            raise ConnectionError

        with resilience.test_mode():
            with pytest.raises(CircuitOpenError):
                query()  # attempts 1 and 2 fail and open the breaker; attempt 3 is rejected
            with pytest.raises(CircuitOpenError):
                query()
        assert calls == 2

    def test_same_policy_on_many_functions(self) -> None:
        """One breaker decorating two functions shares one state."""
        cb = circuit_breaker("shared", window=CountWindow(2), minimum_calls=2)

        @cb
        def a() -> None:
            raise ConnectionError

        @cb
        def b() -> str:
            return "b"

        for fn in (a, a):
            with pytest.raises(ConnectionError):
                fn()
        assert cb.state is CircuitState.OPEN
        with pytest.raises(CircuitOpenError):
            b()


async def resilience_forever() -> None:
    import asyncio

    await asyncio.Event().wait()


class TestTestMode:
    def test_breaker_open_period_is_virtual(self) -> None:
        """In test mode an open breaker reaches half-open by advancing the virtual clock."""
        with resilience.test_mode() as clock:
            cb = circuit_breaker("x", window=CountWindow(1), minimum_calls=1, open_for_s=3600)
            with pytest.raises(ConnectionError), cb:
                raise ConnectionError
            assert cb.state is CircuitState.OPEN
            clock.advance(3600)
            with cb:
                pass
            assert cb.state is CircuitState.HALF_OPEN

    def test_pytest_does_not_collect_test_mode(self) -> None:
        """Importing test_mode into a test module does not create a bogus test."""
        assert getattr(resilience.test_mode, "__test__", True) is False

    def test_nested_and_restored(self) -> None:
        """The innermost test mode gets the waits; leaving it restores the outer one."""

        def fail_once(state: list[int] = []) -> None:  # noqa: B006
            state.append(1)
            if len(state) % 2:
                raise ConnectionError

        policy = retry(2, backoff_s=5, jitter=False)
        with resilience.test_mode() as outer:
            with resilience.test_mode() as inner:
                policy(fail_once)()
            policy(fail_once)()
        assert (inner.slept_s, outer.slept_s) == (5, 5)


class BrokenMeterProvider(MeterProvider):
    """An SDK provider whose meters cannot be created: telemetry must fail quietly."""

    def get_meter(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("exporter misconfigured")


class TestNeverBreaksTheHost:
    def test_broken_metrics_do_not_break_calls(self, caplog: pytest.LogCaptureFixture) -> None:
        """Strategies keep working when telemetry fails, and log the failure once."""
        broken = BrokenMeterProvider()
        with caplog.at_level(logging.WARNING, logger="flowtel.resilience"):
            cb = circuit_breaker("b", meter_provider=broken)
            fn = retry(3, meter_provider=broken, clock=resilience.VirtualClock())(cb(lambda: 7))
            assert fn() == 7
            assert fn() == 7
        warnings = [r for r in caplog.records if "telemetry failed" in r.getMessage()]
        assert 1 <= len(warnings) <= 3  # once per recording function, not once per call
        broken.shutdown()


class TestGlobalProvider:
    def run(self, script: str) -> str:
        done = subprocess.run(
            [sys.executable, "-W", "error", "-c", PRELUDE + textwrap.dedent(script)],
            capture_output=True,
            text=True,
            timeout=60,
            env={"PYTHONPATH": SRC},
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    def test_breaker_made_before_the_provider_reports_after_it_is_set(self) -> None:
        """Strategies without a provider follow the global one, even if created before it."""
        out = self.run(
            """
            breaker = circuit_breaker("early")          # the global provider is still a proxy
            reader = InMemoryMetricReader()
            metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
            retry(1)(lambda: None)()
            late = circuit_breaker("late")
            print(states(reader), calls(reader))
            """
        )
        assert out == (
            "[('early', 'closed', 1), ('early', 'half_open', 0), ('early', 'open', 0), "
            "('late', 'closed', 1), ('late', 'half_open', 0), ('late', 'open', 0)] [1]"
        )

    def test_reconfigured_provider_reports_idle_breakers(self) -> None:
        """configure_telemetry(force=True) moves idle breakers' gauges to the new provider."""
        out = self.run(
            """
            import flowtel

            def configure(reader):
                return flowtel.configure_telemetry(
                    service_name="t", exporter="none", logging=False, force=True,
                    metric_readers=[reader])

            first, second = InMemoryMetricReader(), InMemoryMetricReader()
            configure(first)
            idle = circuit_breaker("idle")
            configure(second)
            print(states(second))
            """
        )
        assert out == "[('idle', 'closed', 1), ('idle', 'half_open', 0), ('idle', 'open', 0)]"


PRELUDE = """
from opentelemetry import metrics
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from flowtel.resilience import circuit_breaker, retry

def points(reader):
    data = reader.get_metrics_data()
    for rm in data.resource_metrics if data else ():
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                for p in m.data.data_points:
                    yield m.name, dict(p.attributes), getattr(p, "value", None)

def states(reader):
    return sorted((a["flowtel.resilience.name"], a["flowtel.circuit.state"], v)
                  for n, a, v in points(reader) if n == "flowtel.circuit_breaker.state")

def calls(reader):
    return [v for n, a, v in points(reader) if n == "flowtel.resilience.calls"]
"""
