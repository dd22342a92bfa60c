"""The bridge from stdlib ``logging`` records to OpenTelemetry log records.

Kept apart from :mod:`flowtel.logging` (which decides *where* handlers go) because this module
decides *what* one record becomes: severity, trace context, code location, exception and the
``extra`` fields as scrubbed attributes. The handler only hands a record to the SDK's
``LoggerProvider``; batching, the bounded queue and network I/O live in the SDK's
``BatchLogRecordProcessor`` on its own thread, so ``emit`` never waits on the network.

Cost: a record is on the application's thread, so each step is paid once: the message is
formatted once and scrubbed once (the scrubber memoises short texts), the attributes are built
clean so the SDK need not clean them again (:mod:`flowtel.logs._target`), and what depends only
on the logger name or the level is looked up, not recomputed.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import traceback
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry._logs import LoggerProvider, SeverityNumber
from opentelemetry.context import Context
from opentelemetry.util.types import AttributeValue

from flowtel import semconv
from flowtel._core import _compat
from flowtel._core._scrub import REDACTED, Scrubber, current_scrubber
from flowtel._core._values import qualified_type_name

if TYPE_CHECKING:
    from flowtel.logs._target import LogTarget

__all__ = [
    "DEFAULT_EXCLUDED_LOGGERS",
    "OTelLogHandler",
    "exception_fields",
    "extra_fields",
    "is_excluded",
    "record_span_context",
    "severity_of",
]

DEFAULT_EXCLUDED_LOGGERS: Final[tuple[str, ...]] = (
    "opentelemetry",  # the SDK and exporters log about their own failures: exporting is a loop
    "grpc",
    "urllib3",
    "requests",
    "flowtel.logging",  # flowtel's own diagnostics about logging
    "flowtel.export",  # flowtel's exporter internals (export guard, batch processors)
)
"""Logger names (and their children) whose records are never exported, to prevent feedback."""

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD_ATTRS: Final = frozenset(
    {
        *vars(logging.LogRecord("", 0, "", 0, "", (), None)),
        "message",
        "asctime",
        "taskName",
        "color_message",  # uvicorn duplicates the message with ANSI colours
        "trace_id",
        "span_id",
        "trace_flags",
        "trace_sampled",
        "service_name",
    }
)
SPAN_CONTEXT_ATTR: Final = "_flowtel_span_context"
# A record whose attributes are all in here has no ``extra``: one C-level check, no loop.
_NOT_EXTRA: Final = _STANDARD_ATTRS | {SPAN_CONTEXT_ATTR}
_SUPPRESS: Final = otel_context._SUPPRESS_INSTRUMENTATION_KEY
_CACHE_MAX: Final = 4096  # logger names are code-defined; bound the per-name caches anyway

_MAX_TEXT_CHARS: Final = 16_384  # bound one attribute/body: a huge repr must not pin memory
_MAX_DEPTH: Final = 4
_SEVERITY_TEXT: Final = {"WARNING": "WARN", "CRITICAL": "FATAL"}
_BANDS: Final = (
    (50, SeverityNumber.FATAL),
    (40, SeverityNumber.ERROR),
    (30, SeverityNumber.WARN),
    (20, SeverityNumber.INFO),
    (10, SeverityNumber.DEBUG),
)

_diag = logging.getLogger("flowtel.logging")
_reported: set[str] = set()
_local = threading.local()


def report_once(what: str, exc: BaseException) -> None:
    """Log an instrumentation failure once per kind; never raises (hot-path fallback)."""
    if what in _reported or len(_reported) > 64:
        return
    _reported.add(what)
    with contextlib.suppress(Exception):  # logging itself may be what is broken
        _diag.warning("flowtel logging: %s failed (%s); continuing", what, type(exc).__name__)


def severity_of(levelno: int) -> SeverityNumber:
    """Map a stdlib level to an OTel severity, keeping custom in-between levels ordered."""
    known = _SEVERITIES.get(levelno)
    if known is not None:
        return known
    severity = SeverityNumber.TRACE
    for floor, base in _BANDS:
        if levelno >= floor:
            severity = SeverityNumber(base.value + min(levelno - floor, 3))
            break
    if len(_SEVERITIES) < _CACHE_MAX:  # levels are code-defined; filled as they are seen
        _SEVERITIES[levelno] = severity
    return severity


_SEVERITIES: Final[dict[int, SeverityNumber]] = {}


def severity_text(levelname: str) -> str:
    """OTel's display names (``WARN``, ``FATAL``); custom level names pass through."""
    return _SEVERITY_TEXT.get(levelname, levelname)


