"""Turning arbitrary Python values into safe, scrubbed OpenTelemetry attribute values.

Why: recorded arguments and return values can be anything: objects whose ``__repr__`` raises,
megabyte strings, bytes, strings with lone surrogates that would make protobuf serialisation
fail and lose a whole export batch. Everything here is total: it returns a value, never raises.
"""

from __future__ import annotations

import contextlib
import linecache
import traceback
from collections.abc import Callable
from typing import Any, Final

from opentelemetry.util.types import AttributeValue

from flowtel import semconv
from flowtel._core._scrub import Scrubber

MAX_REPR_CHARS: Final = 1024
MAX_STACK_CHARS: Final = 32_768


def safe_text(text: str, limit: int = MAX_REPR_CHARS) -> str:
    """Truncate and make ``text`` encodable as UTF-8 (lone surrogates become U+FFFD)."""
    if len(text) > limit:
        text = text[:limit] + "…"
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            text = text.encode("utf-8", "replace").decode("utf-8")
    return text


def safe_call(hook: Callable[[BaseException], Any], exc: BaseException) -> Any:
    """``hook(exc)``, or None if the hook raises.

    For user-supplied hooks on the error being handled (``retry_after``): a broken hook must not
    mask that error, so its failure reads as "no answer".
    """
    try:
        return hook(exc)
    except Exception:
        return None


def safe_predicate(predicate: Callable[[BaseException], object], exc: BaseException) -> bool:
    """``bool(predicate(exc))``, or False if that raises (``retry_on``, ``record``, ``ignore``,
    ``is_throttled``): a broken predicate reads as "no" and never masks the error."""
    try:
        return bool(predicate(exc))
    except Exception:
        return False


def safe_str(value: object, limit: int = MAX_REPR_CHARS) -> str:
    """``str(value)`` that never raises (exception messages go through here)."""
    try:
        text = str(value)
    except Exception:
        text = f"<{type(value).__name__}: str() failed>"
    return safe_text(text, limit)


def safe_repr(value: object, limit: int = MAX_REPR_CHARS) -> str:
    """``repr(value)`` that never raises and never returns more than ``limit`` chars."""
    try:
        text = repr(value)
    except Exception:
        text = f"<{type(value).__name__}: repr() failed>"
    return safe_text(text, limit)


def to_attribute(key: str, value: object, scrubber: Scrubber) -> AttributeValue:
    """Convert ``value`` for attribute ``key``: primitives kept, the rest repr'd; all scrubbed."""
    if scrubber.key_is_secret(key):
        return semconv.REDACTED
    if isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return scrubber.scrub_text(safe_text(value))
    if isinstance(value, bytes | bytearray | memoryview):
        return f"<{len(value)} bytes>"
    return scrubber.scrub_text(safe_repr(value))


def exception_attributes(
    exc: BaseException, scrubber: Scrubber, *, escaped: bool
) -> dict[str, AttributeValue]:
    """The attributes of an OTel ``exception`` event for ``exc``: type, scrubbed message and
    stack trace (bounded), ``exception.escaped``. Never raises.

    Linear in the depth an exception travels: the frames and the message are formatted and
    scrubbed once, and cached on the exception, so a span it escapes further out adds only
    the frames it passed since (see :func:`scrubbed_stack`).
    """
    return {
        semconv.EXCEPTION_TYPE: qualified_type_name(type(exc)),
        semconv.EXCEPTION_MESSAGE: scrubbed_message(exc, scrubber),
        semconv.EXCEPTION_STACKTRACE: scrubbed_stack(exc, scrubber),
        semconv.EXCEPTION_ESCAPED: escaped,
    }


_CACHE_ATTR: Final = "_flowtel_rendered"
_CHAIN_LIMIT: Final = 8
_CAUSE: Final = "\nThe above exception was the direct cause of the following exception:\n\n"
_CONTEXT: Final = "\nDuring handling of the above exception, another exception occurred:\n\n"


class _Rendered:
    """What was formatted for one exception object: its scrubbed message, its frames (innermost
    last, as the traceback grew so far) and the scrubbed text of its chained exceptions."""

    __slots__ = ("chain", "frame_count", "frames", "message", "scrubber")

    def __init__(self, scrubber: Scrubber) -> None:
        self.scrubber = scrubber
        self.message: str | None = None
        self.chain: str | None = None
        self.frames = ""
        self.frame_count = 0


