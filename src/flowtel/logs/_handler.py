"""Trace-correlated logging: stdlib records become OpenTelemetry log records.

Services keep logging with :mod:`logging` (or structlog routed through it); flowtel adds one
handler to the root logger that turns each record into an OTel log record carrying the current
trace id and span id, so a log line in Loki links to its trace in Tempo. Nothing at the call
sites changes.

What :func:`install` sets up (``configure_telemetry(logging=True)`` calls it):

* one :class:`OTelLogHandler` on the root logger, at ``log_level`` (default ``INFO``);
* a :class:`TraceContextFilter` on every root handler already there and on flowtel's stdout
  handler, so ``%(trace_id)s`` / ``%(span_id)s`` work in any format string, third-party loggers
  included (the OTel handler reads the span itself and skips formatting the hex ids);
* with ``json_logs=True``, :class:`JsonFormatter` on stdout (one JSON object per line); with the
  console exporter, :class:`ConsoleFormatter` (short trace id) on stdout.

Installing twice replaces the first installation, so records are never exported twice.

Note: this module shares the standard library's name; ``import logging`` below is the stdlib
(absolute imports), and users import it as ``flowtel.logging``.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from collections.abc import Iterable, MutableMapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from opentelemetry import trace
from opentelemetry._logs import LoggerProvider

from flowtel import semconv
from flowtel._core._parse import parse_level
from flowtel._core._scrub import current_scrubber
from flowtel.logs._bridge import (
    DEFAULT_EXCLUDED_LOGGERS,
    SPAN_CONTEXT_ATTR,
    OTelLogHandler,
    exception_fields,
    extra_fields,
    json_value,
    message_of,
    record_span_context,
)
from flowtel.logs._quiet import ConsoleLogHandler, LibraryLevelFilter, WriterHandler

if TYPE_CHECKING:
    from flowtel._core._settings import Settings
    from flowtel._core._telemetry import Telemetry

__all__ = [
    "DEFAULT_EXCLUDED_LOGGERS",
    "ConsoleFormatter",
    "JsonFormatter",
    "OTelLogHandler",
    "TraceContextFilter",
    "add_trace_context",
    "current_span_id",
    "current_trace_id",
    "instrument_logging",
    "is_instrumented",
    "uninstrument_logging",
]


def current_trace_id() -> str | None:
    """The current span's trace id as 32 hex digits, or ``None`` outside a valid span."""
    ctx = trace.get_current_span().get_span_context()
    return trace.format_trace_id(ctx.trace_id) if ctx.is_valid else None


def current_span_id() -> str | None:
    """The current span's id as 16 hex digits, or ``None`` outside a valid span."""
    ctx = trace.get_current_span().get_span_context()
    return trace.format_span_id(ctx.span_id) if ctx.is_valid else None


def _ids(record: logging.LogRecord) -> tuple[str | None, str | None]:
    """(trace_id, span_id) of a record: stamped by the filter, else the current span."""
    trace_id = record.__dict__.get("trace_id")
    span_id = record.__dict__.get("span_id")
    if isinstance(trace_id, str) and isinstance(span_id, str):
        return trace_id or None, span_id or None
    ctx = record_span_context(record)
    if not ctx.is_valid:
        return None, None
    return trace.format_trace_id(ctx.trace_id), trace.format_span_id(ctx.span_id)


class TraceContextFilter(logging.Filter):
    """Stamps ``trace_id`` and ``span_id`` (hex, ``""`` outside a span) on each record.

    A filter on handlers rather than a record factory, because a factory's attributes make
    ``logger.info(..., extra={"trace_id": ...})`` raise ``KeyError`` in the caller; here an
    explicit ``extra`` value simply wins. Also captures the span context itself, so a handler
    behind a ``QueueHandler`` still correlates. Never drops a record.

    Use it in ``dictConfig`` as ``{"()": "flowtel.logging.TraceContextFilter"}``.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Add the ids; always keeps the record."""
        attrs = record.__dict__
        if SPAN_CONTEXT_ATTR not in attrs:
            attrs[SPAN_CONTEXT_ATTR] = trace.get_current_span().get_span_context()
        if "trace_id" not in attrs or "span_id" not in attrs:
            ctx = attrs[SPAN_CONTEXT_ATTR]
            valid = isinstance(ctx, trace.SpanContext) and ctx.is_valid
            attrs.setdefault("trace_id", trace.format_trace_id(ctx.trace_id) if valid else "")
            attrs.setdefault("span_id", trace.format_span_id(ctx.span_id) if valid else "")
        return True


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
        trace_id, span_id = _ids(record)
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
        trace_id, _ = _ids(record)
        if trace_id and self.trace_suffix:
            line += f" [trace {trace_id[:8]}]"
        exc = exception_fields(record, scrubber)
        if exc:
            line += "\n" + exc[semconv.EXCEPTION_STACKTRACE].rstrip("\n")
        return line


