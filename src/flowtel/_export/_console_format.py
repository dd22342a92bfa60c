"""How one finished span (its line, attributes and events) and one log record look on a console.

Kept apart from the processor so the layout can be read (and changed) in one place:

    4bf92f35 ✓ POST /ask 18.71ms component=http route=/ask http.response.status_code=200
    4bf92f35   ✗ agent.answer 2.56ms error='LookupError: no match' component=agent
    4bf92f35     · exception +1.2ms LookupError: no match
    4bf92f35     │ 12:00:01.234 INFO  orders: order placed order_id=42

Everything shown has been through the scrubber already (the processor scrubs the span first).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Final

from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.trace import StatusCode
from opentelemetry.util.types import AttributeValue

from flowtel import semconv

__all__ = ["ConsoleVerbosity", "Palette", "format_log", "format_span"]


class ConsoleVerbosity(StrEnum):
    """How much the console shows (``console_verbosity``)."""

    QUIET = "quiet"
    """One line per span with its key attributes; no events, no summary."""
    NORMAL = "normal"
    """Plus the other attributes (compact, long values cut), events, and the summary at exit."""
    VERBOSE = "verbose"
    """Everything: every attribute in full, event attributes, span ids."""


_KEY_ATTRS: Final = (
    semconv.COMPONENT,
    semconv.OPERATION,
    semconv.ERROR_TYPE,
    "http.request.method",
    "http.route",
    "http.response.status_code",
    semconv.STARTUP_CHECK,
    semconv.STARTUP_OUTCOME,
)
_HIDDEN_PREFIXES: Final = (
    "code.",
    "thread.",
    "otel.",
    "net.",
    "network.",
    "user_agent.",
    "client.",
    "http.flavor",
    "http.scheme",
    "url.scheme",
    "http.server_name",
    "http.host",
    "http.url",
    "http.target",
    "http.user_agent",
    "url.",
)
"""Attributes that say little to a developer reading a console (shown only when verbose)."""
_MAX_VALUE_CHARS: Final = 60
_MAX_SHOWN: Final = 12
_EXCEPTION_EVENT: Final = "exception"


class Palette:
    """ANSI colours, or nothing when the stream is not a terminal."""

    def __init__(self, enabled: bool) -> None:
        on = enabled
        self.reset = "\x1b[0m" if on else ""
        self.dim = "\x1b[2m" if on else ""
        self.red = "\x1b[31m" if on else ""
        self.green = "\x1b[32m" if on else ""
        self.yellow = "\x1b[33m" if on else ""
        self.cyan = "\x1b[36m" if on else ""


def _short_key(key: str) -> str:
    return key.removeprefix("flowtel.")


def _value(value: AttributeValue, full: bool) -> str:
    if isinstance(value, str):
        text = value
    elif isinstance(value, tuple | list):
        text = "[" + ",".join(str(v) for v in value) + "]"
    elif isinstance(value, float):
        text = f"{value:.4g}"
    else:
        text = str(value)
    if not full and len(text) > _MAX_VALUE_CHARS:
        text = text[: _MAX_VALUE_CHARS - 1] + "…"
    if not text or any(c in text for c in " =\n\t\"'"):
        text = repr(text)
    return text


def _attributes(
    attrs: Mapping[str, AttributeValue], verbosity: ConsoleVerbosity, palette: Palette
) -> str:
    keys = [k for k in _KEY_ATTRS if k in attrs]
    if verbosity is not ConsoleVerbosity.QUIET:
        rest = sorted(k for k in attrs if k not in keys and k != semconv.ERROR_TYPE)
        if verbosity is ConsoleVerbosity.NORMAL:
            rest = [k for k in rest if not k.startswith(_HIDDEN_PREFIXES)]
        keys += rest
    full = verbosity is ConsoleVerbosity.VERBOSE
    shown = keys if full else keys[:_MAX_SHOWN]
    parts = [f"{palette.dim}{_short_key(k)}={palette.reset}{_value(attrs[k], full)}" for k in shown]
    if len(keys) > len(shown):
        parts.append(f"{palette.dim}(+{len(keys) - len(shown)} more){palette.reset}")
    return " ".join(parts)


def _event(event: Event, span: ReadableSpan, verbosity: ConsoleVerbosity, palette: Palette) -> str:
    offset_ms = (event.timestamp - (span.start_time or event.timestamp)) / 1e6
    attrs = event.attributes or {}
    colour = palette.red if event.name == _EXCEPTION_EVENT else palette.yellow
    head = f"· {colour}{event.name}{palette.reset} {palette.dim}+{offset_ms:.1f}ms{palette.reset}"
    if event.name == _EXCEPTION_EVENT:
        kind = attrs.get(semconv.EXCEPTION_TYPE, "")
        message = attrs.get(semconv.EXCEPTION_MESSAGE, "")
        head += f" {kind}: {message}" if message else f" {kind}"
        if verbosity is ConsoleVerbosity.VERBOSE:
            rest = {k: v for k, v in attrs.items() if k != semconv.EXCEPTION_STACKTRACE}
            return f"{head} {_attributes(rest, verbosity, palette)}".rstrip()
        return head
    shown = _attributes(attrs, verbosity, palette)
    return f"{head} {shown}" if shown else head


def format_span(
    span: ReadableSpan, depth: int, verbosity: ConsoleVerbosity, palette: Palette
) -> str:
    """The block for one finished span: its line, then its events one level deeper."""
    trace_id = f"{span.context.trace_id:032x}"[:8] if span.context else "--------"
    prefix = f"{palette.dim}{trace_id}{palette.reset} "
    failed = span.status.status_code is StatusCode.ERROR
    mark = f"{palette.red}✗{palette.reset}" if failed else f"{palette.green}✓{palette.reset}"
    duration_ms = ((span.end_time or 0) - (span.start_time or 0)) / 1e6
    indent = "  " * depth
    line = f"{prefix}{indent}{mark} {palette.cyan}{span.name}{palette.reset} {duration_ms:.2f}ms"
    if failed and span.status.description:
        line += f" {palette.red}error={span.status.description!r}{palette.reset}"
    attrs = span.attributes or {}
    if failed and span.status.description and verbosity is not ConsoleVerbosity.VERBOSE:
        attrs = {k: v for k, v in attrs.items() if k != semconv.ERROR_TYPE}  # error= says it
    shown = _attributes(attrs, verbosity, palette)
    if shown:
        line += " " + shown
    if verbosity is ConsoleVerbosity.VERBOSE and span.context is not None:
        line += f" {palette.dim}span_id={span.context.span_id:016x}{palette.reset}"
    lines = [line]
    if verbosity is not ConsoleVerbosity.QUIET:
        lines += [f"{prefix}{indent}    {_event(e, span, verbosity, palette)}" for e in span.events]
    return "\n".join(lines) + "\n"


def format_log(text: str, trace_id: int | None, depth: int | None, palette: Palette) -> str:
    """A log line; inside a span it is indented under that span and marked with ``│``."""
    if trace_id is None or depth is None:
        return text + "\n"
    prefix = f"{palette.dim}{f'{trace_id:032x}'[:8]}{palette.reset} "
    indent = "  " * depth + "    "
    rows = text.split("\n")
    return "".join(f"{prefix}{indent}{palette.dim}│{palette.reset} {row}\n" for row in rows)
