"""Turning an OTel exception span event into a Sentry event payload (no sentry-sdk import).

Kept apart from :mod:`flowtel.sentry` because it is pure data shaping: parse the
``exception.stacktrace`` text OTel stores, pick the span attributes that may leave the process,
and compute the key that recognises one exception occurrence seen by several nested spans.
"""

from __future__ import annotations

import logging
import re
import string
from collections.abc import Iterator, Mapping
from types import TracebackType
from typing import Any, Final, NamedTuple

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.util.types import AttributeValue

from flowtel import semconv
from flowtel._core._scrub import REDACTED, Scrubber
from flowtel._core._values import qualified_type_name, safe_str
from flowtel.exceptions import ConfigurationError

# Attribute key prefixes that carry request/response headers, bodies or user identity. They stay
# out of Sentry unless the user opted in with ``sentry_send_default_pii=True``.
PII_KEY_PREFIXES: Final[tuple[str, ...]] = (
    "http.request.header.",
    "http.response.header.",
    "http.request.body",
    "http.response.body",
    "user.",
    "enduser.",
    "client.address",
    "client.port",
    "net.peer.ip",
    "http.client_ip",
    "session.",
)

_EXCEPTION_KEYS: Final = frozenset(
    {
        semconv.EXCEPTION_TYPE,
        semconv.EXCEPTION_MESSAGE,
        semconv.EXCEPTION_STACKTRACE,
        semconv.EXCEPTION_ESCAPED,
        semconv.ERROR_HANDLED,
    }
)

_FRAME_RE: Final = re.compile(r'^  File "(?P<file>.+)", line (?P<line>\d+), in (?P<func>.+)$')
_CHAIN_MARKERS: Final = (
    "The above exception was the direct cause of the following exception:",
    "During handling of the above exception, another exception occurred:",
)


class Occurrence(NamedTuple):
    """What identifies one exception occurrence across the spans that recorded it."""

    trace_id: int
    exc_type: str
    message: str
    raise_site: tuple[str, int] | None


def otel_type_name(exc: BaseException) -> str:
    """The ``exception.type`` string the OTel SDK writes for ``exc``."""
    return qualified_type_name(type(exc))


def split_type(exc_type: str) -> tuple[str | None, str]:
    """Split ``pkg.mod.Error`` into Sentry's ``module`` and ``type`` fields."""
    module, dot, name = exc_type.rpartition(".")
    return (module, name) if dot else (None, exc_type)


def match_live(
    live: BaseException | None, exc_type: str, message: str, scrubber: Scrubber
) -> BaseException | None:
    """Return the live exception (or one it chains to) that an exception event describes.

    Why the check: ``sys.exc_info()`` in ``on_end`` may be an unrelated exception being handled
    around a span that ended normally; only a type+message match proves it is this event's.
    The message is compared raw (OTel's ``record_exception``) and as flowtel records it
    (truncated, then scrubbed).
    """
    seen = 0
    while live is not None and seen < 8:
        if otel_type_name(live) == exc_type:
            text = safe_str(live)
            if message in (text, scrubber.scrub_text(text)):
                return live
        live = live.__context__
        seen += 1
    return None


def live_raise_site(exc: BaseException) -> tuple[str, int] | None:
    """The innermost frame (file, line) of ``exc``'s traceback: where it was raised."""
    tb: TracebackType | None = exc.__traceback__
    if tb is None:
        return None
    while tb.tb_next is not None:
        tb = tb.tb_next
    return (tb.tb_frame.f_code.co_filename, tb.tb_lineno)


def _last_block(stacktrace: str) -> str:
    cut = max(stacktrace.rfind(marker) for marker in _CHAIN_MARKERS)
    return stacktrace if cut < 0 else stacktrace[cut:]


def _frames(block: str) -> Iterator[tuple[str, int, str, str | None]]:
    lines = block.splitlines()
    for i, line in enumerate(lines):
        m = _FRAME_RE.match(line)
        if m is None:
            continue
        code = None
        if (
            i + 1 < len(lines)
            and lines[i + 1].startswith("    ")
            and not _FRAME_RE.match(lines[i + 1])
        ):
            code = lines[i + 1].strip()
        yield m["file"], int(m["line"]), m["func"], code


