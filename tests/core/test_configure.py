"""configure_telemetry(): precedence, validation, idempotence, disabled mode, lazy imports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import flowtel
from flowtel import ConfigurationError


def run_python(code: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter with a clean OTEL_* environment plus ``env``."""
    base = {
        k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "FLOWTEL_", "SENTRY_"))
    }
    base.update(env or {})
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=base,
        capture_output=True,
        text=True,
        timeout=60,
    )


SHOW_SETTINGS = """
import json, flowtel
t = flowtel.configure_telemetry(logging=False, **KW)
s = t.settings
print(json.dumps({
    "service_name": s.service_name, "exporter": s.exporter, "sample_rate": s.sample_rate,
    "parent_based": s.parent_based, "protocol": s.otlp["traces"].protocol,
    "endpoint": s.otlp["traces"].endpoint, "metrics_endpoint": s.otlp["metrics"].endpoint,
    "headers": dict(s.otlp["traces"].headers), "resource": dict(s.resource_attributes),
    "propagators": list(s.propagators), "queue": s.batch_max_queue_size,
    "delay_s": s.batch_schedule_delay_s, "sdk_disabled": s.sdk_disabled,
}))
"""


def settings_from(env: dict[str, str], **kw: object) -> dict[str, object]:
    result = run_python(SHOW_SETTINGS.replace("**KW", "**" + repr(kw)), env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


class TestPrecedence:
    def test_env_vars_are_honoured(self) -> None:
        """OTEL_* variables configure service name, endpoint, protocol, headers, sampler, BSP."""
        got = settings_from(
            {
                "OTEL_SERVICE_NAME": "from-env",
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318",
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
                "OTEL_EXPORTER_OTLP_HEADERS": "x-tenant=acme,authorization=Bearer%20abc",
                "OTEL_TRACES_SAMPLER": "traceidratio",
                "OTEL_TRACES_SAMPLER_ARG": "0.25",
                "OTEL_RESOURCE_ATTRIBUTES": "team=core,deployment.environment.name=staging",
                "OTEL_PROPAGATORS": "tracecontext",
                "OTEL_BSP_MAX_QUEUE_SIZE": "4096",
                "OTEL_BSP_SCHEDULE_DELAY": "250",
            }
        )
        assert got["service_name"] == "from-env"
        assert got["exporter"] == "otlp"  # auto: an endpoint is configured
        assert got["protocol"] == "http/protobuf"
        assert got["endpoint"] == "http://collector:4318/v1/traces"
        assert got["metrics_endpoint"] == "http://collector:4318/v1/metrics"
        assert got["headers"] == {"x-tenant": "acme", "authorization": "Bearer abc"}
        assert got["sample_rate"] == 0.25 and got["parent_based"] is False
        resource = got["resource"]
        assert isinstance(resource, dict)
        assert resource["team"] == "core"
        assert resource["deployment.environment.name"] == "staging"
        assert resource["service.instance.id"]
        assert got["propagators"] == ["tracecontext"]
        assert got["queue"] == 4096 and got["delay_s"] == 0.25

    def test_keyword_beats_env(self) -> None:
        """A keyword argument wins over its environment variable."""
        got = settings_from(
            {"OTEL_SERVICE_NAME": "from-env", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"},
            service_name="from-kw",
            otlp_protocol="grpc",
            otlp_endpoint="http://127.0.0.1:4317",
            sample_rate=0.5,
        )
        assert got["service_name"] == "from-kw"
        assert got["protocol"] == "grpc"
        assert got["endpoint"] == "http://127.0.0.1:4317"
        assert got["sample_rate"] == 0.5 and got["parent_based"] is True

    def test_per_signal_endpoint_used_verbatim(self) -> None:
        """OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is used as-is, other signals use the base."""
        got = settings_from(
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://base:4318",
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://traces:9999/custom",
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            }
        )
        assert got["endpoint"] == "http://traces:9999/custom"
        assert got["metrics_endpoint"] == "http://base:4318/v1/metrics"

    def test_default_protocol_is_grpc(self) -> None:
        """Without a protocol option or variable, OTLP uses gRPC."""
        assert settings_from({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317"})["protocol"] == "grpc"

    def test_auto_is_console_without_endpoint(self) -> None:
        """exporter='auto' (default) falls back to the console without an OTLP endpoint."""
        assert settings_from({})["exporter"] == "console"

    def test_sdk_disabled_is_noop(self) -> None:
        """OTEL_SDK_DISABLED=true: configure returns a no-op handle, spans are non-recording."""
        result = run_python(
            """
            import flowtel
            from opentelemetry import trace
            t = flowtel.configure_telemetry()
            @flowtel.traced
            def f(): return trace.get_current_span().is_recording()
            print(t.enabled, f(), type(t.tracer_provider).__name__)
            """,
            {"OTEL_SDK_DISABLED": "true"},
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.split() == ["False", "False", "NoOpTracerProvider"]


BAD_KEYWORDS = [
    ("exporter", "zipkin", "'auto', 'otlp', 'console', 'none'"),
    ("sample_rate", 1.5, "between 0.0 and 1.0"),
    ("sample_rate", "lots", "a number"),
    ("otlp_endpoint", "localhost:4317", "http:// or https:// URL"),
    ("otlp_endpoint", "http://host:99999", "http:// or https:// URL"),
    ("otlp_protocol", "http/json", "'grpc', 'http/protobuf'"),
    ("otlp_headers", "novalue", "key1=value1"),
    ("otlp_headers", {"k": 1}, "mapping of str to str"),
    ("service_name", "", "non-empty string"),
    ("max_span_attributes", 0, "whole number >= 1"),
    ("batch_max_queue_size", "big", "whole number"),
    ("batch_schedule_delay_s", -1, "> 0"),
    ("metric_export_interval_s", 0, "> 0"),
    ("prometheus_port", 70000, "between 0 and 65535"),
    ("propagators", ["b3"], "'tracecontext', 'baggage', 'none'"),
    ("scrub", "maybe", "true or false"),
    ("scrub_patterns", ["(unclosed"], "valid regular expression"),
    ("error_window_minutes", -5, "whole number between 1 and 10080"),
    ("error_max_keys", 0, "whole number >= 1"),
    ("sentry_dsn", "not a dsn", "Sentry DSN"),
    ("sentry_sample_rate", 2, "between 0.0 and 1.0"),
    ("log_level", "LOUD", "DEBUG, INFO"),
    ("json_logs", "sometimes", "true or false"),
    ("shutdown_timeout_s", 0, "> 0"),
    ("drain_s", -1, ">= 0"),
    ("error_rate_windows_minutes", [0], "a number between 0"),
    ("error_duration_histogram", "often", "true or false"),
    ("sentry_trace_url_template", "https://g/{span}", "{trace_id}"),
    ("span_exporters", "memory", "list of OpenTelemetry SDK objects"),
]


class TestValidation:
    @pytest.mark.parametrize(("option", "value", "accepted"), BAD_KEYWORDS)
    def test_bad_keyword_fails_fast(self, option: str, value: object, accepted: str) -> None:
        """A bad keyword raises ConfigurationError naming option, value and what is accepted."""
        with pytest.raises(ConfigurationError) as info:
            flowtel.configure_telemetry(**{option: value}, force=True)  # type: ignore[arg-type]
        message = str(info.value)
        assert info.value.option == option
        assert message.startswith(f"{option}: invalid value ")
        assert accepted in message
        assert isinstance(info.value, ValueError)

    def test_batch_larger_than_queue_rejected(self) -> None:
        """An export batch larger than the queue is rejected."""
        with pytest.raises(ConfigurationError, match="batch_max_export_batch_size"):
            flowtel.configure_telemetry(
                batch_max_queue_size=10, batch_max_export_batch_size=20, force=True
            )

    @pytest.mark.parametrize(
        ("env", "value"),
        [
            ("OTEL_BSP_MAX_QUEUE_SIZE", "lots"),
            ("OTEL_BSP_SCHEDULE_DELAY", "soon"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "ten"),
            ("OTEL_EXPORTER_OTLP_INSECURE", "perhaps"),
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "zstd"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4317"),
            ("OTEL_TRACES_SAMPLER", "sometimes"),
            ("OTEL_TRACES_SAMPLER_ARG", "half"),
            ("OTEL_METRIC_EXPORT_INTERVAL", "-3"),
            ("OTEL_RESOURCE_ATTRIBUTES", "novalue"),
            ("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "many"),
            ("FLOWTEL_PROMETHEUS_PORT", "http"),
        ],
    )
    def test_bad_env_var_names_the_variable(self, env: str, value: str) -> None:
        """A malformed environment variable fails fast and the message names the variable."""
        extra = {"OTEL_TRACES_SAMPLER": "traceidratio"} if env == "OTEL_TRACES_SAMPLER_ARG" else {}
        result = run_python(
            """
            import flowtel
            try:
                flowtel.configure_telemetry()
            except flowtel.ConfigurationError as exc:
                print("ERR", exc)
            """,
            {env: value, **extra},
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith(f"ERR {env}: invalid value {value!r}"), result.stdout

    def test_header_values_never_echoed(self) -> None:
        """Malformed headers are reported without echoing their (secret) values."""
        with pytest.raises(ConfigurationError) as info:
            flowtel.configure_telemetry(
                otlp_headers="authorization=Bearer s3cr3t,broken", force=True
            )
        assert "s3cr3t" not in str(info.value)

    def test_nothing_installed_on_bad_config(self) -> None:
        """A failed configure leaves the previous configuration in place."""
        exporter = InMemorySpanExporter()
        good = flowtel.configure_telemetry(
            exporter="none", span_exporters=[exporter], logging=False, force=True
        )
        with pytest.raises(ConfigurationError):
            flowtel.configure_telemetry(sample_rate=3, force=True)
        with flowtel.span("still-works"):
            pass
        assert [s.name for s in exporter.get_finished_spans()] == ["still-works"]
        good.shutdown()


class TestIdempotence:
    def test_second_call_warns_and_returns_same_handle(self) -> None:
        """A second configure without force warns and returns the existing handle."""
        first = flowtel.configure_telemetry(exporter="none", logging=False, force=True)
        with pytest.warns(RuntimeWarning, match="already called"):
            second = flowtel.configure_telemetry(exporter="console")
        assert second is first
        first.shutdown()

    def test_force_replaces_pipelines_and_globals(self) -> None:
        """force=True installs new providers as the OTel globals; spans go to the new one."""
        a, b = InMemorySpanExporter(), InMemorySpanExporter()
        first = flowtel.configure_telemetry(exporter="none", span_exporters=[a], force=True)
        early = trace.get_tracer("bound-before-the-swap")
        second = flowtel.configure_telemetry(exporter="none", span_exporters=[b], force=True)
        assert second is not first
        global_provider = trace.get_tracer_provider()
        assert getattr(global_provider, "target", None) is second.tracer_provider
        with trace.get_tracer("x").start_as_current_span("raw"):
            pass
        with early.start_as_current_span("early"):
            pass  # a tracer obtained before the swap follows it
        with flowtel.span("ours"):
            pass
        assert a.get_finished_spans() == ()
        assert [s.name for s in b.get_finished_spans()] == ["raw", "early", "ours"]
        second.shutdown()

    def test_shutdown_is_idempotent_and_bounded(self) -> None:
        """shutdown() twice is fine and returns True when pipelines stop in time."""
        telemetry = flowtel.configure_telemetry(exporter="none", force=True)
        assert telemetry.shutdown(timeout_s=5) is True
        assert telemetry.shutdown(timeout_s=5) is True


class TestImports:
    def test_import_is_light(self) -> None:
        """import flowtel and a console configure import no optional or transport module."""
        result = run_python(
            """
            import sys, flowtel
            flowtel.configure_telemetry(exporter="console")
            heavy = [m for m in ("sentry_sdk", "fastapi", "starlette", "grpc", "requests",
                     "prometheus_client", "tenacity", "opentelemetry.exporter.otlp.proto.grpc",
                     "opentelemetry.exporter.otlp.proto.http") if m in sys.modules]
            print(heavy)
            """
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "[]"

    def test_otlp_http_does_not_import_grpc(self) -> None:
        """An OTLP/HTTP configuration imports no gRPC."""
        result = run_python(
            """
            import sys, flowtel
            flowtel.configure_telemetry(exporter="otlp", otlp_endpoint="http://127.0.0.1:9",
                                        otlp_protocol="http/protobuf")
            print("grpc" in sys.modules)
            """
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "False"


class TestDocs:
    def test_every_keyword_documented(self) -> None:
        """docs/configuration.md has a row for every configure_telemetry() keyword."""
        import inspect
        from pathlib import Path

        doc = (Path(__file__).parents[2] / "docs" / "configuration.md").read_text()
        for name in inspect.signature(flowtel.configure_telemetry).parameters:
            assert f"| `{name}` |" in doc, name


def test_otlp_headers_never_appear_in_a_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings end up in logs and tracebacks: header values (credentials) are redacted."""
    from flowtel._core import _settings as _config
    from flowtel._core._options import Options

    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer%20s3cr3t-token")
    settings = _config.resolve(Options(service_name="repr", exporter="otlp"))
    assert settings.otlp["traces"].headers["authorization"] == "Bearer s3cr3t-token"
    for text in (repr(settings), repr(settings.otlp["traces"]), str(settings)):
        assert "s3cr3t" not in text
    assert "authorization" in repr(settings.otlp["traces"])


def test_sentry_dsn_key_never_appears_in_a_repr() -> None:
    """The DSN's key is a credential: the settings' repr masks it, the value keeps it."""
    from flowtel._core import _settings as _config
    from flowtel._core._options import Options

    dsn = "https://k3y0f4dsn@o1.ingest.sentry.io/42"
    settings = _config.resolve(Options(service_name="repr", exporter="none", sentry_dsn=dsn))
    assert settings.sentry_dsn == dsn
    assert "k3y0f4dsn" not in repr(settings)
    assert "sentry_dsn='https://***@o1.ingest.sentry.io/42'" in repr(settings)


PROPAGATION = """
import sys, flowtel
t = flowtel.configure_telemetry(service_name="p", exporter="none", logging=False, **KW)
print("imported" if "opentelemetry.propagate" in sys.modules else "lazy")
from opentelemetry import propagate
carrier = {}
with flowtel.span("outgoing"):
    from opentelemetry import baggage, context
    token = context.attach(baggage.set_baggage("tenant", "acme"))
    propagate.inject(carrier)
    context.detach(token)
print(sorted(carrier))
"""


@pytest.mark.parametrize(
    ("kw", "env", "first", "headers"),
    [
        ("{}", {}, "lazy", "['baggage', 'traceparent']"),
        ("{'propagators': ['tracecontext']}", {}, "imported", "['traceparent']"),
        ("{}", {"OTEL_PROPAGATORS": "tracecontext"}, "imported", "['traceparent']"),
        (
            "{'propagators': ['tracecontext', 'baggage']}",
            {"OTEL_PROPAGATORS": "baggage"},
            "imported",
            "['baggage', 'traceparent']",
        ),
    ],
)
def test_default_propagation_needs_no_import(
    kw: str, env: dict[str, str], first: str, headers: str
) -> None:
    """W3C tracecontext + baggage by default without importing opentelemetry.propagate at start
    (the API builds that composite itself); anything else is installed explicitly."""
    out = run_python(PROPAGATION.replace("**KW", f"**{kw}"), env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:2] == [first, headers]


def test_a_misspelt_keyword_names_the_closest_and_the_accepted() -> None:
    """A typo in a keyword gets a TypeError with the likely intended name and the full list."""
    with pytest.raises(TypeError, match=r"'servce_name'; did you mean 'service_name'\?") as info:
        flowtel.configure_telemetry(servce_name="x", force=True)  # type: ignore[call-arg]
    assert "sample_rate" in str(info.value)
