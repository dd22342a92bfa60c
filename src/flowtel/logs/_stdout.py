"""What flowtel's logging prints on stdout: JSON or console lines, by handlers that never block.

Loaded only when ``json_logs=True`` or the console exporter is used (or when an application uses
the formatters itself): a service exporting over OTLP never pays for it at start.

* :class:`JsonFormatter`: one JSON object per line, for container log collectors.
* :class:`ConsoleFormatter`: one readable line per record, for local development.
* :class:`ConsoleLogHandler` prints through the console span processor, so a record appears
  under the span that was current, in order with the span lines.
* :class:`WriterHandler` prints formatted lines (JSON) through a :class:`ConsoleWriter`, so a
  stdout nobody reads never blocks the application.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from opentelemetry import trace

from flowtel import semconv
from flowtel._core._scrub import current_scrubber
from flowtel.logs._bridge import (
    exception_fields,
    extra_fields,
    json_value,
    message_of,
    record_span_context,
)

if TYPE_CHECKING:
    from flowtel._export._console import ConsoleSpanProcessor
    from flowtel._export._console_writer import ConsoleWriter

__all__ = [
    "ConsoleFormatter",
    "ConsoleLogHandler",
    "JsonFormatter",
    "WriterHandler",
    "stdout_handler",
    "trace_ids",
]


def trace_ids(record: logging.LogRecord) -> tuple[str | None, str | None]:
    """(trace_id, span_id) of a record: stamped by the filter, else the current span."""
    trace_id = record.__dict__.get("trace_id")
    span_id = record.__dict__.get("span_id")
    if isinstance(trace_id, str) and isinstance(span_id, str):
        return trace_id or None, span_id or None
    ctx = record_span_context(record)
    if not ctx.is_valid:
        return None, None
    return trace.format_trace_id(ctx.trace_id), trace.format_span_id(ctx.span_id)


def _iso_utc(created: float) -> str:
    return datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for container stdout collected by Loki/Fluent Bit.

    Keys, in order: ``timestamp`` (UTC, ms), ``level``, ``logger``, ``message``, ``trace_id``,
    ``span_id``, ``service.name``, then the record's ``extra`` fields and, for records with
    ``exc_info``, ``exception.type/message/stacktrace``. The message, extras and exception are
    scrubbed like span attributes. A newline inside a message is escaped, so one record is
    always one line.

    Args:
        service_name: value of the ``service.name`` key (omitted when ``None``).
    """

    def __init__(self, service_name: str | None = None) -> None:
        super().__init__()
        self.service_name = service_name

    def format(self, record: logging.LogRecord) -> str:
        """Render ``record`` as a single JSON line."""
        scrubber = current_scrubber()
        trace_id, span_id = trace_ids(record)
        doc: dict[str, Any] = {
            "timestamp": _iso_utc(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": scrubber.scrub_text(message_of(record)),
            "trace_id": trace_id,
            "span_id": span_id,
        }
        if self.service_name is not None:
            doc[semconv.SERVICE_NAME] = self.service_name
        for key, value in extra_fields(record).items():
            doc[f"extra.{key}" if key in doc else key] = json_value(key, value, scrubber)
        doc.update(exception_fields(record, scrubber))
        if record.stack_info:
            doc[semconv.CODE_STACKTRACE] = scrubber.scrub_text(record.stack_info)
        return json.dumps(doc, default=str, ensure_ascii=False)


class ConsoleFormatter(logging.Formatter):
    """Readable one-line format for local development with the console exporter.

    ``12:00:01.234 INFO  orders.api: order placed order_id=42 [trace 4bf92f35]``: the trace id
    is cut to its first 8 hex digits, enough to match the console span output by eye.
    Exceptions follow on the next lines. Scrubbed like every other output.

    Args:
        trace_suffix: append ``[trace …]`` (off when the console prints the record under its
            span already).
    """

    def __init__(self, trace_suffix: bool = True) -> None:
        super().__init__()
        self.trace_suffix = trace_suffix

    def format(self, record: logging.LogRecord) -> str:
        """Render ``record`` as one line (plus a traceback when there is one)."""
        scrubber = current_scrubber()
        clock = datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
        line = (
            f"{clock}.{int(record.msecs):03d} {record.levelname:<5} {record.name}: "
            f"{scrubber.scrub_text(message_of(record))}"
        )
        for key, value in extra_fields(record).items():
            line += f" {key}={json_value(key, value, scrubber)}"
        trace_id, _ = trace_ids(record)
        if trace_id and self.trace_suffix:
            line += f" [trace {trace_id[:8]}]"
        exc = exception_fields(record, scrubber)
        if exc:
            line += "\n" + exc[semconv.EXCEPTION_STACKTRACE].rstrip("\n")
        return line


class ConsoleLogHandler(logging.Handler):
    """Prints formatted records through the console span processor (never blocks)."""

    def __init__(self, console: ConsoleSpanProcessor, level: int = logging.NOTSET) -> None:
        super().__init__(level)
        self.console = console

    def emit(self, record: logging.LogRecord) -> None:
        """Format ``record`` and hand it to the console, under its span."""
        try:
            self.console.write_log(self.format(record), record_span_context(record))
        except Exception:
            self.handleError(record)


class WriterHandler(logging.Handler):
    """Writes one formatted line per record through a non-blocking :class:`ConsoleWriter`."""

    def __init__(self, writer: ConsoleWriter, level: int = logging.NOTSET) -> None:
        super().__init__(level)
        self.writer = writer

    def emit(self, record: logging.LogRecord) -> None:
        """Format ``record`` and queue it (dropped and counted if the stream is stuck)."""
        try:
            self.writer.write(self.format(record) + "\n")
        except Exception:
            self.handleError(record)

    def flush(self) -> None:
        """Wait (at most 1 s) until what is queued is written."""
        self.writer.flush(1.0)

    def close(self) -> None:
        """Write out what is queued (bounded), then stop the writer."""
        self.writer.close(1.0)
        super().close()


def stdout_handler(json_logs: bool, level: int, service_name: str | None) -> logging.Handler:
    """What prints records on stdout without ever blocking the application.

    With the console exporter, records go through the console (under their span, in order with
    the span lines); JSON lines go through a writer thread of their own.
    """
    from flowtel._export._console import active_console
    from flowtel._export._console_writer import ConsoleWriter

    console = None if json_logs else active_console()
    if console is not None:
        handler: logging.Handler = ConsoleLogHandler(console, level)
        handler.setFormatter(ConsoleFormatter(trace_suffix=False))
        return handler
    handler = WriterHandler(ConsoleWriter(sys.stdout), level)
    handler.setFormatter(JsonFormatter(service_name) if json_logs else ConsoleFormatter())
    return handler
