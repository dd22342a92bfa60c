"""Hung checks, hooks and flushes never hold the process; BaseExceptions from checks fail them.

Issue 16, points 1 and 7: everything lifecycle work can do wrong is bounded by its own timeout,
reported as ``outcome=timeout`` and counted on ``flowtel.lifecycle.timeouts``.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from typing import Any

import pytest

from flowtel import semconv
from flowtel.exceptions import StartupError
from flowtel.lifecycle import (
    CheckOutcome,
    Lifecycle,
    LifecycleState,
    ReadinessMonitor,
    StartupOrchestrator,
    managed_lifecycle,
)

from ._process import spawn
from .conftest import Telemetry


def _timeouts(telemetry: Telemetry) -> dict[tuple[object, object, object], int]:
    return {
        (a[semconv.LIFECYCLE_WORK], a[semconv.LIFECYCLE_WORK_NAME],
         a[semconv.LIFECYCLE_ABANDONED]): p.value  # type: ignore[attr-defined]
        for a, p in telemetry.points(semconv.METRIC_LIFECYCLE_TIMEOUTS)
    }  # fmt: skip


@pytest.fixture
def release() -> Any:
    """An event hung work waits on; set at teardown so no test leaves a thread behind."""
    gate = threading.Event()
    yield gate
    gate.set()


class TestIssueReproduction:
    def test_hung_sync_check_does_not_hang_asyncio_run(
        self, telemetry: Telemetry, release: threading.Event
    ) -> None:
        """The issue's reproduction: a sync check blocked forever; asyncio.run() returns."""
        orch = StartupOrchestrator(
            tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider
        )
        orch.add(release.wait, name="warm", timeout_s=0.3, critical=False)
        lc = Lifecycle(orch, meter_provider=telemetry.meter_provider, flush=lambda t: True)

        async def main() -> LifecycleState:
            async with managed_lifecycle(lc, handle_signals=False) as lifecycle:
                return lifecycle.state

        started = time.monotonic()
        done: list[LifecycleState] = []
        runner = threading.Thread(target=lambda: done.append(asyncio.run(main())), daemon=True)
        runner.start()
        runner.join(timeout=10)
        assert done == [LifecycleState.DEGRADED], "asyncio.run() did not return"
        print(f"\nasyncio.run() with a check hung forever (timeout 0.3 s) returned in "
              f"{time.monotonic() - started:.2f}s")  # fmt: skip
        assert time.monotonic() - started < 3
        assert orch.report is not None
        assert orch.report.check("warm").outcome is CheckOutcome.TIMEOUT
        assert _timeouts(telemetry) == {("startup_check", "warm", True): 1}

    def test_async_check_swallowing_cancellation_is_abandoned(self, telemetry: Telemetry) -> None:
        """An async check that ignores CancelledError times out and asyncio.run() returns."""

        async def stubborn() -> None:
            while True:
                try:
                    await asyncio.sleep(3600)
                except asyncio.CancelledError:
                    continue

        orch = StartupOrchestrator(
            tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider
        )
        orch.add(stubborn, name="stubborn", timeout_s=0.2, critical=False)
        orch.add(lambda: {"ok": 1}, name="healthy")
        lc = Lifecycle(orch, flush=lambda t: True)

        async def main() -> LifecycleState:
            async with managed_lifecycle(lc, handle_signals=False) as lifecycle:
                return lifecycle.state

        done: list[LifecycleState] = []
        runner = threading.Thread(target=lambda: done.append(asyncio.run(main())), daemon=True)
        runner.start()
        runner.join(timeout=10)
        assert done == [LifecycleState.DEGRADED], "asyncio.run() did not return"
        assert orch.report is not None and orch.report.check("healthy").details == {"ok": 1}
        (span,) = [s for s in telemetry.spans(semconv.SPAN_STARTUP_CHECK)
                   if s.attributes and s.attributes[semconv.STARTUP_CHECK] == "stubborn"]  # fmt: skip
        assert span.attributes is not None
        assert span.attributes[semconv.STARTUP_OUTCOME] == "timeout"


