"""The bridge through ``configure_telemetry(sentry_dsn=...)`` with ``@traced`` functions."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import flowtel
from flowtel import semconv
from tests.sentry.test_install import run_python
from tests.support.sentry_server import SentryServer


class StockError(Exception):
    """Raised by the traced functions under test."""


@flowtel.traced
def reserve(sku: str) -> None:
    raise StockError(f"out of stock: {sku}, token=tok_9f8e7d6c5b4a")


@flowtel.traced
def place_order(sku: str) -> None:
    reserve(sku)


@flowtel.traced
def checkout(sku: str) -> None:
    place_order(sku)


class Configured:
    """A configured flowtel with in-memory spans and metrics."""

    def __init__(self, dsn: str, **options: Any) -> None:
        self.spans = InMemorySpanExporter()
        self.metrics = InMemoryMetricReader()
        self.telemetry = flowtel.configure_telemetry(
            service_name="shop",
            service_version="2.0.1",
            environment="prod",
            exporter="none",
            span_exporters=[self.spans],
            metric_readers=[self.metrics],
            logging=False,
            sentry_dsn=dsn,
            force=True,
            **options,
        )

    def finished(self, name_suffix: str) -> Any:
        [span] = [s for s in self.spans.get_finished_spans() if s.name.endswith(name_suffix)]
        return span

    def sentry_points(self) -> dict[tuple[str, str | None], int]:
        out: dict[tuple[str, str | None], int] = {}
        data = self.metrics.get_metrics_data()
        for rm in data.resource_metrics if data else ():
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    if metric.name == semconv.METRIC_SENTRY_EVENTS:
                        for p in metric.data.data_points:
                            attrs = p.attributes or {}
                            reason = attrs.get(semconv.SENTRY_REASON)
                            why = None if reason is None else str(reason)
                            key = (str(attrs[semconv.SENTRY_OUTCOME]), why)
                            out[key] = int(p.value)  # type: ignore[union-attr]
        return out


@pytest.fixture
def configured(sentry_server: SentryServer) -> Iterator[Configured]:
    setup = Configured(sentry_server.dsn)
    yield setup
    setup.telemetry.shutdown()


class TestConfigureTelemetry:
    def test_traced_exception_through_three_functions_is_one_event(
        self, configured: Configured, sentry_server: SentryServer
    ) -> None:
        """@traced nesting: one event, on the innermost span, with the exported span's ids."""
        with pytest.raises(StockError):
            checkout("sku-1")
        assert configured.telemetry.force_flush(5)

        [event] = sentry_server.wait_for_events(1)
        inner = configured.finished("reserve")
        assert event["contexts"]["trace"]["trace_id"] == trace.format_trace_id(
            inner.context.trace_id
        )
        assert event["contexts"]["trace"]["span_id"] == trace.format_span_id(inner.context.span_id)
        assert event["tags"]["service"] == "shop"
        assert event["tags"]["environment"] == "prod"
        assert event["release"] == "2.0.1"
        assert event["exception"]["values"][-1]["value"] == (
            "out of stock: sku-1, token=[REDACTED]"
        )
        last = event["exception"]["values"][-1]["stacktrace"]["frames"][-1]
        # Built from the live exception (parsed frames carry no module or source context).
        assert (last["function"], last["module"]) == ("reserve", __name__)
        assert "pre_context" in last
        assert configured.sentry_points() == {("sent", None): 1, ("dropped", "duplicate"): 2}

    def test_sentry_dsn_env_var_is_honoured(
        self, sentry_server: SentryServer, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """SENTRY_DSN alone switches the bridge on."""
        monkeypatch.setenv("SENTRY_DSN", sentry_server.dsn)
        telemetry = flowtel.configure_telemetry(
            service_name="env-dsn", exporter="none", logging=False, force=True
        )
        try:
            with pytest.raises(StockError):
                reserve("sku-env")
            assert telemetry.force_flush(5)
            [event] = sentry_server.wait_for_events(1)
            assert event["tags"]["service"] == "env-dsn"
        finally:
            telemetry.shutdown()

    def test_shutdown_sends_what_is_queued(self, sentry_server: SentryServer) -> None:
        """Telemetry.shutdown() delivers events still queued, without an explicit flush."""
        setup = Configured(sentry_server.dsn)
        with pytest.raises(StockError):
            reserve("sku-late")
        assert setup.telemetry.shutdown()
        assert len(sentry_server.wait_for_events(1)) == 1

    def test_shutdown_unbinds_the_client(self, sentry_server: SentryServer) -> None:
        """After shutdown no closed Sentry client stays bound to run before_send on every log."""
        import sentry_sdk

        setup = Configured(sentry_server.dsn)
        client = sentry_sdk.get_client()
        assert client.is_active()
        assert setup.telemetry.shutdown()
        assert sentry_sdk.get_client() is not client


class TestWithoutSentry:
    def test_no_dsn_never_imports_sentry_sdk(self) -> None:
        """configure_telemetry() without a DSN, and a failing @traced call, leave sentry_sdk out."""
        result = run_python(
            """
            import sys
            import flowtel

            @flowtel.traced
            def fail():
                raise ValueError("x")

            telemetry = flowtel.configure_telemetry(
                service_name="no-sentry", exporter="none", logging=False)
            try:
                fail()
            except ValueError:
                pass
            telemetry.shutdown()
            print("sentry_sdk" in sys.modules)
            """
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "False"

    def test_dsn_without_sentry_sdk_warns_once_and_runs_on(self) -> None:
        """A DSN with sentry-sdk missing: one clear warning, the app keeps working."""
        result = run_python(
            """
            import sys
            sys.modules["sentry_sdk"] = None  # as if sentry-sdk were not installed
            import flowtel

            @flowtel.traced
            def fail():
                raise ValueError("x")

            telemetry = flowtel.configure_telemetry(
                service_name="no-sdk", exporter="none", logging=False,
                sentry_dsn="http://public@127.0.0.1:9/1")
            for _ in range(3):
                try:
                    fail()
                except ValueError:
                    pass
            print("ok", telemetry.shutdown())
            """
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "ok True"
        assert result.stderr.count("sentry-sdk is not installed") == 1
        assert "pip install 'flowtel[sentry]'" in result.stderr
