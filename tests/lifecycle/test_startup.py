"""StartupOrchestrator: graph validation, ordering, concurrency, retries, outcomes, telemetry."""

from __future__ import annotations

import asyncio
import random
import threading
from typing import Any

import pytest

from flowtel import semconv
from flowtel.exceptions import ConfigurationError, StartupError
from flowtel.lifecycle import CheckOutcome, LifecycleState, StartupOrchestrator

from .conftest import Telemetry


def make(telemetry: Telemetry, **kwargs: Any) -> StartupOrchestrator:
    return StartupOrchestrator(
        tracer_provider=telemetry.tracer_provider,
        meter_provider=telemetry.meter_provider,
        **kwargs,
    )


class TestGraphValidation:
    def test_unknown_dependency_names_both_checks_and_nothing_runs(
        self, telemetry: Telemetry
    ) -> None:
        """An unknown dependency fails before any check runs, naming the check and the dep."""
        ran: list[str] = []
        orch = make(telemetry)
        orch.add(lambda: ran.append("db"), name="db")
        orch.add(lambda: ran.append("api"), name="api", depends_on=["db", "cache"])
        with pytest.raises(StartupError, match=r"'api' depends on unknown .*'cache'"):
            asyncio.run(orch.run())
        assert ran == []
        assert telemetry.spans() == []

    def test_cycle_is_reported_with_its_path(self, telemetry: Telemetry) -> None:
        """A dependency cycle fails before anything runs and the message shows the cycle."""
        ran: list[str] = []
        orch = make(telemetry)
        orch.add(lambda: ran.append("a"), name="a", depends_on=["c"])
        orch.add(lambda: ran.append("b"), name="b", depends_on=["a"])
        orch.add(lambda: ran.append("c"), name="c", depends_on=["b"])
        orch.add(lambda: ran.append("free"), name="free")
        with pytest.raises(StartupError, match=r"cycle: a -> c -> b -> a"):
            asyncio.run(orch.run())
        assert ran == []

    def test_self_dependency_is_a_cycle(self, telemetry: Telemetry) -> None:
        """A check depending on itself is named as a cycle."""
        orch = make(telemetry)
        orch.add(lambda: None, name="loop", depends_on="loop")
        with pytest.raises(StartupError, match=r"cycle: loop -> loop"):
            orch.validate()

    def test_bad_policy_fails_fast(self, telemetry: Telemetry) -> None:
        """Bad options raise ConfigurationError naming the option."""
        orch = make(telemetry)
        with pytest.raises(ConfigurationError, match="timeout_s"):
            orch.add(lambda: None, name="x", timeout_s=0)
        with pytest.raises(ConfigurationError, match="retries"):
            orch.add(lambda: None, name="x", retries=-1)
        orch.add(lambda: None, name="x")
        with pytest.raises(ConfigurationError, match="name"):
            orch.add(lambda: None, name="x")
        with pytest.raises(ConfigurationError, match="max_concurrency"):
            StartupOrchestrator(max_concurrency=0)