class TestHooksAndFlush:
    def test_hung_hook_and_flush_are_bounded_and_later_hooks_still_run(
        self, telemetry: Telemetry, release: threading.Event
    ) -> None:
        """A hook and a flush blocked forever cost their timeouts; the next hook still runs."""
        ran: list[str] = []
        lc = Lifecycle(
            StartupOrchestrator(),
            tracer_provider=telemetry.tracer_provider,
            meter_provider=telemetry.meter_provider,
            flush=lambda timeout_s: release.wait(),
            flush_timeout_s=0.2,
        )
        lc.register_shutdown_hook("pool", lambda: ran.append("pool"))
        lc.register_shutdown_hook("hang", release.wait, timeout_s=0.2, depends_on=["pool"])

        async def main() -> None:
            await lc.start()
            await lc.shutdown()

        started = time.monotonic()
        asyncio.run(main())
        elapsed = time.monotonic() - started
        assert ran == ["pool"]
        assert elapsed < 0.2 + 0.1 + 1.2 + 0.1 + 1.0  # hook + grace + flush(+1 s slack) + margin
        assert lc.state is LifecycleState.STOPPED
        hooks = {s.attributes[semconv.SHUTDOWN_HOOK]: s.attributes[semconv.SHUTDOWN_OUTCOME]
                 for s in telemetry.spans(semconv.SPAN_SHUTDOWN_HOOK) if s.attributes}  # fmt: skip
        assert hooks == {"hang": "timeout", "pool": "success"}
        assert _timeouts(telemetry) == {
            ("shutdown_hook", "hang", True): 1,
            ("flush", "telemetry", True): 1,
        }


class TestReadinessIsolation:
    def test_hung_checks_never_starve_a_healthy_one(
        self, telemetry: Telemetry, release: threading.Event
    ) -> None:
        """40 hung sync readiness checks (more than the default executor's workers) do not
        stop a healthy sync check from passing; each hung one holds one thread at most."""
        monitor = ReadinessMonitor(meter_provider=telemetry.meter_provider)
        for i in range(40):
            monitor.add(release.wait, name=f"hung{i}", interval_s=0.05, timeout_s=0.05)
        monitor.add(lambda: True, name="healthy", interval_s=0.05, timeout_s=0.5)

        async def main() -> dict[str, Any]:
            for _ in range(3):
                await asyncio.gather(*(monitor.run_once(c.name) for c in monitor.checks))
            # The healthy check's own thread may not have exited yet: count the hung ones.
            hung = [
                t
                for t in threading.enumerate()
                if t.name.startswith("flowtel-readiness_check-hung")
            ]
            return {"statuses": monitor.statuses(), "threads": len(hung)}

        result = asyncio.run(main())
        statuses = result["statuses"]
        assert statuses["healthy"].ok is True
        assert all(statuses[f"hung{i}"].outcome == "timeout" for i in range(40))
        assert statuses["hung0"].last_error == "previous run still hung"
        assert result["threads"] == 40  # one per hung check, however many turns it missed
        counted = _timeouts(telemetry)
        assert sum(counted.values()) == 40  # one overrun each; later turns are refused, not run