def is_excluded(name: str, prefixes: Iterable[str]) -> bool:
    """True when logger ``name`` is one of ``prefixes`` or a child of one."""
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def record_span_context(record: logging.LogRecord) -> trace.SpanContext:
    """The span context a record was logged under.

    Prefers the one :class:`flowtel.logging.TraceContextFilter` captured on the logging thread,
    so handlers running on a queue listener thread still correlate correctly.
    """
    captured = record.__dict__.get(SPAN_CONTEXT_ATTR)
    if isinstance(captured, trace.SpanContext):
        return captured
    return trace.get_current_span().get_span_context()


def _truncate(text: str) -> str:
    return text if len(text) <= _MAX_TEXT_CHARS else text[:_MAX_TEXT_CHARS] + "...[truncated]"


def _safe_str(value: object) -> str:
    try:
        return _truncate(str(value))
    except Exception:
        return f"<unprintable {type(value).__name__}>"


def attribute_value(key: str, value: object, scrubber: Scrubber) -> AttributeValue | None:
    """Convert an ``extra`` value to a scrubbed OTel attribute value (``None`` drops it)."""
    if value is None:
        return None
    if scrubber.key_is_secret(key):
        return REDACTED
    if isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return scrubber.scrub_text(_truncate(value))
    if isinstance(value, Sequence) and not isinstance(value, bytes | bytearray) and value:
        items = list(value)[:128]
        first = type(items[0])
        if first in (bool, int, float) and all(type(v) is first for v in items):
            return items
        return [scrubber.scrub_text(_safe_str(v)) for v in items]
    return scrubber.scrub_text(_safe_str(value))


def json_value(key: str, value: object, scrubber: Scrubber, depth: int = 0) -> Any:
    """Convert an ``extra`` value to a scrubbed JSON-serialisable value, keeping nesting."""
    if scrubber.key_is_secret(key):
        return REDACTED
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # NaN/Infinity are not JSON; strict log parsers reject the line
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return scrubber.scrub_text(_truncate(value))
    if depth < _MAX_DEPTH:
        if isinstance(value, Mapping):
            return {
                scrubber.scrub_key(str(k)): json_value(str(k), v, scrubber, depth + 1)
                for k, v in list(value.items())[:128]
            }
        if isinstance(value, list | tuple | set | frozenset):
            return [json_value(key, v, scrubber, depth + 1) for v in list(value)[:128]]
    return scrubber.scrub_text(_safe_str(value))


def extra_fields(record: logging.LogRecord) -> dict[str, object]:
    """The fields a caller passed with ``extra=`` (or structlog's bound context), in order."""
    attrs = record.__dict__
    if _NOT_EXTRA.issuperset(attrs):
        return {}
    return {k: v for k, v in attrs.items() if k not in _STANDARD_ATTRS and k[:1] != "_"}


def exception_fields(record: logging.LogRecord, scrubber: Scrubber) -> dict[str, str]:
    """``exception.type/message/stacktrace`` of a record logged with ``exc_info``, scrubbed."""
    exc_info = record.exc_info
    if not exc_info or exc_info[0] is None:
        return {}
    exc_type, exc, tb = exc_info
    stack = record.exc_text or "".join(traceback.format_exception(exc_type, exc, tb))
    return {
        semconv.EXCEPTION_TYPE: qualified_type_name(exc_type),
        semconv.EXCEPTION_MESSAGE: scrubber.scrub_text(_safe_str(exc)),
        semconv.EXCEPTION_STACKTRACE: scrubber.scrub_text(stack),
    }


def message_of(record: logging.LogRecord) -> str:
    """``record.getMessage()`` cut at 16 KiB (bounds scrubbing cost); never raises."""
    try:
        return _truncate(record.getMessage())
    except Exception:
        return _safe_str(record.msg)