class TestOrderingAndConcurrency:
    def test_dependants_start_after_dependencies_succeed(self, telemetry: Telemetry) -> None:
        """A check's span starts only after every dependency's span ended."""
        orch = make(telemetry)
        orch.add(lambda: {"pool": 4}, name="db")
        orch.add(lambda: None, name="cache")
        orch.add(lambda: None, name="api", depends_on=["db", "cache"])
        report = asyncio.run(orch.run())
        assert report.state is LifecycleState.READY
        checks = telemetry.spans(semconv.SPAN_STARTUP_CHECK)
        spans = {s.attributes[semconv.STARTUP_CHECK]: s for s in checks}
        assert spans["api"].start_time >= spans["db"].end_time
        assert spans["api"].start_time >= spans["cache"].end_time
        assert report.check("db").details == {"pool": 4}
        root = telemetry.spans(semconv.SPAN_STARTUP)[0]
        assert all(s.parent.span_id == root.context.span_id for s in spans.values())

    def test_independent_checks_run_concurrently(self, telemetry: Telemetry) -> None:
        """Two independent checks overlap: each waits at a barrier only the other can pass."""
        barrier: asyncio.Barrier | None = None

        async def meet() -> None:
            assert barrier is not None
            await barrier.wait()

        async def main() -> Any:
            nonlocal barrier
            barrier = asyncio.Barrier(2)
            orch = make(telemetry)
            orch.add(meet, name="db", timeout_s=5)
            orch.add(meet, name="queue", timeout_s=5)
            return await orch.run()

        report = asyncio.run(main())
        assert [c.outcome for c in report.checks] == [CheckOutcome.SUCCESS] * 2
        db, queue = sorted(telemetry.spans(semconv.SPAN_STARTUP_CHECK), key=lambda s: s.start_time)
        assert queue.start_time < db.end_time  # overlapping spans

    def test_sync_checks_do_not_block_the_event_loop(self, telemetry: Telemetry) -> None:
        """A blocking sync check runs in a thread, so an async check can release it."""
        gate = threading.Event()

        def blocking() -> dict[str, bool]:
            return {"released": gate.wait(timeout=5)}

        async def releaser() -> None:
            gate.set()

        orch = make(telemetry)
        orch.add(blocking, name="blocking", timeout_s=5)
        orch.add(releaser, name="releaser")
        report = asyncio.run(orch.run())
        assert report.check("blocking").details == {"released": True}

    def test_lower_priority_number_starts_first_when_limited(self, telemetry: Telemetry) -> None:
        """With max_concurrency=1, ready checks start in priority order, then registration order."""
        started: list[str] = []
        orch = make(telemetry, max_concurrency=1)
        for name, priority in [("late", 9), ("first", 1), ("second_a", 5), ("second_b", 5)]:
            orch.add(lambda n=name: started.append(n), name=name, priority=priority)
        asyncio.run(orch.run())
        assert started == ["first", "second_a", "second_b", "late"]

    def test_total_time_is_the_critical_path(self, telemetry: Telemetry) -> None:
        """With an injected clock: total = db(2s) + api(1s) = 3s, not the 4s sum of checks."""
        now = [0.0]

        async def main() -> Any:
            cache_done = asyncio.Event()

            async def cache() -> None:  # t 0 -> 1, concurrently with db
                now[0] = 1.0
                cache_done.set()

            async def db() -> None:  # t 0 -> 2
                await cache_done.wait()
                now[0] = 2.0

            async def api() -> None:  # t 2 -> 3
                now[0] = 3.0

            orch = make(telemetry, clock=lambda: now[0])
            orch.add(db, name="db")
            orch.add(cache, name="cache")
            orch.add(api, name="api", depends_on=["db"])
            return await orch.run()

        report = asyncio.run(main())
        assert report.critical_path == ("db", "api")
        assert report.duration_s == 3.0
        assert sum(c.duration_s for c in report.checks) == 4.0
        assert [(c.name, c.start_s, c.end_s) for c in report.checks] == [
            ("db", 0.0, 2.0), ("cache", 0.0, 1.0), ("api", 2.0, 3.0),
        ]  # fmt: skip
        assert report.to_dict()["critical_path"] == ["db", "api"]


