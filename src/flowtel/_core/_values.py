"""Turning arbitrary Python values into safe, scrubbed OpenTelemetry attribute values.

Why: recorded arguments and return values can be anything: objects whose ``__repr__`` raises,
megabyte strings, bytes, strings with lone surrogates that would make protobuf serialisation
fail and lose a whole export batch. Everything here is total: it returns a value, never raises.
"""

from __future__ import annotations

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
        return "[REDACTED]"
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
    stack trace (bounded), ``exception.escaped``. Never raises."""
    try:
        stack = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    except Exception:
        stack = ""
    return {
        semconv.EXCEPTION_TYPE: qualified_type_name(type(exc)),
        semconv.EXCEPTION_MESSAGE: scrubber.scrub_text(safe_str(exc)),
        semconv.EXCEPTION_STACKTRACE: scrubber.scrub_text(safe_text(stack, MAX_STACK_CHARS)),
        semconv.EXCEPTION_ESCAPED: escaped,
    }


def qualified_type_name(cls: type) -> str:
    """``error.type`` value: the fully qualified class name (bare for builtins)."""
    module = getattr(cls, "__module__", "")
    name = getattr(cls, "__qualname__", cls.__name__)
    return name if module in ("builtins", "", None) else f"{module}.{name}"