def _rendered(exc: BaseException, scrubber: Scrubber) -> _Rendered:
    found = getattr(exc, _CACHE_ATTR, None)
    if isinstance(found, _Rendered) and found.scrubber is scrubber:
        return found
    fresh = _Rendered(scrubber)
    with contextlib.suppress(Exception):  # a type that refuses attributes: format again later
        setattr(exc, _CACHE_ATTR, fresh)
    return fresh


def scrubbed_message(exc: BaseException, scrubber: Scrubber) -> str:
    """``str(exc)``, bounded and scrubbed, computed once per exception object."""
    try:
        rendered = _rendered(exc, scrubber)
        if rendered.message is None:
            rendered.message = scrubber.scrub_text(safe_str(exc))
        return rendered.message
    except Exception:
        return f"<{type(exc).__name__}>"


_FRAME_CACHE_MAX: Final = 4096
_frame_cache: dict[tuple[Any, int], str] = {}
_frame_cache_scrubber: list[Scrubber | None] = [None]


def _frame_lines(frames: list[tuple[Any, int]], scrubber: Scrubber) -> str:
    """The classic traceback lines for ``(frame, line number)`` pairs, outermost first, each
    frame scrubbed.

    Python 3.11's own formatter also locates the failing expression in every line (parsing the
    source); that costs ten times as much and adds nothing an error backend shows. A frame's
    text depends only on its code and line, so it is scrubbed once and cached (bounded): a
    failure at a known place costs a few dictionary lookups.
    """
    cache = _frame_cache
    if _frame_cache_scrubber[0] is not scrubber:  # reconfigured: other rules
        cache.clear()
        _frame_cache_scrubber[0] = scrubber
    out = []
    for frame, lineno in frames:
        code = frame.f_code
        key = (code, lineno)
        text = cache.get(key)
        if text is None:
            line = linecache.getline(code.co_filename, lineno).strip()
            text = f'  File "{code.co_filename}", line {lineno}, in {code.co_name}\n'
            if line:
                text += f"    {line}\n"
            text = scrubber.scrub_text(text)
            if len(cache) >= _FRAME_CACHE_MAX:
                cache.clear()
            cache[key] = text
        out.append(text)
    return "".join(out)


def _own_stack(exc: BaseException, scrubber: Scrubber, depth: int) -> str:
    """``exc``'s chained exceptions, its traceback and its last line, all scrubbed."""
    rendered = _rendered(exc, scrubber)
    frames = list(traceback.walk_tb(exc.__traceback__))
    new = len(frames) - rendered.frame_count
    if rendered.frame_count == 0 or new < 0:  # first time, or a replaced traceback
        rendered.frames = _frame_lines(frames, scrubber)
    elif new > 0:  # the traceback grows at its outer end as the exception unwinds
        rendered.frames = _frame_lines(frames[:new], scrubber) + rendered.frames
    rendered.frame_count = len(frames)
    if rendered.chain is None:
        rendered.chain = ""
        if depth < _CHAIN_LIMIT:
            cause = exc.__cause__
            context = None if exc.__suppress_context__ else exc.__context__
            if cause is not None:
                rendered.chain = _own_stack(cause, scrubber, depth + 1) + _CAUSE
            elif context is not None and context is not exc:
                rendered.chain = _own_stack(context, scrubber, depth + 1) + _CONTEXT
    head = "Traceback (most recent call last):\n" if rendered.frame_count else ""
    last = f"{qualified_type_name(type(exc))}: {scrubbed_message(exc, scrubber)}\n"
    return f"{rendered.chain}{head}{rendered.frames}{last}"


def scrubbed_stack(exc: BaseException, scrubber: Scrubber) -> str:
    """The stack trace of ``exc`` as the standard library lays it out (without the 3.11 caret
    lines), chained exceptions first, scrubbed and bounded; never raises."""
    try:
        return safe_text(_own_stack(exc, scrubber, 0), MAX_STACK_CHARS)
    except Exception:
        return ""


def qualified_type_name(cls: type) -> str:
    """``error.type`` value: the fully qualified class name (bare for builtins)."""
    module = getattr(cls, "__module__", "")
    name = getattr(cls, "__qualname__", cls.__name__)
    return name if module in ("builtins", "", None) else f"{module}.{name}"
