"""Export-boundary scrubbing: secrets from any API are removed; clean data is left untouched."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

from flowtel._core import _scrub as _scrub
from flowtel._core._scrub import REDACTED, Scrubber
from flowtel._export._scrub import scrub_log_records, scrub_span, scrub_spans


@pytest.fixture
def finished() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, exporter
    provider.shutdown()


def _one(finished: tuple[TracerProvider, InMemorySpanExporter]) -> ReadableSpan:
    [span] = finished[1].get_finished_spans()
    return span


class TestScrubSpan:
    """Spans are scrubbed in name, attributes, events and status; clean spans are not copied."""

    def test_clean_span_is_returned_as_is(
        self, finished: tuple[TracerProvider, InMemorySpanExporter]
    ) -> None:
        """A span without secrets is passed through without a copy."""
        provider, _ = finished
        with provider.get_tracer("t").start_as_current_span("clean", attributes={"n": 1}):
            pass
        span = _one(finished)
        assert scrub_span(span) is span
        assert scrub_spans([span])[0] is span

    def test_every_field_is_scrubbed(
        self, finished: tuple[TracerProvider, InMemorySpanExporter]
    ) -> None:
        """Name, attribute by key and by value, event attributes and status are redacted."""
        provider, _ = finished
        with provider.get_tracer("t").start_as_current_span("GET /x?token=abcdef123456") as s:
            s.set_attribute("password", "hunter2")
            s.set_attribute("dsn", "postgres://u:pw123456@db/x")
            s.set_attribute("tags", ["Bearer abcdefghijkl", "ok"])
            s.add_event("call", {"detail": "api_key=zzzzzzzzzz"})
            s.set_status(Status(StatusCode.ERROR, "Authorization: Basic dXNlcjpwdw=="))
        span = _one(finished)
        clean = scrub_span(span)
        assert clean is not span
        assert "abcdef123456" not in clean.name
        assert clean.attributes is not None
        assert clean.attributes["password"] == REDACTED
        assert "pw123456" not in str(clean.attributes["dsn"])
        assert clean.attributes["tags"] == (f"Bearer {REDACTED}", "ok")
        assert "zzzzzzzzzz" not in str(clean.events[0].attributes)
        assert "dXNlcjpwdw" not in (clean.status.description or "")
        assert clean.status.status_code is StatusCode.ERROR
        assert clean.context == span.context
        assert (clean.start_time, clean.end_time) == (span.start_time, span.end_time)

    def test_disabled_scrubber_passes_through(
        self, finished: tuple[TracerProvider, InMemorySpanExporter]
    ) -> None:
        """With scrubbing opted out, spans are exported unchanged."""
        provider, _ = finished
        with provider.get_tracer("t").start_as_current_span("s", attributes={"password": "x"}):
            pass
        span = _one(finished)
        assert scrub_span(span, Scrubber(enabled=False)) is span


class TestScrubLogs:
    """Log bodies and attributes are scrubbed; clean batches are returned unchanged."""

    def test_body_and_attributes(self) -> None:
        """A secret in the body text, a body mapping and an attribute are all redacted."""
        sink = InMemoryLogRecordExporter()
        provider = LoggerProvider()
        provider.add_log_record_processor(SimpleLogRecordProcessor(sink))
        logger = provider.get_logger("t")
        logger.emit(body="login password=hunter2x", attributes={"api_key": "k123"})
        logger.emit(body={"user": "ann", "secret": "s3"}, attributes={"n": 1})
        logger.emit(body="all good")
        records = sink.get_finished_logs()
        clean = scrub_log_records(records)
        assert "hunter2x" not in str(clean[0].log_record.body)
        assert clean[0].log_record.attributes == {"api_key": REDACTED}
        assert clean[1].log_record.body == {"user": "ann", "secret": REDACTED}
        assert clean[2] is records[2]
        assert records[0].log_record.body == "login password=hunter2x"  # originals untouched
        provider.shutdown()

    def test_clean_batch_is_same_object(self) -> None:
        """Without secrets the very same sequence is returned (no copies)."""
        sink = InMemoryLogRecordExporter()
        provider = LoggerProvider()
        provider.add_log_record_processor(SimpleLogRecordProcessor(sink))
        provider.get_logger("t").emit(body="fine", attributes={"n": 1})
        records = sink.get_finished_logs()
        assert scrub_log_records(records) is records
        provider.shutdown()


def test_uses_the_installed_scrubber(monkeypatch: pytest.MonkeyPatch) -> None:
    """Extra patterns configured at configure_telemetry() time apply at export too."""
    monkeypatch.setattr(_scrub, "_current", Scrubber(extra_value_patterns=[r"EMP-\d{6}"]))
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    provider.get_tracer("t").start_span("employee EMP-123456").end()
    [span] = scrub_spans(exporter.get_finished_spans())
    assert span.name == f"employee {REDACTED}"
    provider.shutdown()


def test_reconfigured_scrubber_is_not_served_stale_results(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A value cached as clean under old patterns is re-scrubbed under new ones."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    provider.get_tracer("t").start_span("ticket TCK-9999").end()
    [span] = exporter.get_finished_spans()
    monkeypatch.setattr(_scrub, "_current", Scrubber())
    assert scrub_spans([span])[0].name == "ticket TCK-9999"
    monkeypatch.setattr(_scrub, "_current", Scrubber(extra_value_patterns=[r"TCK-\d+"]))
    assert scrub_spans([span])[0].name == f"ticket {REDACTED}"
    provider.shutdown()