class TestBaseExceptionsFromChecks:
    @pytest.mark.parametrize("kind", ["SystemExit", "KeyboardInterrupt", "GeneratorExit",
                                      "CancelledError"])  # fmt: skip
    @pytest.mark.parametrize("flavour", ["sync", "async"])
    def test_a_check_raising_it_fails_startup_not_the_process(
        self, kind: str, flavour: str, telemetry: Telemetry
    ) -> None:
        """The check FAILED (not retried), startup is FAILED, nothing escapes run()."""
        exc: BaseException = {
            "SystemExit": SystemExit(0),
            "KeyboardInterrupt": KeyboardInterrupt(),
            "GeneratorExit": GeneratorExit(),
            "CancelledError": asyncio.CancelledError(),
        }[kind]
        calls: list[int] = []

        def sync_check() -> None:
            calls.append(1)
            raise exc

        async def async_check() -> None:
            sync_check()

        orch = StartupOrchestrator(tracer_provider=telemetry.tracer_provider)
        orch.add(sync_check if flavour == "sync" else async_check, name="db", retries=3,
                 backoff_s=0)  # fmt: skip
        lc = Lifecycle(orch, flush=lambda t: True)

        async def main() -> None:
            async with managed_lifecycle(lc, handle_signals=False):
                pytest.fail("the body must not run after a failed critical check")

        with pytest.raises(StartupError, match="critical startup checks did not succeed: db"):
            asyncio.run(main())
        assert orch.report is not None
        result = orch.report.check("db")
        assert result.outcome is CheckOutcome.FAILED and calls == [1]
        assert result.error is not None and result.error.startswith(kind)
        assert lc.state is LifecycleState.STOPPED


class TestRealProcess:
    def test_sigterm_with_hung_checks_and_hook_exits_zero_within_budget(
        self, otlp_http: Any
    ) -> None:
        """SIGTERM to a worker whose checks and hook hang: exit 0 within the hook's 1 s budget;
        the hook's timeout reaches the collector as a span and on the timeouts counter."""
        with spawn(["-m", "tests.lifecycle.apps.hung_worker"], HANG="1",
                   OTEL_EXPORTER_OTLP_ENDPOINT=otlp_http.endpoint) as worker:  # fmt: skip
            worker.wait_for_line(r"^READY DEGRADED$")
            sent = time.monotonic()
            worker.proc.send_signal(signal.SIGTERM)
            code = worker.wait_exit(timeout_s=15)
            elapsed = time.monotonic() - sent
        print(f"\nhung checks + hung 1 s hook: SIGTERM -> exit {code} in {elapsed:.2f}s")
        assert code == 0, worker.output()
        assert elapsed < 1 + 0.1 + 1.5, worker.output()  # hook, grace, margin (flush is quick)
        assert "shutdown hook 'close' overran its 1s timeout" in worker.output()
        hook = otlp_http.wait_for_span(semconv.SPAN_SHUTDOWN_HOOK)
        assert dict(hook.attributes)[semconv.SHUTDOWN_OUTCOME] == "timeout"
        checks = {dict(s.attributes)[semconv.STARTUP_CHECK]: dict(s.attributes)[semconv.STARTUP_OUTCOME]
                  for s in otlp_http.spans_by_name(semconv.SPAN_STARTUP_CHECK)}  # fmt: skip
        assert checks == {"db": "success", "warm": "timeout", "stubborn": "timeout"}
        points = otlp_http.wait_for_metric(semconv.METRIC_LIFECYCLE_TIMEOUTS, 3)
        counted = {(p.attributes[semconv.LIFECYCLE_WORK], p.attributes[semconv.LIFECYCLE_WORK_NAME])
                   for p in points}  # fmt: skip
        assert counted == {("startup_check", "warm"), ("startup_check", "stubborn"),
                           ("shutdown_hook", "close")}  # fmt: skip

    @pytest.mark.parametrize("kind", ["SystemExit", "CancelledError"])
    def test_base_exception_in_a_check_exits_non_zero(self, kind: str) -> None:
        """SystemExit(0) or CancelledError from a critical check: exit 1 naming the check."""
        with spawn(["-m", "tests.lifecycle.apps.hung_worker"], RAISE=kind, RAISE_ASYNC="1",
                   OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9") as worker:  # fmt: skip
            code = worker.wait_exit(timeout_s=15)
        assert code == 1, worker.output()
        assert "critical startup checks did not succeed: db" in worker.output()
        assert "READY" not in worker.lines
