"""User patterns, headers and endpoints, through configure_telemetry and real outputs."""

from __future__ import annotations

from collections.abc import Callable

import pytest

import flowtel
from tests.support.otlp_receiver import OtlpGrpcReceiver, Signal


def _span_strings(receiver: OtlpGrpcReceiver) -> str:
    parts: list[str] = []
    for s in receiver.spans():
        parts += [s.name, *map(str, s.attributes.values()), *map(str, s.attributes)]
    return "\n".join(parts)


def _emit() -> None:
    with flowtel.span("lookup EMP-123456", employee=" EMP-123456 ok", employeeId="E-77"):
        pass


class TestUserPatterns:
    """``scrub_patterns`` scrub values, ``scrub_keys`` keys, from keyword or environment."""

    @pytest.mark.parametrize(
        "env",
        [
            {"FLOWTEL_SCRUB_PATTERNS": r"EMP-\d{4,6}", "FLOWTEL_SCRUB_KEYS": "employee_id"},
            {"FLOWTEL_SCRUB_PATTERNS": r'["EMP-\\d{4,6}", "ACME-[A-Z]{3}"]',
             "FLOWTEL_SCRUB_KEYS": '["employee_id"]'},
            {"FLOWTEL_SCRUB_PATTERNS": "ACME-[A-Z]{3}\nEMP-\\d{4,6}",
             "FLOWTEL_SCRUB_KEYS": "x_nothing\nemployee_id"},
        ],
    )  # fmt: skip
    def test_environment(
        self,
        env: dict[str, str],
        monkeypatch: pytest.MonkeyPatch,
        otlp_grpc: OtlpGrpcReceiver,
        configure: Callable[..., flowtel.Telemetry],
    ) -> None:
        """A regex with a comma survives the environment form; values and keys are scrubbed."""
        telemetry = configure(exporter="otlp", otlp_endpoint=otlp_grpc.endpoint)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        telemetry = flowtel.configure_telemetry(
            force=True, exporter="otlp", otlp_endpoint=otlp_grpc.endpoint, logging=False
        )
        try:
            assert r"EMP-\d{4,6}" in telemetry.settings.scrub_patterns
            _emit()
            assert telemetry.force_flush(timeout_s=10.0)
            otlp_grpc.wait_for_spans(1)
            exported = _span_strings(otlp_grpc)
            assert "123456" not in exported and "E-77" not in exported
            assert "[REDACTED]" in exported
        finally:
            telemetry.shutdown(timeout_s=1.0)

    def test_keyword(
        self, otlp_grpc: OtlpGrpcReceiver, configure: Callable[..., flowtel.Telemetry]
    ) -> None:
        """Keyword patterns reach span names, attribute values and keys over OTLP."""
        telemetry = configure(
            exporter="otlp",
            otlp_endpoint=otlp_grpc.endpoint,
            scrub_patterns=[r"EMP-\d{6}"],
            scrub_keys=["employee_id"],
        )
        _emit()
        assert telemetry.force_flush(timeout_s=10.0)
        otlp_grpc.wait_for_spans(1)
        exported = _span_strings(otlp_grpc)
        assert "EMP-123456" not in exported and "E-77" not in exported

    @pytest.mark.parametrize("option", ["scrub_patterns", "scrub_keys"])
    @pytest.mark.parametrize("bad", [r"EMP-(\d+", "a*"])
    def test_invalid_pattern_names_it(
        self, option: str, bad: str, configure: Callable[..., flowtel.Telemetry]
    ) -> None:
        """An invalid regex (or one matching the empty string) is a ConfigurationError."""
        with pytest.raises(flowtel.ConfigurationError) as info:
            configure(exporter="none", **{option: ["ok-\\d+", bad]})
        assert info.value.option == option and info.value.value == bad
        assert repr(bad) in str(info.value)


class TestHeaders:
    def test_capitalised_mapping_works_over_grpc(
        self, otlp_grpc: OtlpGrpcReceiver, configure: Callable[..., flowtel.Telemetry]
    ) -> None:
        """``{"Authorization": ...}`` is lower-cased, so gRPC accepts it and spans arrive."""
        telemetry = configure(
            exporter="otlp",
            otlp_endpoint=otlp_grpc.endpoint,
            otlp_headers={"Authorization": "Bearer hdr-secret-123", "X-Tenant": "acme"},
        )
        with flowtel.span("with-headers"):
            pass
        assert telemetry.force_flush(timeout_s=10.0)
        otlp_grpc.wait_for_spans(1)
        headers = otlp_grpc.headers(Signal.TRACES)[-1]
        assert headers["authorization"] == "Bearer hdr-secret-123"
        assert headers["x-tenant"] == "acme"

    @pytest.mark.parametrize(
        "headers, shown",
        [
            ({"X Bad": "s3cr3t-value"}, "'X Bad'"),
            ({"Authorization": "Bearer s3cr3t-value\nX-Evil: 1"}, "'Authorization'"),
            ({"Authorization": "s3cr3t-value", "authorization": "s3cr3t-value"}, "twice"),
            ("authorization=s3cr3t-value,broken", "'broken'"),
        ],
    )
    def test_invalid_headers_show_the_name_never_the_value(
        self, headers: object, shown: str, configure: Callable[..., flowtel.Telemetry]
    ) -> None:
        """A bad name or value fails at configure time; the message never has the value."""
        with pytest.raises(flowtel.ConfigurationError) as info:
            configure(exporter="otlp", otlp_endpoint="http://127.0.0.1:4317", otlp_headers=headers)
        assert info.value.option == "otlp_headers"
        assert shown in str(info.value) and "s3cr3t" not in str(info.value)


class TestEndpoints:
    @pytest.mark.parametrize(
        "endpoint",
        [
            "http://user:s3cr3t-pw@collector:99999",
            "ftp://user:s3cr3t-pw@collector:4317",
            "http://user:s3cr3t pw@collector:4317",
        ],
    )
    def test_malformed_endpoint_masks_the_password(
        self, endpoint: str, configure: Callable[..., flowtel.Telemetry]
    ) -> None:
        """The error names the option and shows the URL with ``***`` for the password."""
        with pytest.raises(flowtel.ConfigurationError) as info:
            configure(exporter="otlp", otlp_endpoint=endpoint)
        assert info.value.option == "otlp_endpoint"
        assert "user:***@collector" in str(info.value) and "s3cr3t" not in str(info.value)
