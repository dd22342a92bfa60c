"""/health reports the error rate that flowtel.errors computes from finished spans."""

from __future__ import annotations

from fastapi import FastAPI, HTTPException

import flowtel
from flowtel.fastapi import instrument_fastapi
from flowtel.lifecycle import Lifecycle, ReadinessMonitor, StartupOrchestrator, add_k8s_probes

from ._server import poll_status, running_server


class TestHealthErrorRate:
    def test_failed_requests_show_in_health(self) -> None:
        """3 failing requests out of 4: /health shows the entry-level rate (requests, not
        spans; the startup span is not the service's work) and the operations beside it."""
        telemetry = flowtel.configure_telemetry(exporter="none", error_window_minutes=15,
                                                force=True)  # fmt: skip
        try:
            app = FastAPI()

            @app.get("/ok")
            async def ok() -> dict[str, bool]:
                return {"ok": True}

            @app.get("/broken")
            async def broken() -> None:
                raise HTTPException(status_code=503, detail="upstream down")

            lifecycle = Lifecycle(StartupOrchestrator(), flush=lambda timeout_s: True)
            add_k8s_probes(app, lifecycle=lifecycle, readiness=ReadinessMonitor(),
                           handle_signals=False)  # fmt: skip
            instrument_fastapi(app)
            with running_server(app) as client:
                poll_status(client, "/ready", 200)
                client.get("/ok")
                for _ in range(3):
                    client.get("/broken")
                errors = client.get("/health").json()["errors"]
            # 4 requests; the flowtel.startup span counts as an operation, never as an entry
            assert errors["level"] == "entries"
            assert errors["total"] == 4 and errors["errors"] == 3
            assert errors["error_rate"] == 0.75
            assert errors["operations"] == {"total": 5, "errors": 3, "error_rate": 0.6}
            assert errors["high"] is False  # fewer than min_calls: never flaps on a few calls
            assert errors["top_entries"][0] == errors["top_operations"][0] == {
                "component": "http", "operation": "GET /broken", "errors": 3, "total": 3,
                "error_rate": 1.0,
            }  # fmt: skip
        finally:
            telemetry.shutdown()
