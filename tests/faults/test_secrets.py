"""No secret from the corpus leaves the process in clear: OTLP gRPC and HTTP, console, Sentry.

Every shape of ``tests/support/secrets_corpus.py`` is placed in a span name, an attribute under
an innocent key, an attribute under its usual secret key, a recorded argument, a recorded
return value, exception messages (also on spans carrying the secret attributes, so Sentry sees
them) and attributes and events set through the plain OpenTelemetry API on a flowtel span; the
raw bytes that reach the collector, the console or Sentry are then scanned.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
from opentelemetry import trace

import flowtel
from tests.support.otlp_receiver import OtlpGrpcReceiver, OtlpHttpReceiver, OtlpReceiver
from tests.support.secrets_corpus import SECRETS, leaks
from tests.support.sentry_server import SentryServer


@flowtel.traced("secret.args", record_args=True, record_return=True)
def _call(payload: str, **kwargs: str) -> str:
    return payload


@flowtel.traced("secret.raise")
def _fail(message: str) -> None:
    raise ValueError(message)


def emit_corpus() -> int:
    """Place every secret shape everywhere a user might put it; return the spans created."""
    spans = 0
    for shape in SECRETS:
        with flowtel.span(f"GET {shape.text}"):
            pass
        with flowtel.span("secret.attr", detail=shape.text, **{shape.key: shape.value}):
            trace.get_current_span().set_attribute("raw.note", shape.text)
            trace.get_current_span().set_attribute(shape.key, shape.value)
            trace.get_current_span().add_event("raw.event", {"detail": shape.text})
        _call(shape.text, **{shape.key: shape.value})
        with pytest.raises(ValueError):
            _fail(f"upstream said: {shape.text}")
        with (
            pytest.raises(ValueError),
            flowtel.span("secret.fail", detail=shape.text, **{shape.key: shape.value}),
        ):
            trace.get_current_span().set_attribute("raw.note", shape.text)
            raise ValueError(f"while handling {shape.text}")
        spans += 5
    return spans


_log = logging.getLogger("app.secrets")


def emit_log_corpus() -> int:
    """Log every secret shape as a message, an argument, an extra and an exception; return count."""
    records = 0
    for shape in SECRETS:
        _log.warning(f"login attempt with {shape.text}")
        _log.warning(
            "calling upstream with %s",
            shape.text,
            extra={shape.key: shape.value, "detail": shape.text},
        )
        try:
            raise ValueError(f"upstream rejected {shape.text}")
        except ValueError:
            _log.exception("request failed", extra={"note": shape.text})
        records += 3
    return records


def _raw(receiver: OtlpReceiver) -> list[bytes]:
    return [r.message.SerializeToString() for r in receiver.requests()]


class TestSecretsCorpus:
    """The corpus never reaches a collector or the console in clear."""

    def test_corpus_is_large_enough(self) -> None:
        """The issue asks for at least 20 secret shapes."""
        assert len(SECRETS) >= 20
        assert len({s.name for s in SECRETS}) == len(SECRETS)

    @pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
    def test_otlp(
        self,
        protocol: str,
        otlp_grpc: OtlpGrpcReceiver,
        otlp_http: OtlpHttpReceiver,
        configure: Callable[..., flowtel.Telemetry],
    ) -> None:
        """Nothing in the exported OTLP bytes matches a secret; the spans themselves arrived."""
        receiver: OtlpReceiver = otlp_grpc if protocol == "grpc" else otlp_http
        telemetry = configure(
            exporter="otlp", otlp_endpoint=receiver.endpoint, otlp_protocol=protocol
        )
        expected = emit_corpus()
        assert telemetry.force_flush(timeout_s=10.0)
        receiver.wait_for_spans(expected)
        assert leaks(_raw(receiver)) == []

    @pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
    def test_otlp_logs(
        self,
        protocol: str,
        otlp_grpc: OtlpGrpcReceiver,
        otlp_http: OtlpHttpReceiver,
        configure: Callable[..., flowtel.Telemetry],
    ) -> None:
        """Log messages, arguments, extras and logged exceptions reach OTLP without a secret."""
        receiver: OtlpReceiver = otlp_grpc if protocol == "grpc" else otlp_http
        telemetry = configure(
            exporter="otlp", otlp_endpoint=receiver.endpoint, otlp_protocol=protocol, logging=True
        )
        expected = emit_log_corpus()
        assert telemetry.force_flush(timeout_s=10.0)
        logs = receiver.wait_for_logs(expected)
        assert any(r.attributes.get("exception.stacktrace") for r in logs)
        assert leaks(_raw(receiver)) == []

    def test_json_and_console_logs(
        self, capsys: pytest.CaptureFixture[str], configure: Callable[..., flowtel.Telemetry]
    ) -> None:
        """JSON lines on stdout and console-mode log lines never show a secret."""
        telemetry = configure(exporter="none", logging=True, json_logs=True)
        emit_log_corpus()
        telemetry.shutdown()  # writes out what the non-blocking writer still holds
        json_out = capsys.readouterr().out
        assert json_out.count("\n") >= 3 * len(SECRETS)
        assert leaks(json_out) == []
        telemetry = configure(exporter="console", console_colors=False, logging=True)
        emit_log_corpus()
        telemetry.shutdown()
        captured = capsys.readouterr()
        console_out = captured.out + captured.err
        assert console_out.count("\n") >= len(SECRETS)
        assert leaks(console_out) == []

    def test_console(
        self, capsys: pytest.CaptureFixture[str], configure: Callable[..., flowtel.Telemetry]
    ) -> None:
        """The console exporter's lines never show a secret."""
        telemetry = configure(exporter="console", console_colors=False)
        emit_corpus()
        telemetry.shutdown()
        out = capsys.readouterr().out
        assert out.count("\n") >= len(SECRETS)
        assert leaks(out) == []

    def test_sentry(self, configure: Callable[..., flowtel.Telemetry]) -> None:
        """Sentry events for every failing placement carry no secret in clear."""
        server = SentryServer().start()
        try:
            telemetry = configure(exporter="none", sentry_dsn=server.dsn, logging=True)
            emit_corpus()
            emit_log_corpus()  # logger.exception outside spans: handled events via logging
            assert telemetry.force_flush(timeout_s=10.0)
            # sentry-sdk's transport queue holds 100 envelopes: a burst of 2 x 109 shapes loses
            # the excess (counted). tests/privacy sends every shape, flushing in chunks.
            events = server.wait_for_events(min(2 * len(SECRETS), 100))
            assert leaks([i.payload for i in server.items()]) == []
            assert any("[REDACTED]" in str(e) for e in events)
        finally:
            server.stop()

    def test_detector_sees_unscrubbed_corpus(self) -> None:
        """Sanity: the leak detector finds every shape in the raw corpus text."""
        assert sorted(leaks([s.text for s in SECRETS])) == sorted(s.name for s in SECRETS)


class TestScrubberComplexity:
    def test_scrubbing_is_linear_in_text_length(self) -> None:
        """Long unbroken tokens do not make scrubbing quadratic (it holds the GIL while it runs)."""
        import time

        from flowtel._core._scrub import Scrubber

        scrubber = Scrubber()

        def cost(n: int) -> float:
            text = "x" * n + " password=abc postgres://u:pw@db/x"
            best = float("inf")
            for _ in range(3):
                start = time.perf_counter()
                out = scrubber.scrub_text(text)
                best = min(best, time.perf_counter() - start)
            assert "abc" not in out[-40:] and ":pw@" not in out
            return best

        small, large = cost(20_000), cost(200_000)
        # Linear: ~10x for 10x the text; the quadratic version took ~100x (2.7 s for 50 kB).
        assert large < 30 * small + 0.05, (small, large)
