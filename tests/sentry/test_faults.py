"""Sentry down, slow or rate-limiting never slows or breaks the instrumented code."""

from __future__ import annotations

import contextlib
import os
import time

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Tracer

import flowtel
from flowtel._core._scrub import Scrubber, current_scrubber, set_scrubber
from tests.sentry.conftest import BridgeRig, MakeRig
from tests.support.sentry_server import SentryServer, refused_port

CALLS = 50
# Generous bound on the *extra* time 50 failing calls may take with the bridge, over the same
# calls without it: catching a blocking network call (>= 1 s connect/read timeouts) is the point.
EXTRA_BOUND_S = 0.25


class QuoteError(Exception):
    """Raised by the instrumented function under test."""


def quote(tracer: Tracer, n: int) -> None:
    with tracer.start_as_current_span("quote"):
        raise QuoteError(f"no price for item {n}")


def run_failing_calls(tracer: Tracer) -> float:
    start = time.perf_counter()
    for n in range(CALLS):
        with contextlib.suppress(QuoteError):
            quote(tracer, n)
    return time.perf_counter() - start


def baseline_s() -> float:
    """The same failing calls on a provider without the bridge (best of three runs)."""
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(InMemorySpanExporter()))
    tracer = provider.get_tracer("baseline")
    best = min(run_failing_calls(tracer) for _ in range(3))
    provider.shutdown()
    return best


def bridged_s(rig: BridgeRig) -> float:
    """The failing calls with the bridge (best of three runs, like the baseline).

    Best-of filters out preemption by other processes on a busy machine; a blocking network
    call would show in every run.
    """
    run_failing_calls(rig.tracer)  # warm-up: source files read once into linecache
    return min(run_failing_calls(rig.tracer) for _ in range(3))


class TestSentryUnavailable:
    def test_refused_connection_does_not_slow_calls(self, make_rig: MakeRig) -> None:
        """With nothing listening on the DSN's port, calls take no longer; every loss is counted."""
        rig = make_rig(dsn=f"http://public@127.0.0.1:{refused_port()}/1", shutdown_timeout_s=1)
        extra = bridged_s(rig) - baseline_s()
        assert extra < EXTRA_BOUND_S, extra
        rig.flush()
        counts = rig.sentry_counts()
        assert ("sent", None) not in counts  # nothing was answered, so nothing is sent
        assert counts[("dropped", "network_error")] >= 1
        assert set(counts) <= {("dropped", "network_error"), ("dropped", "queue_full")}
        assert sum(counts.values()) == 4 * CALLS

    def test_slow_endpoint_does_not_slow_calls_and_overflow_is_counted(
        self, make_rig: MakeRig, sentry_server: SentryServer
    ) -> None:
        """A Sentry that holds requests for 30 s fills the small queue; calls stay fast.

        What the queue and the held request still hold at shutdown is counted shutdown_timeout.
        """
        sentry_server.delay_s = 30.0
        rig = make_rig(transport_queue_size=5, shutdown_timeout_s=0.2)
        extra = bridged_s(rig) - baseline_s()
        assert extra < EXTRA_BOUND_S, extra
        rig.wait_for_counts(lambda c: c.get(("dropped", "queue_full"), 0) >= 4 * CALLS - 10)
        rig.bridge.shutdown()
        counts = rig.sentry_counts()
        assert set(counts) == {("dropped", "queue_full"), ("dropped", "shutdown_timeout")}
        assert sum(counts.values()) == 4 * CALLS

    def test_rate_limited_endpoint_does_not_slow_calls(
        self, make_rig: MakeRig, sentry_server: SentryServer
    ) -> None:
        """After a 429 with Retry-After, events are dropped locally; calls stay fast."""
        sentry_server.status = 429
        sentry_server.retry_after_s = 60
        rig = make_rig()
        with pytest.raises(QuoteError):
            quote(rig.tracer, -1)
        rig.flush()
        sentry_server.wait_for_requests(1)
        extra = bridged_s(rig) - baseline_s()
        assert extra < EXTRA_BOUND_S, extra
        rig.flush()
        assert rig.sentry_counts()[("dropped", "rate_limited")] >= 4 * CALLS
        assert sentry_server.request_count <= 2  # the 429'd event and at most a client report


class TestNeverRaises:
    def test_exception_event_without_attributes_still_reports(
        self, make_rig: MakeRig, sentry_server: SentryServer
    ) -> None:
        """A malformed exception event (no attributes) is reported as a generic Exception."""
        rig = make_rig()
        with rig.tracer.start_as_current_span("odd") as span:
            span.add_event("exception")
        rig.flush()
        [event] = sentry_server.wait_for_events(1)
        assert event["exception"]["values"][0]["type"] == "Exception"

    def test_sampled_out_sentry_events_are_counted(
        self, make_rig: MakeRig, sentry_server: SentryServer
    ) -> None:
        """sentry_sample_rate=0 drops every event and counts it as dropped/sample."""
        rig = make_rig(sample_rate=0.0)
        run_failing_calls(rig.tracer)
        rig.flush()
        assert rig.sentry_counts() == {("dropped", "sample"): CALLS}
        assert sentry_server.events() == []


class TestBrokenScrubber:
    def test_failing_scrubber_drops_the_event_and_never_raises(
        self, make_rig: MakeRig, sentry_server: SentryServer
    ) -> None:
        """If scrubbing fails, the app is unaffected and nothing unscrubbed is sent."""

        class BrokenScrubber(Scrubber):
            def scrub_text(self, text: str) -> str:
                raise RuntimeError("scrubber bug")

        rig = make_rig()
        previous = current_scrubber()
        set_scrubber(BrokenScrubber())
        try:
            with pytest.raises(QuoteError):  # the app's own exception, untouched
                quote(rig.tracer, 3)
            rig.flush()
        finally:
            set_scrubber(previous)
        assert rig.sentry_counts() == {("dropped", "bridge_error"): 1}
        assert sentry_server.events() == []


class TestShutdown:
    def test_shutdown_with_slow_sentry_is_bounded(self, sentry_server: SentryServer) -> None:
        """Telemetry.shutdown() returns within shutdown_timeout_s even if Sentry never answers."""
        sentry_server.delay_s = 30.0
        telemetry = flowtel.configure_telemetry(
            service_name="slow-sentry",
            exporter="none",
            logging=False,
            sentry_dsn=sentry_server.dsn,
            shutdown_timeout_s=0.5,
            force=True,
        )
        for n in range(5):
            with contextlib.suppress(QuoteError):
                quote(telemetry.tracer, n)
        start = time.perf_counter()
        telemetry.shutdown()
        assert time.perf_counter() - start < 2.0


class TestFork:
    def test_forked_child_reports_its_own_errors(
        self, make_rig: MakeRig, sentry_server: SentryServer
    ) -> None:
        """After os.fork (gunicorn --preload style) the child's errors still reach Sentry."""
        rig = make_rig()
        with pytest.raises(QuoteError):
            quote(rig.tracer, 0)  # the parent's capture thread is running when we fork
        rig.flush()
        pid = os.fork()
        if pid == 0:  # child: never return into pytest
            code = 1
            try:
                with contextlib.suppress(QuoteError):
                    quote(rig.tracer, 1)
                code = 0 if rig.bridge.force_flush(5000) else 2
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        values = [e["exception"]["values"][-1]["value"] for e in sentry_server.wait_for_events(2)]
        assert sorted(values) == ["no price for item 0", "no price for item 1"]
