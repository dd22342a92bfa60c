"""flowtel.span(): a span for a block of code, with flowtel's exception semantics."""

from __future__ import annotations

import sys
from contextvars import Token
from types import TracebackType
from typing import cast

from opentelemetry import context as context_api
from opentelemetry import trace as trace_api
from opentelemetry.context import Context
from opentelemetry.trace import Span
from opentelemetry.util.types import AttributeValue

from flowtel import semconv
from flowtel._core._scrub import current_scrubber
from flowtel._core._values import to_attribute
from flowtel.tracing._site import _end_failed, _report_internal, _tracer_for


class SpanScope:
    """What ``span()`` returns: a sync and async context manager around one span.

    Not reusable: each ``with`` needs a new ``span()`` call.
    """

    __slots__ = ("_attributes", "_name", "_scope", "_span", "_token")

    def __init__(self, name: str, scope: str, attributes: dict[str, AttributeValue]) -> None:
        self._name = name
        self._scope = scope
        self._attributes = attributes
        self._span: Span = trace_api.INVALID_SPAN
        self._token: Token[Context] | None = None

    def __enter__(self) -> Span:
        try:
            tracer = _tracer_for(self._scope)
            self._span = tracer.start_span(self._name, attributes=self._attributes)
            self._token = context_api.attach(trace_api.set_span_in_context(self._span))
        except Exception:
            _report_internal("span()")
            self._span = trace_api.INVALID_SPAN
            self._token = None
        return self._span

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._token is None:
            return
        if exc is not None:
            _end_failed(self._span, self._token, exc)
        else:
            try:
                context_api.detach(self._token)
                self._span.end()
            except Exception:
                _report_internal("span()")

    async def __aenter__(self) -> Span:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)


def span(
    name: str,
    *,
    component: str | None = None,
    operation: str | None = None,
    **attributes: object,
) -> SpanScope:
    """Open a span: ``with flowtel.span("name", key=value) as s:`` (or ``async with``).

    Same error semantics as ``@traced``. Attribute values are converted safely and scrubbed.
    The instrumentation scope is the caller's module.
    """
    try:
        scope = sys._getframe(1).f_globals.get("__name__", "flowtel")
        scrubber = current_scrubber()
        attrs: dict[str, AttributeValue] = {
            key: to_attribute(key, value, scrubber) for key, value in attributes.items()
        }
        if component:
            attrs[semconv.COMPONENT] = component
        if operation:
            attrs[semconv.OPERATION] = operation
    except Exception:
        _report_internal("span()")
        scope, attrs = "flowtel", {}
    return SpanScope(name, cast(str, scope), attrs)
