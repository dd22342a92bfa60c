"""The fast record path exports exactly what the SDK's public path exports.

The bridge hands the SDK records whose attributes it built clean, instead of letting the SDK
clean each one again (``flowtel._core._compat.preset_log_record``). Each test logs the same
records twice, once on the fast path and once with the shortcut refused, and compares what the
exporter received. CI runs this on the oldest and the newest SDK release admitted.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.trace import TracerProvider

from flowtel._core import _compat
from flowtel.logs import instrument_logging, uninstrument_logging

log = logging.getLogger("app.fastpath")
tracer = TracerProvider().get_tracer("tests")


def _log_everything() -> None:
    """One of each kind of record the bridge builds, inside a span and outside one."""
    with tracer.start_as_current_span("op"):
        log.info("order %s placed for %s", 1234, "alice", extra={"order_id": 7, "ok": True})
        log.warning("ratio", extra={"ratio": 0.5, "tags": ["a", "b"], "nums": (1, 2)})
        log.info("mapping", extra={"payload": {"k": "v"}, "nothing": None, "obj": object})
        try:
            raise KeyError("missing-key")
        except KeyError:
            log.exception("lookup failed", extra={"password": "hunter2"})
    log.error("outside any span", stack_info=True)
    log.info("", extra={"": "empty key"})


def _exported(monkeypatch: pytest.MonkeyPatch, fast: bool) -> list[dict[str, Any]]:
    if not fast:
        monkeypatch.setattr(_compat, "preset_log_records_ok", lambda: False)
    exporter = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]
    provider = LoggerProvider(shutdown_on_exit=False)
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    instrument_logging(provider)
    try:
        _log_everything()
    finally:
        uninstrument_logging()
        monkeypatch.undo()
    out = []
    for readable in exporter.get_finished_logs():
        record = readable.log_record
        attributes = dict(record.attributes or {})
        attributes.pop("code.line.number", None)  # both runs log from the same lines
        if "code.stacktrace" in attributes:  # the callers differ between the two runs
            attributes["code.stacktrace"] = str(attributes["code.stacktrace"]).splitlines()[0]
        out.append(
            {
                "body": record.body,
                "severity": (record.severity_number, record.severity_text),
                "sampled": bool(record.trace_flags and record.trace_flags.sampled),
                "has_trace": bool(record.trace_id),
                "attributes": list(attributes.items()),
                "dropped": readable.dropped_attributes,
                "scope": readable.instrumentation_scope,
                "resource": readable.resource.attributes,
            }
        )
    return out


@pytest.fixture(autouse=True)
def _root_at_info() -> Iterator[None]:
    root = logging.getLogger()
    level = root.level
    yield
    root.setLevel(level)


@pytest.mark.filterwarnings("ignore::opentelemetry.sdk._logs.LogRecordDroppedAttributesWarning")
class TestSamePathResult:
    def test_the_shortcut_is_in_use_on_this_sdk(self) -> None:
        """On a supported SDK the probe passes: the fast path is used, not silently off."""
        assert _compat.preset_log_records_ok()

    def test_fast_and_public_path_export_the_same(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Bodies, severities, trace context, attributes (in order), drops, scope and resource
        are identical with and without the shortcut; secrets are scrubbed on both."""
        fast = _exported(monkeypatch, fast=True)
        public = _exported(monkeypatch, fast=False)
        assert len(fast) == 6
        assert fast == public
        first = dict(fast[0]["attributes"])
        assert fast[0]["body"] == "order 1234 placed for alice" and fast[0]["has_trace"]
        assert first["order_id"] == 7 and first["logger.name"] == "app.fastpath"
        assert dict(fast[1]["attributes"])["tags"] == ("a", "b")  # the SDK's tuple, both paths
        assert dict(fast[3]["attributes"])["password"] == "[REDACTED]"
        assert not fast[4]["has_trace"]

    def test_limits_of_the_provider_apply(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Count and length limits (from the environment, as the SDK reads them) cut the record
        exactly as the SDK's own cleaning does."""
        monkeypatch.setenv("OTEL_ATTRIBUTE_COUNT_LIMIT", "5")
        monkeypatch.setenv("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "6")
        fast = _exported(monkeypatch, fast=True)
        monkeypatch.setenv("OTEL_ATTRIBUTE_COUNT_LIMIT", "5")
        monkeypatch.setenv("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "6")
        public = _exported(monkeypatch, fast=False)
        assert fast == public
        assert all(len(r["attributes"]) <= 5 for r in fast)
        failed = dict(fast[3]["attributes"])  # nine attributes: the oldest were dropped
        assert "exception.type" in failed and "logger.name" not in failed
        assert all(len(v) <= 6 for r in fast for _, v in r["attributes"] if type(v) is str)