def parsed_raise_site(stacktrace: str) -> tuple[str, int] | None:
    """The innermost frame (file, line) in an ``exception.stacktrace`` text."""
    last = None
    for file, line, _func, _code in _frames(_last_block(stacktrace)):
        last = (file, line)
    return last


def parse_frames(stacktrace: str, scrubber: Scrubber) -> list[dict[str, Any]]:
    """Sentry frames (oldest first) parsed from Python's formatted traceback text.

    Only the final exception's block is used: it is the one the event describes. Source lines
    are scrubbed because a line may hold a literal secret.
    """
    frames: list[dict[str, Any]] = []
    for file, line, func, code in _frames(_last_block(stacktrace)):
        frame: dict[str, Any] = {
            "filename": file,
            "abs_path": file,
            "lineno": line,
            "function": func,
        }
        if code:
            frame["context_line"] = scrubber.scrub_text(code)
        frames.append(frame)
    return frames


def exportable_attributes(
    attributes: Mapping[str, AttributeValue] | None, scrubber: Scrubber, *, send_pii: bool
) -> dict[str, AttributeValue]:
    """Span attributes that may go to Sentry: scrubbed, without PII keys unless opted in."""
    if not attributes:
        return {}
    out: dict[str, AttributeValue] = {}
    for key, value in attributes.items():
        if key in _EXCEPTION_KEYS:
            continue
        if not send_pii and key.startswith(PII_KEY_PREFIXES):
            continue
        out[scrubber.scrub_key(key)] = scrubber.scrub_value(key, value)
    return out


def is_handled(attributes: Mapping[str, AttributeValue] | None) -> bool:
    """True when the exception event was recorded by ``record_error`` (handled, not escaping)."""
    if not attributes:
        return False
    value = attributes.get(semconv.ERROR_HANDLED)
    return value is True or (isinstance(value, str) and value.lower() == "true")


def span_component(span: ReadableSpan) -> str | None:
    """The component tag: flowtel's attribute, else the instrumentation scope's name."""
    attrs = span.attributes or {}
    value = attrs.get(semconv.COMPONENT)
    if isinstance(value, str):
        return value
    scope = span.instrumentation_scope
    return scope.name if scope is not None and scope.name else None


def span_operation(span: ReadableSpan) -> str:
    """The operation tag: flowtel's attribute, else the span name."""
    value = (span.attributes or {}).get(semconv.OPERATION)
    return value if isinstance(value, str) else span.name


class SourceLineScrubber:
    """Scrubs source lines through a bounded cache.

    Why: every event carries ~11 source lines per frame and the same code paths fail again and
    again; running the scrubber's regexes once per distinct line keeps event building cheap.
    """

    def __init__(self, max_lines: int = 8192) -> None:
        self._max_lines = max_lines
        self._cache: dict[str, str] = {}
        self._scrubber: Scrubber | None = None

    def __call__(self, scrubber: Scrubber, line: str) -> str:
        """``scrubber.scrub_text(line)``, cached for the current scrubber."""
        if scrubber is not self._scrubber:  # reconfigured: forget lines scrubbed the old way
            self._cache = {}
            self._scrubber = scrubber
        hit = self._cache.get(line)
        if hit is None:
            hit = scrubber.scrub_text(line)
            if len(self._cache) < self._max_lines:
                self._cache[line] = hit
        return hit


_SOURCE_LINES: Final = SourceLineScrubber()


def scrub_exception_values(values: list[dict[str, Any]], scrubber: Scrubber) -> None:
    """Scrub messages and source lines, drop local variables of Sentry exception values."""
    for value in values:
        if isinstance(value.get("value"), str):
            value["value"] = scrubber.scrub_text(value["value"])
        stacktrace = value.get("stacktrace")
        frames = stacktrace.get("frames") if isinstance(stacktrace, dict) else None
        for frame in frames or ():
            if isinstance(frame, dict):
                frame.pop("vars", None)
                if isinstance(frame.get("context_line"), str):
                    frame["context_line"] = _SOURCE_LINES(scrubber, frame["context_line"])
                for key in ("pre_context", "post_context"):
                    lines = frame.get(key)
                    if isinstance(lines, list):
                        frame[key] = [
                            _SOURCE_LINES(scrubber, x) if isinstance(x, str) else x for x in lines
                        ]


