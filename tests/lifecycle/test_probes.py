"""add_k8s_probes on a real uvicorn server: probe semantics through startup, failure, readiness."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest
from fastapi import FastAPI

from flowtel import semconv
from flowtel.exceptions import ConfigurationError
from flowtel.lifecycle import (
    Lifecycle,
    ProbePaths,
    ReadinessMonitor,
    StartupOrchestrator,
    add_k8s_probes,
    probe_paths,
)

from ._server import poll_status, running_server, wait_until
from .conftest import Telemetry


def build(telemetry: Telemetry, **probe_kwargs: Any) -> tuple[FastAPI, Lifecycle, ReadinessMonitor]:
    orch = StartupOrchestrator(
        tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider
    )
    lifecycle = Lifecycle(
        orch,
        drain_s=0,
        tracer_provider=telemetry.tracer_provider,
        meter_provider=telemetry.meter_provider,
        flush=lambda timeout_s: telemetry.tracer_provider.force_flush(int(timeout_s * 1000)),
    )
    readiness = ReadinessMonitor(meter_provider=telemetry.meter_provider)
    app = FastAPI()

    @app.get("/work")
    async def work() -> dict[str, str]:
        return {"done": "yes"}

    served = add_k8s_probes(
        app, lifecycle=lifecycle, readiness=readiness, handle_signals=False,
        meter_provider=telemetry.meter_provider, **probe_kwargs,
    )  # fmt: skip
    assert served is app
    return app, lifecycle, readiness


class TestSlowStartup:
    def test_startup_503_while_checks_run_then_200(self, telemetry: Telemetry) -> None:
        """The server listens while a slow check runs: /startup 503, /alive 200; then all 200."""
        app, lifecycle, _ = build(telemetry)
        gate = threading.Event()
        lifecycle.orchestrator.add(lambda: {"released": gate.wait(10)}, name="db", timeout_s=15)
        with running_server(app) as client:
            assert client.get("/startup").status_code == 503
            assert client.get("/ready").status_code == 503
            assert client.get("/alive").status_code == 200
            health = client.get("/health")
            assert health.status_code == 503
            assert health.json()["state"] == "STARTING"
            gate.set()
            poll_status(client, "/startup", 200)
            poll_status(client, "/ready", 200)
            body = client.get("/health").json()
            assert body["status"] == "pass"
            assert body["state"] == "READY"
            assert body["startup"]["checks"][0]["details"] == {"released": True}
            assert client.get("/work").json() == {"done": "yes"}
        assert lifecycle.state.value == "STOPPED"
        names = [s.name for s in telemetry.spans()]
        assert names.count(semconv.SPAN_STARTUP) == 1
        assert names[-1] == semconv.SPAN_SHUTDOWN

    def test_probe_requests_are_counted(self, telemetry: Telemetry) -> None:
        """Each probe answer increments flowtel.probe.checks by probe and outcome."""
        app, _, _ = build(telemetry)
        with running_server(app) as client:
            poll_status(client, "/startup", 200)
            client.get("/alive")
        counts = {
            (a[semconv.PROBE], a[semconv.PROBE_OUTCOME]): p.value
            for a, p in telemetry.points(semconv.METRIC_PROBE_CHECKS)
        }
        assert counts[("alive", "pass")] == 1
        assert counts[("startup", "pass")] == 1


class TestCriticalFailure:
    def test_failed_critical_check_keeps_startup_and_alive_503(self, telemetry: Telemetry) -> None:
        """A failed critical check: /startup, /ready and /alive 503; /health names the check."""
        app, lifecycle, _ = build(telemetry)

        def db() -> None:
            raise ConnectionRefusedError("db:5432")

        lifecycle.orchestrator.add(db, name="db")
        lifecycle.orchestrator.add(lambda: None, name="api", depends_on=["db"])
        with running_server(app) as client:
            poll_status(client, "/alive", 503)
            assert client.get("/startup").status_code == 503
            assert client.get("/ready").status_code == 503
            startup = client.get("/health").json()["startup"]
            outcomes = {c["name"]: c["outcome"] for c in startup["checks"]}
            assert outcomes == {"db": "failed", "api": "skipped"}
            assert startup["state"] == "FAILED"

    def test_invalid_graph_stops_the_server_before_it_listens(self, telemetry: Telemetry) -> None:
        """An unknown dependency fails the lifespan startup; uvicorn never listens."""
        app, lifecycle, _ = build(telemetry)
        lifecycle.orchestrator.add(lambda: None, name="api", depends_on=["nope"])
        with (
            pytest.raises(RuntimeError, match=r"did not start \(exit code \[3\]\)"),
            running_server(app),
        ):
            raise AssertionError("server should not have started")
        assert telemetry.spans() == []


class TestReadinessChecks:
    def test_readiness_runs_in_background_not_per_request(self, telemetry: Telemetry) -> None:
        """Probing /ready many times does not run the check again (interval 60s)."""
        app, _, readiness = build(telemetry)
        calls = 0

        def db_ping() -> bool:
            nonlocal calls
            calls += 1
            return True

        readiness.add(db_ping, name="db", interval_s=60, timeout_s=1)
        with running_server(app) as client:
            poll_status(client, "/ready", 200)
            for _ in range(20):
                assert client.get("/ready").status_code == 200
        assert calls == 1

    def test_failing_and_hanging_checks_fail_ready_quickly(self, telemetry: Telemetry) -> None:
        """A raising check and a hanging check make /ready 503 fast; /health shows the errors."""
        app, _, readiness = build(telemetry)
        healthy = threading.Event()
        healthy.set()

        def cache() -> None:
            if not healthy.is_set():
                raise TimeoutError("redis timeout")

        async def search() -> None:
            if not healthy.is_set():
                await asyncio.Event().wait()

        readiness.add(cache, name="cache", interval_s=0.05, timeout_s=1)
        readiness.add(search, name="search", interval_s=0.05, timeout_s=0.1)
        with running_server(app) as client:
            poll_status(client, "/ready", 200)
            healthy.clear()
            poll_status(client, "/ready", 503)
            wait_until(lambda: client.get("/health").json()["checks"]["search"]["status"] == "fail")
            started = time.monotonic()
            response = client.get("/ready")
            assert response.status_code == 503
            assert time.monotonic() - started < 1.0  # generous bound: probes never wait on checks
            checks = client.get("/health").json()["checks"]
            assert checks["cache"]["last_error"] == "TimeoutError: redis timeout"
            assert checks["search"]["last_error"] == "timed out after 0.1s"
            healthy.set()
            poll_status(client, "/ready", 200)
        gauge = {
            a[semconv.READINESS_CHECK]: p.value
            for a, p in telemetry.points(semconv.METRIC_READINESS_CHECK_STATUS)
        }
        assert gauge == {"cache": 1, "search": 1}

    def test_a_hung_sync_check_is_not_started_again(self) -> None:
        """A sync check still hung in its thread fails its next turn without a second thread."""
        gate = threading.Event()
        started = 0

        def db() -> bool:
            nonlocal started
            started += 1
            return gate.wait(10)

        async def main() -> list[str | None]:
            monitor = ReadinessMonitor()
            monitor.add(db, name="db", interval_s=60, timeout_s=0.05)
            errors = [(await monitor.run_once("db")).last_error]
            errors.append((await monitor.run_once("db")).last_error)
            gate.set()
            deadline = time.monotonic() + 5
            while not (await monitor.run_once("db")).ok:
                assert time.monotonic() < deadline, "the check never recovered"
                await asyncio.sleep(0.01)
            return errors

        assert asyncio.run(main()) == ["timed out after 0.05s", "previous run still hung"]
        assert started == 2  # the hung run and the recovered one; none while hung


class TestLiveness:
    def test_alive_fails_when_the_event_loop_stops_turning(self, telemetry: Telemetry) -> None:
        """With an injected clock, a heartbeat older than alive_max_lag_s answers 503."""
        now = [1000.0]
        app, _, _ = build(
            telemetry, heartbeat_interval_s=30, alive_max_lag_s=60, clock=lambda: now[0]
        )
        with running_server(app) as client:
            assert client.get("/alive").status_code == 200
            now[0] += 59
            assert client.get("/alive").status_code == 200
            now[0] += 2
            assert client.get("/alive").status_code == 503
            assert client.get("/health").json()["event_loop"]["since_heartbeat_s"] == 61


class TestConfiguration:
    def test_custom_paths_and_hidden_details(self, telemetry: Telemetry) -> None:
        """Paths are configurable; expose_details=False returns only the status."""
        paths = ProbePaths(alive="/livez", ready="/readyz", startup="/startupz", health="/healthz")
        app, _, _ = build(telemetry, paths=paths, expose_details=False)
        with running_server(app) as client:
            poll_status(client, "/startupz", 200)
            assert client.get("/healthz").json() == {"status": "pass"}
            assert client.get("/readyz").json() == {"status": "pass"}
            assert client.get("/alive").status_code == 404
        assert probe_paths(app) == ("/livez", "/readyz", "/startupz", "/healthz")

    def test_bad_options_fail_fast(self) -> None:
        """Clashing or relative paths and out-of-range thresholds raise ConfigurationError."""
        with pytest.raises(ConfigurationError, match="paths"):
            add_k8s_probes(FastAPI(), paths=ProbePaths(ready="/alive"))
        with pytest.raises(ConfigurationError, match="paths"):
            add_k8s_probes(FastAPI(), paths=ProbePaths(health="health"))
        with pytest.raises(ConfigurationError, match="error_rate_warn"):
            add_k8s_probes(FastAPI(), error_rate_warn=5)
        with pytest.raises(ConfigurationError, match="alive_max_lag_s"):
            add_k8s_probes(FastAPI(), alive_max_lag_s=0.5, heartbeat_interval_s=1)

    def test_lifecycle_and_orchestrator_are_exclusive(self) -> None:
        """Giving both a lifecycle and an orchestrator is a configuration error."""
        orch = StartupOrchestrator()
        with pytest.raises(ConfigurationError, match="orchestrator"):
            add_k8s_probes(FastAPI(), lifecycle=Lifecycle(orch), orchestrator=orch)

    def test_plain_asgi_app_without_lifespan_is_wrapped(self, telemetry: Telemetry) -> None:
        """A bare ASGI app (no lifespan support) gets probes; its routes still answer."""
        ran = threading.Event()

        async def bare(scope: dict[str, Any], receive: Any, send: Any) -> None:
            if scope["type"] != "http":
                raise RuntimeError("lifespan not supported")
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"bare"})

        orch = StartupOrchestrator(tracer_provider=telemetry.tracer_provider)
        orch.add(ran.set, name="check")
        lifecycle = Lifecycle(orch, tracer_provider=telemetry.tracer_provider, flush=lambda t: True)
        served = add_k8s_probes(bare, lifecycle=lifecycle, readiness=ReadinessMonitor(),
                                handle_signals=False)  # fmt: skip
        assert served is not bare
        with running_server(served) as client:
            poll_status(client, "/startup", 200)
            assert client.get("/anything").text == "bare"
        assert ran.is_set()
