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
* a :class:`LibraryLevelFilter` on flowtel's handlers: third-party records pass only from
  ``library_log_level`` (default ``WARNING``);
* with ``json_logs=True``, a JSON formatter on stdout (one JSON object per line); with the
  console exporter, the console formatter (short trace id). Both live in ``_stdout``, loaded
  only then.

Installing twice replaces the first installation, so records are never exported twice.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Iterable, MutableMapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Final

from opentelemetry import trace
from opentelemetry._logs import LoggerProvider

from flowtel._core._parse import parse_level
from flowtel.logs._bridge import (
    DEFAULT_EXCLUDED_LOGGERS,
    SPAN_CONTEXT_ATTR,
    OTelLogHandler,
)

if TYPE_CHECKING:
    from flowtel._core._settings import Settings
    from flowtel._core._telemetry import Telemetry

__all__ = [
    "DEFAULT_EXCLUDED_LOGGERS",
    "LibraryLevelFilter",
    "OTelLogHandler",
    "TraceContextFilter",
    "add_trace_context",
    "current_span_id",
    "current_trace_id",
    "instrument_logging",
    "is_instrumented",
    "uninstrument_logging",
]


# Quiet defaults: third-party records below ``library_log_level`` are dropped -------------------

_OWN_LOGGERS = ("flowtel", "__main__")
_LIBRARY_CACHE_MAX = 4096  # (logger name, code path) pairs are code-defined; bound the cache anyway


@lru_cache(maxsize=1)
def _library_roots() -> tuple[str, ...]:
    import sysconfig  # on first use: it costs process start otherwise

    paths = sysconfig.get_paths()
    roots = {paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths}
    return tuple(sorted(roots))


def _is_library_file(pathname: str) -> bool:
    if "site-packages" in pathname or "dist-packages" in pathname:
        return True
    return pathname.startswith(_library_roots())


def _is_library_record(name: str, pathname: str) -> bool:
    if any(name == own or name.startswith(own + ".") for own in _OWN_LOGGERS):
        return False
    return _is_library_file(pathname)


class LibraryLevelFilter(logging.Filter):
    """Drops third-party records below ``library_level``; the application's pass untouched.

    "Third-party" is decided by where the record was written (``record.pathname``), not by the
    logger's name, so it needs no list: code installed under ``site-packages`` or in the
    standard library is a library. flowtel's own loggers count as the application's.

    Cheap per record: a record at or above ``library_level`` passes on one comparison; below
    it, the decision is looked up per (logger name, code path), both code-defined.

    Args:
        library_level: the minimum level of library records kept.
    """

    def __init__(self, library_level: int) -> None:
        super().__init__()
        self.library_level = library_level
        self._library: dict[tuple[str, str], bool] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep the record unless a library wrote it below ``library_level``."""
        if record.levelno >= self.library_level:
            return True
        key = (record.name, record.pathname or "")
        library = self._library.get(key)
        if library is None:
            library = _is_library_record(*key)
            if len(self._library) < _LIBRARY_CACHE_MAX:
                self._library[key] = library
        return not library


def current_trace_id() -> str | None:
    """The current span's trace id as 32 hex digits, or ``None`` outside a valid span."""
    ctx = trace.get_current_span().get_span_context()
    return trace.format_trace_id(ctx.trace_id) if ctx.is_valid else None


def current_span_id() -> str | None:
    """The current span's id as 16 hex digits, or ``None`` outside a valid span."""
    ctx = trace.get_current_span().get_span_context()
    return trace.format_span_id(ctx.span_id) if ctx.is_valid else None


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
            from flowtel.logs._stdout import ConsoleFormatter, JsonFormatter, stdout_handler

            formatter: logging.Formatter = (
                JsonFormatter(service_name) if json_logs else ConsoleFormatter()
            )
            consoles = _console_handlers(root)
            if consoles and json_logs:
                for handler in consoles:
                    state.reformatted.append((handler, handler.formatter))
                    handler.setFormatter(formatter)
            elif not consoles:
                stream = stdout_handler(json_logs, levelno, service_name)
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


def _restore(state: _Installation) -> None:
    root = logging.getLogger()
    for handler in state.added:  # flowtel's own: closed too (the JSON writer thread stops)
        root.removeHandler(handler)
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
