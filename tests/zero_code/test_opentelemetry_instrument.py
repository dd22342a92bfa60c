"""`opentelemetry-instrument uvicorn app:app` builds flowtel's pipeline from the environment:
the same scrubbing, error statistics and Sentry as configure_telemetry()."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Any

import httpx

from flowtel import semconv
from tests.lifecycle._process import spawn
from tests.support.polling import wait_until
from tests.support.sentry_server import SentryServer

INSTRUMENT = str(Path(sys.executable).parent / "opentelemetry-instrument")
SECRETS = ("hunter2", "sk_live_4242424242424242")


class TestZeroCode:
    def test_uvicorn_under_opentelemetry_instrument(self, otlp_http: Any) -> None:
        """Spans, error metrics and logs reach OTLP scrubbed; the failure reaches Sentry."""
        sentry = SentryServer().start()
        try:
            env = {
                "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_http.endpoint,
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
                "OTEL_SERVICE_NAME": "zero-code",
                "OTEL_METRIC_EXPORT_INTERVAL": "500",
                "OTEL_PYTHON_DISTRO": "flowtel",
                "OTEL_PYTHON_CONFIGURATOR": "flowtel",
                "SENTRY_DSN": sentry.dsn,
                "PATH": f"{Path(INSTRUMENT).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            }
            args = ["uvicorn", "tests.zero_code.plain_app:app", "--host", "127.0.0.1"]
            with spawn([*args, "--port", "0"], program=INSTRUMENT, **env) as server:
                port = server.wait_for_line(r"Uvicorn running on http://127\.0\.0\.1:(\d+)")[1]
                with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
                    assert client.get("/ok").status_code == 200
                    assert client.get("/boom").status_code == 500
                # Telemetry is asserted while the server runs: plain uvicorn re-raises SIGTERM
                # after its shutdown, which skips atexit (see docs/zero-code.md).
                boom = otlp_http.wait_for_span("GET /boom")
                assert boom.span.status.code == 2  # STATUS_CODE_ERROR
                otlp_http.wait_for_span("GET /ok")
                calls = otlp_http.wait_for_metric(
                    semconv.METRIC_OPERATION_CALLS, lambda ps: sum(p.value for p in ps) >= 2
                )
                assert calls
                logs = otlp_http.wait_for_logs(lambda got: any("login" in str(r.body) for r in got))
                sentry.wait_for_events(1)
                server.proc.send_signal(signal.SIGTERM)
                assert server.wait_exit() in (0, -signal.SIGTERM), server.output()

            exported = " ".join(
                [str(s.span) for s in otlp_http.spans()] + [str(r.body) for r in logs]
            )
            assert "ValueError" in exported
            for secret in SECRETS:
                assert secret not in exported
                assert secret not in str(sentry.events())
            wait_until(lambda: bool(sentry.events()), what="the Sentry event")
            assert any("ValueError" in str(e) for e in sentry.events())
        finally:
            sentry.stop()