class TestRetriesAndTimeouts:
    def test_timeout_bounds_each_attempt(self, telemetry: Telemetry) -> None:
        """A hanging check is cut off at timeout_s and recorded as timeout."""

        async def hang() -> None:
            await asyncio.Event().wait()

        orch = make(telemetry)
        orch.add(hang, name="hang", timeout_s=0.05, critical=False)
        report = asyncio.run(orch.run())
        assert report.check("hang").outcome is CheckOutcome.TIMEOUT
        assert report.state is LifecycleState.DEGRADED
        (span,) = telemetry.spans(semconv.SPAN_STARTUP_CHECK)
        assert span.attributes[semconv.STARTUP_OUTCOME] == "timeout"
        assert span.attributes[semconv.STARTUP_TIMEOUT] == 0.05

    def test_a_check_raising_timeouterror_is_failed_not_timed_out(
        self, telemetry: Telemetry
    ) -> None:
        """Only the orchestrator's own deadline counts as timeout."""

        def slow_dependency() -> None:
            raise TimeoutError("upstream timed out")

        orch = make(telemetry)
        orch.add(slow_dependency, name="upstream", timeout_s=30)
        report = asyncio.run(orch.run())
        assert report.check("upstream").outcome is CheckOutcome.FAILED
        assert report.check("upstream").error == "TimeoutError: upstream timed out"

    def test_retries_back_off_exponentially_with_jitter(self, telemetry: Telemetry) -> None:
        """Two failures then success: 3 attempt spans, 2 retry events, doubling jittered delays."""
        calls = 0
        delays: list[float] = []

        def flaky() -> None:
            nonlocal calls
            calls += 1
            if calls < 3:
                raise ConnectionError("refused")

        async def fake_sleep(seconds: float) -> None:
            delays.append(seconds)

        rng = random.Random(7)
        expected_r = [random.Random(7).random() for _ in range(1)]
        orch = make(telemetry, sleep=fake_sleep, rng=rng, jitter=0.5)
        orch.add(flaky, name="db", retries=2, backoff_s=1.0, backoff_max_s=30.0)
        report = asyncio.run(orch.run())
        assert report.check("db").outcome is CheckOutcome.SUCCESS
        assert report.check("db").attempts == 3
        assert delays[0] == pytest.approx(1.0 * (1 - 0.5 * expected_r[0]))
        assert 1.0 <= delays[1] <= 2.0 and delays[1] != 2.0
        attempts = telemetry.spans(semconv.SPAN_STARTUP_CHECK)
        assert [s.attributes[semconv.STARTUP_ATTEMPT] for s in attempts] == [1, 2, 3]
        assert [s.attributes[semconv.STARTUP_OUTCOME] for s in attempts] == [
            "failed", "failed", "success",
        ]  # fmt: skip
        root = telemetry.spans(semconv.SPAN_STARTUP)[0]
        retries = [e for e in root.events if e.name == semconv.EVENT_STARTUP_RETRY]
        assert [e.attributes[semconv.STARTUP_ATTEMPT] for e in retries] == [1, 2]
        assert retries[0].attributes[semconv.ERROR_TYPE] == "ConnectionError"
        assert retries[1].attributes[semconv.STARTUP_DELAY] == pytest.approx(delays[1])

    def test_backoff_is_capped(self, telemetry: Telemetry) -> None:
        """Delays never exceed backoff_max_s."""
        delays: list[float] = []

        async def fake_sleep(seconds: float) -> None:
            delays.append(seconds)

        def always_fails() -> None:
            raise RuntimeError("down")

        orch = make(telemetry, sleep=fake_sleep, jitter=0.0)
        orch.add(always_fails, name="db", retries=4, backoff_s=1.0, backoff_max_s=3.0)
        report = asyncio.run(orch.run())
        assert delays == [1.0, 2.0, 3.0, 3.0]
        assert report.check("db").outcome is CheckOutcome.FAILED
        assert report.check("db").attempts == 5