class OTelLogHandler(logging.Handler):
    """Turns stdlib log records into OpenTelemetry log records on ``logger_provider``.

    Each record becomes one OTel record with the current span's trace id, span id and flags,
    the severity, ``logger.name``, the code location, exception fields and the scrubbed
    ``extra`` fields. The SDK's batch processor does the I/O on its own thread, so ``emit``
    costs CPU only and never blocks on the network.

    Feedback guard: records from ``excluded`` loggers (the SDK, gRPC, urllib3, flowtel's own
    diagnostics), records logged while the SDK is exporting (it sets the suppress-
    instrumentation context key) and records logged re-entrantly from inside ``emit`` are
    dropped, so an exporter complaining about a failed export never produces more exports.

    Threading: ``emit`` runs on the logging thread and is safe to run on several at once (the
    SDK logger is thread-safe and the per-name cache only ever gains entries), so ``handle``
    does not take the handler's lock. It never raises (a failure is reported once on the
    ``flowtel.logging`` logger, which is itself excluded).

    Args:
        logger_provider: the SDK ``LoggerProvider`` whose processors export the records.
        level: the minimum stdlib level exported.
        excluded: logger names (with their children) that are never exported.
    """

    def __init__(
        self,
        logger_provider: LoggerProvider,
        level: int = logging.INFO,
        excluded: Iterable[str] = DEFAULT_EXCLUDED_LOGGERS,
    ) -> None:
        super().__init__(level=level)
        self._provider = logger_provider
        self._excluded = tuple(excluded)
        self._targets: dict[str, LogTarget | None] = {}  # None: an excluded logger

    @property
    def provider(self) -> LoggerProvider:
        """The ``LoggerProvider`` records are handed to."""
        return self._provider

    def _target(self, name: str) -> LogTarget | None:
        """The destination of logger ``name``'s records (None: excluded), resolved once."""
        target = None
        if not is_excluded(name, self._excluded):
            from flowtel.logs._target import LogTarget  # with the first record, not at start

            target = LogTarget(self._provider.get_logger(name), _compat.preset_log_records_ok())
        if len(self._targets) < _CACHE_MAX:
            self._targets[name] = target
        return target

    def handle(self, record: logging.LogRecord) -> Any:
        """Filter, then emit without the handler's lock (see the class docstring)."""
        kept: Any = self.filter(record)
        if kept:
            self.emit(kept if isinstance(kept, logging.LogRecord) else record)
        return kept

    def emit(self, record: logging.LogRecord) -> None:
        """Translate and hand over one record; drops it instead of raising or recursing."""
        name = record.name
        target: Any = self._targets.get(name, _UNSEEN)  # a LogTarget, None, or _UNSEEN
        if target is None or getattr(_local, "busy", False):
            return
        ctx = otel_context.get_current()
        if otel_context.get_value(_SUPPRESS, ctx):
            return
        _local.busy = True
        try:
            if target is _UNSEEN:
                target = self._target(name)
                if target is None:
                    return
            self._emit(record, target, ctx)
        except Exception as exc:
            report_once("exporting a log record", exc)
        finally:
            _local.busy = False

    def _emit(self, record: logging.LogRecord, target: LogTarget, ctx: Context) -> None:
        scrubber = current_scrubber()
        attributes: dict[str, AttributeValue] = {
            semconv.LOG_LOGGER: record.name,
            semconv.CODE_FILEPATH: record.pathname,
            semconv.CODE_FUNCTION: record.funcName,
            semconv.CODE_LINENO: record.lineno,
        }
        if record.threadName:
            attributes[semconv.LOG_THREAD] = record.threadName
        for key, value in extra_fields(record).items():
            converted = attribute_value(key, value, scrubber)
            if converted is not None:
                attributes[scrubber.scrub_key(key)] = converted
        if record.exc_info:
            attributes.update(exception_fields(record, scrubber))
        if record.stack_info:
            attributes[semconv.CODE_STACKTRACE] = scrubber.scrub_text(record.stack_info)
        captured = record.__dict__.get(SPAN_CONTEXT_ATTR)
        if isinstance(captured, trace.SpanContext):  # a filter captured it, maybe elsewhere
            current = trace.get_current_span(ctx).get_span_context()
            if captured is not current and captured != current:
                ctx = trace.set_span_in_context(trace.NonRecordingSpan(captured), ctx)
        levelno = record.levelno
        target.emit(
            int(record.created * 1e9),
            ctx,
            _SEVERITIES.get(levelno) or severity_of(levelno),
            _SEVERITY_TEXT.get(record.levelname, record.levelname),
            scrubber.scrub_text(message_of(record)),
            attributes,
        )

    def flush(self) -> None:
        """No-op: flushing means network I/O, which belongs to ``Telemetry.force_flush``."""


_UNSEEN: Final = object()
