"""instrument_fastapi on a real uvicorn server: requests traced, probes not."""

from __future__ import annotations

from fastapi import FastAPI, HTTPException

from flowtel import semconv
from flowtel.fastapi import instrument_fastapi
from flowtel.lifecycle import (
    Lifecycle,
    ProbePaths,
    ReadinessMonitor,
    StartupOrchestrator,
    add_k8s_probes,
)

from ._server import poll_status, running_server
from .conftest import Telemetry


def build(telemetry: Telemetry, **kwargs: object) -> FastAPI:
    app = FastAPI()

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    @app.get("/broken")
    async def broken() -> None:
        raise HTTPException(status_code=503, detail="upstream down")

    @app.get("/metrics")
    async def prom() -> str:
        return "ok"

    orch = StartupOrchestrator(tracer_provider=telemetry.tracer_provider)
    lifecycle = Lifecycle(orch, tracer_provider=telemetry.tracer_provider, flush=lambda t: True)
    add_k8s_probes(app, lifecycle=lifecycle, readiness=ReadinessMonitor(), handle_signals=False,
                   **kwargs)  # type: ignore[arg-type]  # fmt: skip
    instrument_fastapi(
        app,
        excluded_paths=["/metrics"],
        tracer_provider=telemetry.tracer_provider,
        meter_provider=telemetry.meter_provider,
    )
    return app


def server_spans(telemetry: Telemetry) -> list[str]:
    return [s.name for s in telemetry.spans() if s.kind.name == "SERVER"]


class TestInstrumentFastapi:
    def test_requests_are_traced_and_probes_are_not(self, telemetry: Telemetry) -> None:
        """Routes produce server spans with flowtel.component; probes and /metrics produce none."""
        app = build(telemetry)
        with running_server(app) as client:
            poll_status(client, "/ready", 200)
            for path in ("/alive", "/startup", "/health", "/metrics"):
                assert client.get(path).status_code == 200
            assert client.get("/items/7").json() == {"id": 7}
            assert client.get("/broken").status_code == 503
        assert server_spans(telemetry) == ["GET /items/{item_id}", "GET /broken"]
        http_spans = [s.name for s in telemetry.spans() if not s.name.startswith("flowtel.")]
        assert http_spans == server_spans(telemetry)  # no per-message send/receive spans
        (failed,) = [s for s in telemetry.spans() if s.name == "GET /broken"]
        assert failed.status.status_code.name == "ERROR"
        assert failed.attributes[semconv.COMPONENT] == "http"

    def test_custom_probe_paths_are_excluded(self, telemetry: Telemetry) -> None:
        """The paths given to add_k8s_probes are the ones excluded, and only exactly."""
        app = build(telemetry, paths=ProbePaths(ready="/readyz"))
        with running_server(app) as client:
            poll_status(client, "/readyz", 200)
            assert client.get("/readyz/extra").status_code == 404
        assert server_spans(telemetry) == ["GET"]


class TestLazyImports:
    def test_importing_flowtel_modules_does_not_import_web_frameworks(self) -> None:
        """flowtel.fastapi/probes/lifecycle/startup import no fastapi, starlette or uvicorn."""
        import subprocess
        import sys

        code = (
            "import sys, flowtel.fastapi, flowtel.lifecycle; print(sorted(m for m in ('fastapi', 'starlette', 'uvicorn', "
            "'opentelemetry.instrumentation.fastapi') if m in sys.modules))"
        )
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True, timeout=60)  # fmt: skip
        assert out.stdout.strip() == "[]"