def add_trace_context(
    logger: object, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: add ``trace_id``/``span_id`` when a span is current.

    Needed only when structlog renders by itself (e.g. ``JSONRenderer`` to stdout); when
    structlog is routed through stdlib ``logging`` (see ``docs/logging.md``), the flowtel handler
    correlates records already. Plain callable: importing it does not import structlog.
    """
    ctx = trace.get_current_span().get_span_context()
    if ctx.is_valid:
        event_dict.setdefault("trace_id", trace.format_trace_id(ctx.trace_id))
        event_dict.setdefault("span_id", trace.format_span_id(ctx.span_id))
    return event_dict


class _Installation:
    """What one install changed, so uninstalling restores exactly that."""

    __slots__ = ("added", "filtered", "reformatted", "relevelled", "root_level")

    def __init__(self) -> None:
        self.added: list[logging.Handler] = []
        self.filtered: list[logging.Handler] = []
        self.reformatted: list[tuple[logging.Handler, logging.Formatter | None]] = []
        self.relevelled: list[tuple[logging.Handler, int]] = []
        self.root_level: int | None = None


_lock = threading.Lock()
_current: _Installation | None = None
_filter: Final = TraceContextFilter()


def _console_handlers(root: logging.Logger) -> list[logging.StreamHandler[Any]]:
    return [
        h
        for h in root.handlers
        if type(h) is logging.StreamHandler and h.stream in (sys.stdout, sys.stderr)
    ]


def instrument_logging(
    logger_provider: LoggerProvider,
    *,
    level: str | int = "INFO",
    json_logs: bool = False,
    console: bool = False,
    service_name: str | None = None,
    excluded: Iterable[str] = DEFAULT_EXCLUDED_LOGGERS,
    library_level: str | int = "WARNING",
) -> None:
    """Route stdlib logging to ``logger_provider``; idempotent (a second call replaces the first).

    If the root logger's level is above ``level``, it is lowered so the application's records
    reach the handler, and each pre-existing root handler is given the old root level, so what
    your own handlers print does not change. Third-party libraries' records below
    ``library_level`` are dropped by flowtel's handlers (see :class:`LibraryLevelFilter`).

    Args:
        logger_provider: SDK ``LoggerProvider`` with the exporting processors attached.
        level: minimum level exported (name or int).
        json_logs: print :class:`JsonFormatter` lines on stdout. If the root logger already
            writes to stdout/stderr, that handler gets the JSON formatter instead of a second
            handler being added (one line per record, never two).
        console: print :class:`ConsoleFormatter` lines on stdout (console exporter mode) unless
            the root logger already prints to the console.
        service_name: ``service.name`` for JSON lines.
        excluded: logger names never exported (feedback-loop guard).
        library_level: minimum level of records written by third-party libraries (code under
            ``site-packages`` or the standard library); ``WARNING`` by default.

    Raises:
        ConfigurationError: ``level`` is not a valid level.
    """
    levelno = parse_level("log_level", level)
    quiet = LibraryLevelFilter(parse_level("library_log_level", library_level))
    global _current
    with _lock:
        if _current is not None:
            _restore(_current)
        root = logging.getLogger()
        state = _Installation()
        existing = list(root.handlers)
        for handler in existing:
            if _filter not in handler.filters:
                handler.addFilter(_filter)
                state.filtered.append(handler)
        if json_logs or console:
            formatter: logging.Formatter = (
                JsonFormatter(service_name) if json_logs else ConsoleFormatter()
            )
            consoles = _console_handlers(root)
            if consoles and json_logs:
                for handler in consoles:
                    state.reformatted.append((handler, handler.formatter))
                    handler.setFormatter(formatter)
            elif not consoles:
                stream = _stdout_handler(json_logs, levelno, service_name)
                stream.addFilter(_filter)
                stream.addFilter(quiet)
                state.added.append(stream)
        otel = OTelLogHandler(logger_provider, level=levelno, excluded=excluded)
        otel.addFilter(quiet)  # no TraceContextFilter: it reads the span itself, without hex ids
        state.added.append(otel)
        if root.level > levelno:
            state.root_level = root.level
            for handler in existing:
                if handler.level < root.level:
                    state.relevelled.append((handler, handler.level))
                    handler.setLevel(root.level)
            root.setLevel(levelno)
        for handler in state.added:
            root.addHandler(handler)
        _current = state


def _stdout_handler(json_logs: bool, level: int, service_name: str | None) -> logging.Handler:
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


def _restore(state: _Installation) -> None:
    root = logging.getLogger()
    for handler in state.added:
        root.removeHandler(handler)
        if isinstance(handler, WriterHandler):
            handler.close()
    for handler in state.filtered:
        handler.removeFilter(_filter)
    for handler, formatter in state.reformatted:
        handler.setFormatter(formatter)
    for handler, old_level in state.relevelled:
        handler.setLevel(old_level)
    if state.root_level is not None:
        root.setLevel(state.root_level)


def is_instrumented(logger_provider: LoggerProvider) -> bool:
    """True while stdlib logging is routed to ``logger_provider`` by :func:`instrument_logging`."""
    root = logging.getLogger()
    with _lock:
        state = _current
    return state is not None and any(
        isinstance(h, OTelLogHandler) and h.provider is logger_provider and h in root.handlers
        for h in state.added
    )


def uninstrument_logging() -> None:
    """Undo :func:`instrument_logging`: remove flowtel's handlers and restore levels/formatters."""
    global _current
    with _lock:
        if _current is not None:
            _restore(_current)
            _current = None


def _uninstall_if(state: _Installation | None) -> None:
    """Undo ``state`` only if it is still the active installation (a newer one stays)."""
    global _current
    with _lock:
        if state is not None and _current is state:
            _restore(state)
            _current = None


def options_from(settings: Settings) -> dict[str, Any]:
    """:func:`instrument_logging` keywords for resolved flowtel settings."""
    return {
        "level": settings.log_level,
        "json_logs": settings.json_logs,
        "console": settings.exporter == "console",
        "service_name": settings.service_name,
        "library_level": settings.library_log_level,
    }


def _install(telemetry: Telemetry) -> None:
    """Core hook: apply ``settings.logging/log_level/json_logs`` to ``telemetry``.

    Called by ``configure_telemetry()`` when ``settings.logging`` is truthy. Shutting that
    ``telemetry`` down removes exactly this installation.
    """
    if not telemetry.settings.logging:
        return
    instrument_logging(telemetry.logger_provider, **options_from(telemetry.settings))
    state = _current
    telemetry.add_shutdown_callback(lambda: _uninstall_if(state))
