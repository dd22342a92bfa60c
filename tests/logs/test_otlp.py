"""Log records through real OTLP receivers (gRPC and HTTP): correlation, stack, scrubbing, load."""

from __future__ import annotations

import logging
import time
import tracemalloc
from collections.abc import Callable

import pytest

import flowtel
from flowtel import semconv
from flowtel._core._scrub import REDACTED
from tests.logs.conftest import SERVICE
from tests.support.otlp_receiver import BlackHoleServer, OtlpReceiver, ReceivedLog, Signal

log = logging.getLogger("app.checkout")
MakePipeline = Callable[..., flowtel.Telemetry]


@pytest.fixture(params=["grpc", "http"])
def receiver(request: pytest.FixtureRequest) -> tuple[OtlpReceiver, str]:
    """Each test runs once against the gRPC and once against the HTTP receiver."""
    protocol: str = request.param
    return request.getfixturevalue(
        f"otlp_{protocol}"
    ), "grpc" if protocol == "grpc" else "http/protobuf"


def _flushed(pipe: flowtel.Telemetry, rx: OtlpReceiver, count: int) -> list[ReceivedLog]:
    assert pipe.force_flush(timeout_s=10)
    return rx.wait_for_logs(count, timeout_s=10)


class TestOverOtlp:
    def test_trace_ids_severity_and_resource(
        self, otlp_pipeline: MakePipeline, receiver: tuple[OtlpReceiver, str]
    ) -> None:
        """Records arrive with their span's trace/span ids, severity and service.name."""
        rx, protocol = receiver
        pipe = otlp_pipeline(rx.endpoint, protocol)
        with pipe.tracer.start_as_current_span("checkout") as span:
            log.info("started")
            log.warning("slow payment", extra={"elapsed_s": 2.5})
        log.error("outside any span")
        got = _flushed(pipe, rx, 3)
        ctx = span.get_span_context()
        inside = [r for r in got if r.body != "outside any span"]
        assert [r.body for r in inside] == ["started", "slow payment"]
        for r in inside:
            assert r.record.trace_id == ctx.trace_id.to_bytes(16, "big")
            assert r.record.span_id == ctx.span_id.to_bytes(8, "big")
            assert r.record.flags & 0x01 == 0x01  # sampled
            assert r.resource[semconv.SERVICE_NAME] == SERVICE
            assert r.scope == "app.checkout"
        assert [(r.record.severity_number, r.record.severity_text) for r in got] == [
            (9, "INFO"),
            (13, "WARN"),
            (17, "ERROR"),
        ]
        assert inside[1].attributes["elapsed_s"] == 2.5
        outside = got[2].record
        assert outside.trace_id in (b"", bytes(16)) and outside.span_id in (b"", bytes(8))

    def test_exception_carries_stack(
        self, otlp_pipeline: MakePipeline, receiver: tuple[OtlpReceiver, str]
    ) -> None:
        """logger.exception exports exception.type, .message and the full stack trace."""
        rx, protocol = receiver
        pipe = otlp_pipeline(rx.endpoint, protocol)

        def charge_card() -> None:
            raise TimeoutError("gateway did not answer")

        try:
            charge_card()
        except TimeoutError:
            log.exception("payment failed")
        (got,) = _flushed(pipe, rx, 1)
        attrs = got.attributes
        assert attrs[semconv.EXCEPTION_TYPE] == "TimeoutError"
        assert attrs[semconv.EXCEPTION_MESSAGE] == "gateway did not answer"
        assert "in charge_card" in attrs[semconv.EXCEPTION_STACKTRACE]
        assert attrs[semconv.CODE_FUNCTION] == "test_exception_carries_stack"

    def test_secrets_scrubbed(self, otlp_pipeline: MakePipeline, otlp_grpc: OtlpReceiver) -> None:
        """No secret from the message, extras or exception reaches the collector."""
        pipe = otlp_pipeline(otlp_grpc.endpoint)
        try:
            raise PermissionError("Authorization: Bearer eyJhbGciOi.eyJzdWIiOi.c2lnbmF0dXJl")
        except PermissionError:
            log.exception(
                "retrying with password=%s", "hunter2", extra={"session_id": "abc", "n": 3}
            )
        (got,) = _flushed(pipe, otlp_grpc, 1)
        wire = got.record.SerializeToString()
        for secret in (b"hunter2", b"eyJhbGciOi", b"abc"):
            assert secret not in wire
        assert got.attributes["session_id"] == REDACTED and got.attributes["n"] == 3

    def test_no_duplicates_with_existing_root_handler(
        self, otlp_pipeline: MakePipeline, otlp_grpc: OtlpReceiver
    ) -> None:
        """A pre-existing root handler and a second install still export each record once."""
        root = logging.getLogger()
        mine = logging.NullHandler()
        root.addHandler(mine)
        try:
            pipe = otlp_pipeline(otlp_grpc.endpoint)
            pipe = otlp_pipeline(otlp_grpc.endpoint)  # configured twice: replaces the first
            for i in range(5):
                log.warning("record %d", i)
            assert pipe.force_flush(timeout_s=10)
            got = otlp_grpc.wait_for_logs(5, timeout_s=10)
        finally:
            root.removeHandler(mine)
        assert sorted(str(r.body) for r in got) == [f"record {i}" for i in range(5)]

    def test_exporter_failures_are_not_exported(
        self,
        otlp_pipeline: MakePipeline,
        otlp_grpc: OtlpReceiver,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """The exporter's own error log about a failed export never becomes an exported record."""
        import grpc

        pipe = otlp_pipeline(otlp_grpc.endpoint)
        # only the log export: a metrics export in the same flush must not take the failure
        otlp_grpc.fail_with(grpc.StatusCode.INVALID_ARGUMENT, times=1, signal=Signal.LOGS)
        log.warning("lost in the failed batch")
        assert pipe.force_flush(timeout_s=10)
        assert any(r.name.startswith("opentelemetry") for r in caplog.records)
        log.warning("after recovery")
        got = _flushed(pipe, otlp_grpc, 1)
        assert [r.body for r in got] == ["after recovery"]
        assert all(not r.scope.startswith("opentelemetry") for r in got)


class TestBurst:
    @pytest.mark.timeout(600)
    def test_100k_records_to_a_black_hole_bounded(
        self, otlp_pipeline: MakePipeline, black_hole: BlackHoleServer
    ) -> None:
        """100,000 records to a collector that never answers: bounded memory, caller never waits."""
        pipe = otlp_pipeline(black_hole.endpoint)
        burst = logging.getLogger("app.burst")
        tracemalloc.start()
        worst_call_s = 0.0
        started = time.perf_counter()
        try:
            with pipe.tracer.start_as_current_span("burst"):
                for i in range(100_000):
                    t0 = time.perf_counter()
                    burst.info("record %d", i, extra={"order_id": i})
                    worst_call_s = max(worst_call_s, time.perf_counter() - t0)
            total_s = time.perf_counter() - started
            _, peak_bytes = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        # The SDK queue holds at most 2048 records; keeping 100k records would need >100 MB.
        assert peak_bytes < 32 * 1024 * 1024, f"peak {peak_bytes / 1e6:.1f} MB"
        # A call that waited on the network would take at least the 2 s export timeout.
        assert worst_call_s < 1.0, f"one log call took {worst_call_s:.3f}s"
        assert total_s < 500, f"burst took {total_s:.1f}s"
