"""Lifecycle: state machine, shutdown hooks, drain, and managed_lifecycle in-process."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from flowtel import semconv
from flowtel.exceptions import ConfigurationError, StartupError
from flowtel.lifecycle import Lifecycle, LifecycleState, StartupOrchestrator, managed_lifecycle

from .conftest import Telemetry


def make(telemetry: Telemetry, flushed: list[float] | None = None, **kwargs: Any) -> Lifecycle:
    orch = StartupOrchestrator(
        tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider
    )

    def flush(timeout_s: float) -> bool:
        if flushed is not None:
            flushed.append(timeout_s)
        return telemetry.tracer_provider.force_flush()

    return Lifecycle(
        orch,
        tracer_provider=telemetry.tracer_provider,
        meter_provider=telemetry.meter_provider,
        flush=flush,
        **kwargs,
    )


class TestShutdownHooks:
    def test_hooks_run_in_reverse_dependency_order(self, telemetry: Telemetry) -> None:
        """A hook runs before the hooks it depends on; spans are children of flowtel.shutdown."""
        order: list[str] = []
        lc = make(telemetry)
        lc.register_shutdown_hook("db_pool", lambda: order.append("db_pool"))
        lc.register_shutdown_hook(
            "http_client", lambda: order.append("http_client"), depends_on=["db_pool"]
        )

        @lc.register_shutdown_hook("consumer", depends_on=["http_client", "db_pool"])
        async def consumer() -> None:
            order.append("consumer")

        async def main() -> None:
            await lc.start()
            await lc.shutdown()

        asyncio.run(main())
        assert order == ["consumer", "http_client", "db_pool"]
        assert lc.state is LifecycleState.STOPPED
        (root,) = telemetry.spans(semconv.SPAN_SHUTDOWN)
        hooks = telemetry.spans(semconv.SPAN_SHUTDOWN_HOOK)
        assert [h.attributes[semconv.SHUTDOWN_HOOK] for h in hooks] == order
        assert all(h.parent.span_id == root.context.span_id for h in hooks)
        assert root.attributes[semconv.SHUTDOWN_OUTCOME] == "success"
        transitions = [
            (e.attributes[semconv.LIFECYCLE_FROM], e.attributes[semconv.LIFECYCLE_TO])
            for e in root.events
        ]
        assert transitions == [("READY", "DRAINING"), ("DRAINING", "STOPPED")]

    def test_failing_and_hanging_hooks_are_bounded(self, telemetry: Telemetry) -> None:
        """A raising hook and a hanging hook do not stop later hooks; outcomes are traced."""
        ran: list[str] = []
        flushed: list[float] = []
        lc = make(telemetry, flushed)

        async def hang() -> None:
            await asyncio.Event().wait()

        def boom() -> None:
            raise RuntimeError("close failed")

        lc.register_shutdown_hook("last", lambda: ran.append("last"))
        lc.register_shutdown_hook("boom", boom, depends_on=["last"])
        lc.register_shutdown_hook("hang", hang, timeout_s=0.05, depends_on=["boom"])

        async def main() -> None:
            await lc.start()
            await lc.shutdown()

        asyncio.run(main())
        assert ran == ["last"]
        assert flushed == [lc.flush_timeout_s]
        outcomes = {
            s.attributes[semconv.SHUTDOWN_HOOK]: s.attributes[semconv.SHUTDOWN_OUTCOME]
            for s in telemetry.spans(semconv.SPAN_SHUTDOWN_HOOK)
        }
        assert outcomes == {"hang": "timeout", "boom": "failed", "last": "success"}
        (root,) = telemetry.spans(semconv.SPAN_SHUTDOWN)
        assert root.attributes[semconv.SHUTDOWN_OUTCOME] == "failed"
        ((attrs, point),) = telemetry.points(semconv.METRIC_SHUTDOWN_DURATION)
        assert attrs == {semconv.SHUTDOWN_OUTCOME: "failed"} and point.count == 1

    def test_hook_graph_errors_fail_at_start(self, telemetry: Telemetry) -> None:
        """An unknown hook dependency or a hook cycle fails start() and names the hooks."""
        lc = make(telemetry)
        lc.register_shutdown_hook("a", lambda: None, depends_on=["b"])
        lc.register_shutdown_hook("b", lambda: None, depends_on=["a"])
        with pytest.raises(StartupError, match=r"hooks form a dependency cycle: a -> b -> a"):
            asyncio.run(lc.start())
        lc2 = make(telemetry)
        lc2.register_shutdown_hook("a", lambda: None, depends_on=["ghost"])
        with pytest.raises(StartupError, match=r"'a' depends on unknown .*'ghost'"):
            asyncio.run(lc2.start())

    def test_bad_options_fail_fast(self, telemetry: Telemetry) -> None:
        """drain_s and hook timeouts are validated with ConfigurationError."""
        with pytest.raises(ConfigurationError, match="drain_s"):
            make(telemetry, drain_s=-1)
        lc = make(telemetry)
        with pytest.raises(ConfigurationError, match="timeout_s"):
            lc.register_shutdown_hook("x", lambda: None, timeout_s=0)


class TestDrain:
    def test_request_shutdown_fails_readiness_then_second_request_ends_drain(
        self, telemetry: Telemetry
    ) -> None:
        """DRAINING at once; should_stop only after the drain, which end_drain shortens."""
        now = [100.0]
        lc = make(telemetry, drain_s=60, clock=lambda: now[0])

        async def main() -> None:
            await lc.start()
            assert lc.state is LifecycleState.READY
            lc.request_shutdown("SIGTERM")
            assert lc.state is LifecycleState.DRAINING
            assert not lc.should_stop
            now[0] += 7.5
            lc.end_drain()
            await asyncio.wait_for(lc.wait_for_stop(), 5)
            await lc.shutdown()

        asyncio.run(main())
        (root,) = telemetry.spans(semconv.SPAN_SHUTDOWN)
        assert root.attributes[semconv.SHUTDOWN_REASON] == "SIGTERM"
        assert root.attributes[semconv.SHUTDOWN_DRAIN] == 7.5  # shortened from 60 s

    def test_no_drain_when_never_ready(self, telemetry: Telemetry) -> None:
        """A service that never became ready (FAILED) is not drained: it was never an endpoint."""
        lc = make(telemetry, drain_s=60, clock=lambda: 5.0)

        def db() -> None:
            raise ConnectionError("down")

        lc.orchestrator.add(db, name="db")

        async def main() -> None:
            await lc.start()
            assert lc.state is LifecycleState.FAILED
            lc.request_shutdown("SIGTERM")
            await asyncio.wait_for(lc.wait_for_stop(), 5)
            await lc.shutdown()

        asyncio.run(main())
        (root,) = telemetry.spans(semconv.SPAN_SHUTDOWN)
        assert root.attributes[semconv.SHUTDOWN_DRAIN] == 0.0
        assert lc.state is LifecycleState.STOPPED

    def test_lifecycle_state_gauge(self, telemetry: Telemetry) -> None:
        """flowtel.lifecycle.state is 1 for the current state and 0 for the others."""
        lc = make(telemetry)
        asyncio.run(lc.start())
        values = {
            a[semconv.LIFECYCLE_STATE]: p.value
            for a, p in telemetry.points(semconv.METRIC_LIFECYCLE_STATE)
        }
        assert values == {s.value: int(s is LifecycleState.READY) for s in LifecycleState}


class TestManagedLifecycle:
    def test_critical_failure_raises_after_hooks_and_flush(self, telemetry: Telemetry) -> None:
        """A failed critical check raises StartupError naming it, after hooks ran and a flush."""
        ran: list[str] = []
        flushed: list[float] = []
        lc = make(telemetry, flushed)
        lc.orchestrator.add(lambda: 1 / 0, name="db")
        lc.register_shutdown_hook("cleanup", lambda: ran.append("cleanup"))

        async def main() -> None:
            async with managed_lifecycle(lc, handle_signals=False):
                raise AssertionError("the body must not run")

        with pytest.raises(StartupError, match="critical startup checks did not succeed: db"):
            asyncio.run(main())
        assert ran == ["cleanup"]
        assert flushed
        assert lc.state is LifecycleState.STOPPED
        names = [s.name for s in telemetry.spans()]
        assert semconv.SPAN_STARTUP in names and names[-1] == semconv.SPAN_SHUTDOWN

    def test_body_exit_shuts_down_without_drain(self, telemetry: Telemetry) -> None:
        """When the body returns on its own, shutdown runs at once (no drain delay)."""
        lc = make(telemetry, drain_s=60)

        async def main() -> LifecycleState:
            async with managed_lifecycle(lc, handle_signals=False) as running:
                state = running.state
            return state

        assert asyncio.run(asyncio.wait_for(main(), 5)) is LifecycleState.READY
        assert lc.state is LifecycleState.STOPPED
        (root,) = telemetry.spans(semconv.SPAN_SHUTDOWN)
        assert root.attributes[semconv.SHUTDOWN_REASON] == "exit"

    def test_an_explicit_orchestrator_gets_its_own_lifecycle(self, telemetry: Telemetry) -> None:
        """managed_lifecycle(orchestrator) runs that orchestrator, not the process-wide one."""
        orch = StartupOrchestrator(tracer_provider=telemetry.tracer_provider)
        orch.add(lambda: {"ok": True}, name="only")

        async def main() -> Lifecycle:
            async with managed_lifecycle(orch, drain_s=0, handle_signals=False) as running:
                assert running.orchestrator is orch
                assert running.report is not None
                assert running.report.check("only").details == {"ok": True}
                return running

        assert asyncio.run(main()).state is LifecycleState.STOPPED


class TestUvicornContract:
    def test_uvicorn_handle_exit_is_recognised(self) -> None:
        """The bound Server.handle_exit uvicorn installs is found (canary for uvicorn upgrades)."""
        import uvicorn

        from flowtel.lifecycle._signals import uvicorn_server

        server = uvicorn.Server(uvicorn.Config(app=lambda *a: None))
        assert uvicorn_server(server.handle_exit) is server
        assert server.should_exit is False
        assert hasattr(server, "capture_signals")
        assert uvicorn_server(lambda sig, frame: None) is None
        assert uvicorn_server(print) is None


class TestConfigureTelemetryWiring:
    def test_the_lifecycle_follows_the_configured_settings(self) -> None:
        """drain_s and the flush bound come from configure_telemetry(), whatever the order of
        configuration and import; a value set on the lifecycle wins."""
        from flowtel import configure_telemetry
        from flowtel.lifecycle import Lifecycle, default_lifecycle

        telemetry = configure_telemetry(
            exporter="none", shutdown_timeout_s=2.5, drain_s=1.5, force=True
        )
        try:
            lc = default_lifecycle()
            assert (lc.drain_s, lc.flush_timeout_s) == (1.5, 2.5)
            own = Lifecycle(drain_s=0.25, flush_timeout_s=4.0)
            assert (own.drain_s, own.flush_timeout_s) == (0.25, 4.0)
            again = configure_telemetry(exporter="none", drain_s=7.0, force=True)
            assert lc.drain_s == 7.0
            assert own.drain_s == 0.25
            telemetry = again
        finally:
            telemetry.shutdown()
