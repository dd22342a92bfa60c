"""What a bridged Sentry event carries: OTel ids, tags, frames, mechanism; and no secrets."""

from __future__ import annotations

import logging
import re

import pytest
from opentelemetry import trace
from opentelemetry.util.types import AttributeValue

from flowtel import semconv
from flowtel.exceptions import ConfigurationError
from flowtel.sentry import SentryBridge
from tests.sentry.conftest import MakeRig
from tests.support.sentry_server import SentryServer

SECRETS = (
    "hunter2",
    "sk_live_51HxYzAbCdEfGhIjKlMn",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJlLXZhbHVl",
    "s3cr3t-db-pass",
    "AKIAIOSFODNN7EXAMPLE",
    "supersecretcookie",
)


class InventoryError(RuntimeError):
    """Raised by the functions under test."""


def reserve(sku: str) -> None:
    raise InventoryError(f"no stock for {sku}")


def connect(dsn: str, token: str) -> None:
    raise ConnectionError(f"cannot reach {dsn} with header Authorization: Bearer {token}")


class TestLinkToTrace:
    def test_trace_and_span_ids_equal_the_exported_otel_span(
        self, make_rig: MakeRig, sentry_server: SentryServer
    ) -> None:
        """contexts.trace ids are the exported span's ids, as 32/16 lowercase hex."""
        rig = make_rig()
        with pytest.raises(InventoryError), rig.tracer.start_as_current_span("parent"):  # noqa: SIM117
            with rig.tracer.start_as_current_span("reserve"):
                reserve("A-1")
        rig.flush()

        [event] = sentry_server.wait_for_events(1)
        span = rig.span("reserve")
        ctx = event["contexts"]["trace"]
        assert re.fullmatch(r"[0-9a-f]{32}", ctx["trace_id"])
        assert re.fullmatch(r"[0-9a-f]{16}", ctx["span_id"])
        assert ctx["trace_id"] == trace.format_trace_id(span.context.trace_id)
        assert ctx["span_id"] == trace.format_span_id(span.context.span_id)
        assert ctx["parent_span_id"] == trace.format_span_id(rig.span("parent").context.span_id)
        assert event["tags"]["trace_id"] == ctx["trace_id"]

    def test_tags_name_service_environment_component_operation(
        self, make_rig: MakeRig, sentry_server: SentryServer
    ) -> None:
        """Tags come from the resource and flowtel's component/operation attributes."""
        rig = make_rig()
        with (
            pytest.raises(InventoryError),
            rig.tracer.start_as_current_span(
                "inventory.reserve",
                attributes={semconv.COMPONENT: "inventory", semconv.OPERATION: "reserve"},
            ),
        ):
            reserve("B-2")
        rig.flush()

        [event] = sentry_server.wait_for_events(1)
        tags = ("service", "environment", "component", "operation")
        assert {k: event["tags"][k] for k in tags} == {
            "service": "checkout",
            "environment": "staging",
            "component": "inventory",
            "operation": "reserve",
        }
        assert event["environment"] == "staging"
        assert event["release"] == "1.4.2"
        assert event["transaction"] == "inventory.reserve"

    def test_trace_url_template_links_to_the_trace(
        self, make_rig: MakeRig, sentry_server: SentryServer
    ) -> None:
        """trace_url_template puts a ready link to the trace into contexts.otel.trace_url."""
        rig = make_rig(trace_url_template="https://grafana.example/trace/{trace_id}?span={span_id}")
        with pytest.raises(InventoryError), rig.tracer.start_as_current_span("reserve"):
            reserve("E-5")
        rig.flush()

        [event] = sentry_server.wait_for_events(1)
        ctx = event["contexts"]["trace"]
        assert event["contexts"]["otel"]["trace_url"] == (
            f"https://grafana.example/trace/{ctx['trace_id']}?span={ctx['span_id']}"
        )

    @pytest.mark.parametrize(
        "template", ["https://grafana.example/trace", "https://g/{trace}", "https://g/{trace_id"]
    )
    def test_bad_trace_url_template_is_a_configuration_error(self, template: str) -> None:
        """A template without {trace_id}, or with unknown fields, fails fast naming the option."""
        with pytest.raises(ConfigurationError, match="trace_url_template"):
            SentryBridge(trace_url_template=template)


