"""A failing call that was sampled out still reaches Sentry, once, without a dead trace link."""

from __future__ import annotations

import pytest

import flowtel
from tests.support.sentry_server import SentryServer


@flowtel.traced(component="shop", operation="reserve")
def reserve() -> None:
    raise LookupError("no stock")


@flowtel.traced(component="shop", operation="checkout")
def checkout() -> None:
    reserve()


def test_sampled_out_failure_is_one_sentry_event(sentry_server: SentryServer) -> None:
    """At sample_rate=0 the call is counted without an SDK span until it fails; then it is
    recorded, and the bridge reports it as for any unsampled trace."""
    telemetry = flowtel.configure_telemetry(
        service_name="shop",
        exporter="none",
        logging=False,
        sample_rate=0.0,
        sentry_dsn=sentry_server.dsn,
        force=True,
    )
    try:
        with pytest.raises(LookupError):
            checkout()
        assert telemetry.force_flush(5)
        [event] = sentry_server.wait_for_events(1)
        assert event["exception"]["values"][-1]["type"] == "LookupError"
        assert event["tags"].get("trace_sampled") in ("false", False)
        assert "trace_url" not in event.get("tags", {})
        stats = flowtel.get_error_stats()
        assert (stats.entries.total, stats.entries.errors) == (1, 1)
    finally:
        telemetry.shutdown()
