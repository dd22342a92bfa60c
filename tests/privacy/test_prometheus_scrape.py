"""The in-process Prometheus endpoint is an output like any other: its labels are scrubbed."""

from __future__ import annotations

import httpx
from opentelemetry import metrics

import flowtel

from ..support.secrets_corpus import SECRETS


def test_scrape_serves_no_secret_from_a_metric_label() -> None:
    """A label recorded by application code (a URL with a password, a token) is scrubbed in
    what /metrics serves; the count itself is untouched."""
    telemetry = flowtel.configure_telemetry(
        service_name="scrape", exporter="none", logging=False, prometheus_port=0, force=True
    )
    try:
        counter = metrics.get_meter("app").create_counter("app.requests")
        shapes = SECRETS[:20]
        for shape in shapes:
            counter.add(1, {"target": shape.text})
        body = httpx.get(f"http://127.0.0.1:{telemetry.prometheus_port}/metrics").text
        assert "app_requests" in body
        leaked = [s.name for s in shapes if s.needle in body]
        assert leaked == []
        assert "[REDACTED]" in body
    finally:
        telemetry.shutdown()