class TestExceptionPayload:
    def test_escaping_exception_has_type_value_live_frames_and_unhandled_mechanism(
        self, make_rig: MakeRig, sentry_server: SentryServer
    ) -> None:
        """An escaping exception is unhandled and its frames come from the live traceback."""
        rig = make_rig()
        with pytest.raises(InventoryError), rig.tracer.start_as_current_span("reserve"):
            reserve("C-3")
        rig.flush()

        [event] = sentry_server.wait_for_events(1)
        [value] = event["exception"]["values"]
        assert value["type"] == "InventoryError"
        assert value["value"] == "no stock for C-3"
        assert value["mechanism"] == {"type": "flowtel", "handled": False}
        last = value["stacktrace"]["frames"][-1]
        assert (last["function"], last["abs_path"]) == ("reserve", __file__)
        assert last["context_line"].strip() == 'raise InventoryError(f"no stock for {sku}")'
        assert "vars" not in last

    def test_chained_exception_reports_the_cause_too(
        self, make_rig: MakeRig, sentry_server: SentryServer
    ) -> None:
        """`raise X from Y` sends both exceptions in one event, as sentry-sdk does."""
        rig = make_rig()
        with pytest.raises(ValueError), rig.tracer.start_as_current_span("load"):
            try:
                reserve("D-4")
            except InventoryError as exc:
                raise ValueError("order cannot be loaded") from exc
        rig.flush()

        [event] = sentry_server.wait_for_events(1)
        assert [v["type"] for v in event["exception"]["values"]] == [
            "InventoryError",
            "ValueError",
        ]


class TestScrubbing:
    def _fail_with_secrets(self, make_rig: MakeRig, *, send_default_pii: bool = False) -> None:
        rig = make_rig(send_default_pii=send_default_pii)
        attributes: dict[str, AttributeValue] = {
            "db.password": "hunter2",
            "payment.api_key": "sk_live_51HxYzAbCdEfGhIjKlMn",
            "db.connection_string": "postgresql://app:s3cr3t-db-pass@db:5432/shop",
            "http.request.header.authorization": (
                "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJlLXZhbHVl"
            ),
            "http.request.header.cookie": "session=supersecretcookie",
            "http.request.header.x-request-id": "req-77",
            "aws.key": "AKIAIOSFODNN7EXAMPLE",
            "order.id": 1234,
        }
        with (
            pytest.raises(ConnectionError),
            rig.tracer.start_as_current_span("connect", attributes=attributes),
        ):
            connect(
                "postgresql://app:s3cr3t-db-pass@db:5432/shop",
                "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJlLXZhbHVl",
            )
        rig.flush()

    def test_secrets_in_attributes_and_message_never_reach_sentry(
        self, make_rig: MakeRig, sentry_server: SentryServer
    ) -> None:
        """Passwords, API keys, bearer tokens and connection strings are absent from the wire."""
        self._fail_with_secrets(make_rig)
        [event] = sentry_server.wait_for_events(1)
        raw = b"".join(i.payload for i in sentry_server.items())
        for secret in SECRETS:
            assert secret.encode() not in raw, secret
        attrs = event["contexts"]["otel"]["attributes"]
        assert attrs["db.password"] == "[REDACTED]"
        assert attrs["order.id"] == 1234
        assert not any(k.startswith("http.request.header.") for k in attrs)
        message = event["exception"]["values"][-1]["value"]
        assert message.startswith("cannot reach postgresql://app:[REDACTED]@db:5432/shop")

    def test_headers_only_with_pii_opt_in_and_still_scrubbed(
        self, make_rig: MakeRig, sentry_server: SentryServer
    ) -> None:
        """sentry_send_default_pii=True adds header attributes, with secret values redacted."""
        self._fail_with_secrets(make_rig, send_default_pii=True)
        [event] = sentry_server.wait_for_events(1)
        raw = b"".join(i.payload for i in sentry_server.items())
        for secret in SECRETS:
            assert secret.encode() not in raw, secret
        attrs = event["contexts"]["otel"]["attributes"]
        assert attrs["http.request.header.x-request-id"] == "req-77"
        assert attrs["http.request.header.authorization"] == "[REDACTED]"

    def test_log_breadcrumbs_ride_along_scrubbed(
        self, make_rig: MakeRig, sentry_server: SentryServer
    ) -> None:
        """Log lines before the error arrive as breadcrumbs, with secrets redacted."""
        rig = make_rig()
        log = logging.getLogger("tests.sentry.breadcrumbs")
        log.setLevel(logging.INFO)
        with pytest.raises(InventoryError), rig.tracer.start_as_current_span("reserve"):
            log.info("connecting with password=hunter2 to the stock service")
            reserve("F-6")
        rig.flush()

        [event] = sentry_server.wait_for_events(1)
        messages = [c.get("message") for c in event["breadcrumbs"]["values"]]
        assert "connecting with password=[REDACTED] to the stock service" in messages
        raw = b"".join(i.payload for i in sentry_server.items())
        assert b"hunter2" not in raw
