"""structlog routed through stdlib logging reaches the same flowtel handler (docs/logging.md)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from flowtel import semconv
from flowtel._core._scrub import REDACTED
from flowtel.logs import add_trace_context, current_span_id, current_trace_id
from tests.logs.conftest import Piped


def configure_structlog_via_stdlib() -> None:
    """The chain documented in docs/logging.md ("structlog")."""
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.filter_by_level,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.stdlib.render_to_log_kwargs,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )


@pytest.fixture
def via_stdlib() -> Iterator[None]:
    configure_structlog_via_stdlib()
    yield
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


@pytest.mark.usefixtures("via_stdlib")
class TestStructlogThroughStdlib:
    def test_event_context_and_trace_ids_exported(self, pipeline: Piped) -> None:
        """Bound and contextvars fields become attributes; the record carries the span ids."""
        pipe, capture = pipeline
        structlog.contextvars.bind_contextvars(request_id="r-1")
        slog = structlog.get_logger("app.slog").bind(order_id=42)
        with pipe.tracer.start_as_current_span("op") as span:
            slog.info("order placed", user="bob", password="hunter2")
        (got,) = capture.logs
        record = got.log_record
        attrs = dict(record.attributes or {})
        assert record.body == "order placed"
        assert record.trace_id == span.get_span_context().trace_id
        assert record.span_id == span.get_span_context().span_id
        assert attrs["order_id"] == 42 and attrs["user"] == "bob" and attrs["request_id"] == "r-1"
        assert attrs["password"] == REDACTED
        assert attrs[semconv.LOG_LOGGER] == "app.slog"
        assert attrs[semconv.CODE_FUNCTION] == "test_event_context_and_trace_ids_exported"

    def test_exception_carries_stack(self, pipeline: Piped) -> None:
        """slog.exception() exports exception type, message and stack trace."""
        _, capture = pipeline
        slog = structlog.get_logger("app.slog")
        try:
            raise ValueError("bad input")
        except ValueError:
            slog.exception("failed")
        attrs: dict[str, Any] = dict(capture.logs[0].log_record.attributes or {})
        assert attrs[semconv.EXCEPTION_TYPE] == "ValueError"
        assert "raise ValueError" in attrs[semconv.EXCEPTION_STACKTRACE]

    def test_below_level_dropped(self, pipeline: Piped) -> None:
        """structlog debug events are filtered at the stdlib level like any record."""
        _, capture = pipeline
        structlog.get_logger("app.slog").debug("noise")
        assert capture.logs == []


class TestStructlogStandalone:
    def test_add_trace_context_processor(self, pipeline: Piped) -> None:
        """add_trace_context puts the ids into structlog's own JSON output."""
        pipe, _ = pipeline
        out: list[str] = []
        structlog.configure(
            processors=[add_trace_context, structlog.processors.JSONRenderer()],
            logger_factory=structlog.ReturnLoggerFactory(),
            cache_logger_on_first_use=False,
        )
        try:
            slog = structlog.get_logger()
            with pipe.tracer.start_as_current_span("op"):
                out.append(slog.info("hi"))
                ids = current_trace_id(), current_span_id()
            out.append(slog.info("outside"))
        finally:
            structlog.reset_defaults()
        inside, outside = (json.loads(line) for line in out)
        assert (inside["trace_id"], inside["span_id"]) == ids
        assert "trace_id" not in outside