class TestOutcomes:
    def test_exception_with_unprintable_message_is_a_failure(self, telemetry: Telemetry) -> None:
        """A check raising an exception whose __str__ raises is recorded as FAILED, not a crash."""

        class Unprintable(Exception):
            def __str__(self) -> str:
                raise RuntimeError("no str")

        def db() -> None:
            raise Unprintable()

        orch = make(telemetry)
        orch.add(db, name="db", critical=False)
        report = asyncio.run(orch.run())
        assert report.check("db").outcome is CheckOutcome.FAILED
        assert "str() failed" in (report.check("db").error or "")
        assert report.state is LifecycleState.DEGRADED

    def test_critical_failure_fails_and_skips_dependants(self, telemetry: Telemetry) -> None:
        """A failed critical check -> FAILED; dependants skipped (not failed); others still run."""
        ran: list[str] = []

        def db() -> None:
            raise ConnectionRefusedError("postgres://app:hunter2@db:5432 refused")

        orch = make(telemetry)
        orch.add(db, name="db")
        orch.add(lambda: ran.append("migrations"), name="migrations", depends_on=["db"])
        orch.add(lambda: ran.append("api"), name="api", depends_on=["migrations"])
        orch.add(lambda: ran.append("cache"), name="cache")
        report = asyncio.run(orch.run())
        assert report.state is LifecycleState.FAILED
        assert ran == ["cache"]
        assert report.check("db").outcome is CheckOutcome.FAILED
        assert report.check("migrations").outcome is CheckOutcome.SKIPPED
        assert report.check("api").outcome is CheckOutcome.SKIPPED
        assert report.check("api").attempts == 0
        assert "hunter2" not in (report.check("db").error or "")
        root = telemetry.spans(semconv.SPAN_STARTUP)[0]
        assert root.status.is_ok is False
        assert root.attributes[semconv.LIFECYCLE_STATE] == "FAILED"
        outcomes = {
            s.attributes[semconv.STARTUP_CHECK]: s.attributes[semconv.STARTUP_OUTCOME]
            for s in telemetry.spans(semconv.SPAN_STARTUP_CHECK)
        }
        assert outcomes == {"db": "failed", "migrations": "skipped", "api": "skipped",
                            "cache": "success"}  # fmt: skip
        (db_span,) = [
            s for s in telemetry.spans(semconv.SPAN_STARTUP_CHECK)
            if s.attributes[semconv.STARTUP_CHECK] == "db"
        ]  # fmt: skip
        (exc_event,) = [e for e in db_span.events if e.name == semconv.EVENT_EXCEPTION]
        assert "hunter2" not in str(exc_event.attributes)
        assert exc_event.attributes[semconv.EXCEPTION_ESCAPED] is True
        assert exc_event.attributes[semconv.EXCEPTION_TYPE] == db_span.attributes["error.type"]

    def test_a_huge_failure_records_a_bounded_stack(self, telemetry: Telemetry) -> None:
        """The exception event's stack trace is capped like every other flowtel exception event."""
        from flowtel._core._values import MAX_STACK_CHARS

        def deep() -> None:
            raise ConnectionError("db unreachable: " + "x" * 100_000)  # the stack ends with it

        orch = make(telemetry)
        orch.add(deep, name="db")
        asyncio.run(orch.run())
        (db_span,) = telemetry.spans(semconv.SPAN_STARTUP_CHECK)
        (exc_event,) = [e for e in db_span.events if e.name == semconv.EVENT_EXCEPTION]
        stack = exc_event.attributes[semconv.EXCEPTION_STACKTRACE]
        assert "deep" in stack
        assert len(stack) <= MAX_STACK_CHARS + 1

    def test_details_are_scrubbed_and_bounded(self, telemetry: Telemetry) -> None:
        """Details reach /health, so secrets are redacted by key and by shape."""
        orch = make(telemetry)
        orch.add(
            lambda: {"password": "s3cret", "url": "postgres://app:hunter2@db:5432/x", "pool": 4,
                     "tags": ["a"], **{f"k{i}": i for i in range(50)}},
            name="db",
        )  # fmt: skip
        details = asyncio.run(orch.run()).check("db").details
        assert details["password"] == "[REDACTED]"
        assert "hunter2" not in details["url"] and details["url"].startswith("postgres://app:")
        assert details["pool"] == 4 and details["tags"] == "['a']"
        assert len(details) == 32

    def test_non_critical_failure_degrades(self, telemetry: Telemetry) -> None:
        """A failed non-critical check leaves the service DEGRADED with a transition event."""

        def search() -> None:
            raise RuntimeError("index missing")

        orch = make(telemetry)
        orch.add(lambda: None, name="db")
        orch.add(search, name="search", critical=False)
        report = asyncio.run(orch.run())
        assert report.state is LifecycleState.DEGRADED
        root = telemetry.spans(semconv.SPAN_STARTUP)[0]
        (transition,) = [e for e in root.events if e.name == semconv.EVENT_LIFECYCLE_TRANSITION]
        assert transition.attributes[semconv.LIFECYCLE_TO] == "DEGRADED"

    def test_metrics_record_total_and_per_check_durations(self, telemetry: Telemetry) -> None:
        """Startup duration is recorded once by state; check durations by check and outcome."""
        orch = make(telemetry)
        orch.add(lambda: None, name="db")
        orch.add(lambda: None, name="api", depends_on=["db"])
        asyncio.run(orch.run())
        total = telemetry.points(semconv.METRIC_STARTUP_DURATION)
        assert [(attrs, p.count) for attrs, p in total] == [({semconv.LIFECYCLE_STATE: "READY"}, 1)]
        per_check = {
            attrs[semconv.STARTUP_CHECK]: attrs[semconv.STARTUP_OUTCOME]
            for attrs, _ in telemetry.points(semconv.METRIC_STARTUP_CHECK_DURATION)
        }
        assert per_check == {"db": "success", "api": "success"}

    def test_run_twice_is_refused(self, telemetry: Telemetry) -> None:
        """An orchestrator runs once; the report stays available."""
        orch = make(telemetry)
        orch.add(lambda: None, name="db")
        report = asyncio.run(orch.run())
        assert orch.report is report
        with pytest.raises(StartupError, match="already"):
            asyncio.run(orch.run())
