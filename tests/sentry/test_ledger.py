"""The Sentry loss ledger: every captured event is counted once, ``sent`` only when Sentry said 2xx.

Through ``configure_telemetry(sentry_dsn=...)`` against the local Sentry endpoint, healthy,
hanging (held requests) and refusing (500, 429). In every case sent + dropped = captured.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

import flowtel
from flowtel._core import _compat
from tests.sentry.test_configure import Configured
from tests.support.sentry_server import SentryServer

N = 20
SLACK_S = 0.3  # beyond shutdown_timeout_s: thread start-up and the other processors' shutdown


class LedgerError(Exception):
    """Raised by the traced function under test."""


@flowtel.traced
def settle(n: int) -> None:
    raise LedgerError(f"cannot settle invoice {n}")


def fail_calls(count: int = N) -> None:
    """``count`` failing calls: ``count`` distinct Sentry events (one span each, no duplicates)."""
    for n in range(count):
        with pytest.raises(LedgerError):
            settle(n)


def join_sentry_workers(started_after: set[threading.Thread], timeout_s: float = 10.0) -> None:
    """Wait until the (killed) sentry-sdk transport threads started since ``started_after``
    have finished their last job. After that no late answer can change a count."""
    deadline = time.monotonic() + timeout_s
    for thread in set(threading.enumerate()) - started_after:
        if thread.name == "sentry-sdk.BackgroundWorker":
            thread.join(max(0.0, deadline - time.monotonic()))
            assert not thread.is_alive(), "a sentry-sdk worker is still sending"


def configured(server: SentryServer, **options: Any) -> Configured:
    return Configured(server.dsn, **options)


class TestHealthy:
    def test_every_event_is_sent_once_sentry_answered(self, sentry_server: SentryServer) -> None:
        """N events to a healthy endpoint: sent N, all received, nothing dropped."""
        setup = configured(sentry_server)
        try:
            fail_calls()
            assert setup.telemetry.force_flush(5)
            assert setup.sentry_points() == {("sent", None): N}
            assert len(sentry_server.wait_for_events(N)) == N
        finally:
            assert setup.telemetry.shutdown()
        assert setup.sentry_points() == {("sent", None): N}  # nothing expired at shutdown


class TestHangingEndpoint:
    def test_shutdown_is_bounded_and_counts_every_event_shutdown_timeout(
        self, sentry_server: SentryServer
    ) -> None:
        """Sentry holds requests: shutdown returns in budget; N shutdown_timeout, none sent."""
        sentry_server.delay_s = 1.0  # longer than the budget; answers 200 after it ended
        budget_s = 0.5
        threads = set(threading.enumerate())
        setup = configured(sentry_server, shutdown_timeout_s=budget_s)
        fail_calls()
        start = time.perf_counter()
        assert setup.telemetry.shutdown()
        elapsed = time.perf_counter() - start
        assert elapsed < budget_s + SLACK_S, elapsed
        assert setup.sentry_points() == {("dropped", "shutdown_timeout"): N}
        # The held request is answered 200 later; queued envelopes are not sent after expiry.
        join_sentry_workers(threads)
        assert setup.sentry_points() == {("dropped", "shutdown_timeout"): N}
        assert sentry_server.request_count <= 1  # at most the envelope that was in flight

    def test_capture_queue_and_transport_queue_full_add_up(
        self, sentry_server: SentryServer
    ) -> None:
        """With small queues and a hung Sentry: queue_full + shutdown_timeout = captured."""
        sentry_server.delay_s = 30.0
        setup = configured(sentry_server, shutdown_timeout_s=0.5)
        calls = 300  # more than the capture queue (256) and sentry-sdk's queue (100) hold
        fail_calls(calls)
        assert setup.telemetry.shutdown()
        points = setup.sentry_points()
        assert set(points) <= {("dropped", "shutdown_timeout"), ("dropped", "queue_full")}
        assert sum(points.values()) == calls, points
        assert points[("dropped", "shutdown_timeout")] >= 1


class TestRefusingEndpoint:
    def test_server_error_is_send_error(self, sentry_server: SentryServer) -> None:
        """Every envelope answered 500: N dropped send_error, none sent."""
        sentry_server.status = 500
        setup = configured(sentry_server)
        try:
            fail_calls()
            assert setup.telemetry.force_flush(5)
            assert setup.sentry_points() == {("dropped", "send_error"): N}
            assert sentry_server.request_count >= 1  # they did reach Sentry
        finally:
            setup.telemetry.shutdown()

    def test_rate_limit_is_rate_limited(self, sentry_server: SentryServer) -> None:
        """A 429 with Retry-After: the refused event and the ones held back locally are rate_limited."""
        sentry_server.status = 429
        sentry_server.retry_after_s = 60
        setup = configured(sentry_server)
        try:
            fail_calls(1)
            assert setup.telemetry.force_flush(5)
            assert setup.sentry_points() == {("dropped", "rate_limited"): 1}
            fail_calls()
            assert setup.telemetry.force_flush(5)
            assert setup.sentry_points() == {("dropped", "rate_limited"): N + 1}
        finally:
            setup.telemetry.shutdown()


class TestCompat:
    def test_send_hooks_are_verified_on_this_sdk(self) -> None:
        """On a supported sentry-sdk the probe passes: `sent` means answered, not queued."""
        import sentry_sdk.transport

        assert _compat.sentry_send_hooks(sentry_sdk.transport.HttpTransport) is not None

    def test_a_transport_that_never_sends_fails_the_probe(self) -> None:
        """A transport whose worker never calls _send_envelope gets the fallback, not wrong data."""
        import sentry_sdk.transport

        class Silent(sentry_sdk.transport.HttpTransport):
            def capture_envelope(self, envelope: Any) -> None:
                return None

        assert _compat.sentry_send_hooks(Silent) is None

    def test_fallback_counts_sent_at_hand_over(
        self, sentry_server: SentryServer, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Without the hooks every event is still counted once: sent when sentry-sdk queued it."""
        monkeypatch.setattr(_compat, "sentry_send_hooks", lambda base: None)
        setup = configured(sentry_server)
        try:
            fail_calls()
            assert setup.telemetry.force_flush(5)
            assert setup.sentry_points() == {("sent", None): N}
            assert len(sentry_server.wait_for_events(N)) == N
        finally:
            setup.telemetry.shutdown()