_SOURCE_KEYS: Final = frozenset({"context_line", "pre_context", "post_context"})
_MAX_DEPTH: Final = 16


def _walk(value: Any, key: str, scrubber: Scrubber, depth: int) -> Any:
    """``value`` (found under ``key``) with every string scrubbed, names included."""
    if key and scrubber.key_is_secret(key) and value is not None and value != "":
        return REDACTED
    if isinstance(value, str):
        if key in _SOURCE_KEYS:
            return _SOURCE_LINES(scrubber, value)
        return scrubber.scrub_text(value)
    if depth >= _MAX_DEPTH and isinstance(value, dict | list | tuple):
        return REDACTED  # deeper than sentry-sdk itself would send: never sent unread
    if isinstance(value, dict):
        return {
            (scrubber.scrub_key(k) if isinstance(k, str) else k): _walk(
                v, k if isinstance(k, str) else "", scrubber, depth + 1
            )
            for k, v in value.items()
            if k != "vars"  # frame locals: never sent, whatever the SDK options say
        }
    if isinstance(value, list | tuple):
        return [_walk(v, key, scrubber, depth + 1) for v in value]
    return value


def scrub_event(event: dict[str, Any], scrubber: Scrubber, *, exceptions: bool = True) -> None:
    """Scrub every field of a Sentry event in place: names and values, at any depth.

    Covers what sentry-sdk, its integrations and scopes add (``transaction``, ``tags``,
    ``contexts``, ``threads`` stacks, ``breadcrumbs``, ``request``, ``extra``, ``user``,
    ``logentry``), not a list of known fields, so a new field is scrubbed too. Breadcrumb
    ``data`` is dropped (it holds whole request/response payloads). ``exceptions=False`` skips
    exception values already scrubbed when the event was built.
    """
    crumbs = event.get("breadcrumbs")
    values = crumbs.get("values") if isinstance(crumbs, dict) else None
    for crumb in values or ():
        if isinstance(crumb, dict):
            crumb.pop("data", None)
    for key in list(event):
        if key == "exception" and not exceptions:
            continue
        event[key] = _walk(event[key], key, scrubber, 0)


def check_url_template(template: str | None) -> None:
    """Fail fast on a trace link template that cannot produce a link.

    Raises:
        ConfigurationError: no ``{trace_id}``, a field other than ``trace_id``/``span_id``, or
            broken braces.
    """
    if template is None:
        return
    accepted = (
        "a URL containing {trace_id} (and optionally {span_id}), e.g. https://grafana/...{trace_id}"
    )
    try:
        fields = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
    except ValueError:
        raise ConfigurationError("trace_url_template", template, accepted) from None
    if "trace_id" not in fields or not fields <= {"trace_id", "span_id"}:
        raise ConfigurationError("trace_url_template", template, accepted)


def trace_context(span: ReadableSpan) -> dict[str, Any]:
    """Sentry's ``contexts.trace`` for ``span``: the OTel ids, as lowercase hex."""
    ctx = span.context
    out: dict[str, Any] = {
        "trace_id": trace.format_trace_id(ctx.trace_id),
        "span_id": trace.format_span_id(ctx.span_id),
        "op": span.name,
        "status": "internal_error",
        "origin": "auto.otel.flowtel",
    }
    if span.parent is not None:
        out["parent_span_id"] = trace.format_span_id(span.parent.span_id)
    return out


def parsed_exception_value(
    attributes: Mapping[str, AttributeValue], mechanism: dict[str, Any], scrubber: Scrubber
) -> dict[str, Any]:
    """A Sentry exception value from an exception event's attributes alone (no live object)."""
    module, name = split_type(str(attributes.get(semconv.EXCEPTION_TYPE, "Exception")))
    stacktrace = attributes.get(semconv.EXCEPTION_STACKTRACE)
    value: dict[str, Any] = {
        "type": name,
        "value": str(attributes.get(semconv.EXCEPTION_MESSAGE, "")),
        "mechanism": mechanism,
    }
    if module:
        value["module"] = module
    if isinstance(stacktrace, str):
        value["stacktrace"] = {"frames": parse_frames(stacktrace, scrubber)}
    return value


def log_message(record: logging.LogRecord) -> str:
    """The record's message; the raw template when its %-args are bad (it still says what)."""
    try:
        return record.getMessage()
    except Exception:
        return str(record.msg)
