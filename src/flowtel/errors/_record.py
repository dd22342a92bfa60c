"""The span side of :func:`flowtel.errors.record_error`: a scrubbed, handled exception event.

Why apart from the processor: this is the only part of error tracking that writes telemetry
(an event, maybe a short span); the processor only reads finished spans.
"""

from __future__ import annotations

from collections.abc import Mapping

from opentelemetry import trace
from opentelemetry.util.types import AttributeValue

from flowtel import semconv
from flowtel._core._scrub import current_scrubber
from flowtel._core._values import exception_attributes, qualified_type_name, to_attribute

__all__ = ["add_handled_event"]


def add_handled_event(
    exc: BaseException,
    component: str | None,
    operation: str | None,
    attributes: Mapping[str, object],
    tracer: trace.Tracer,
) -> tuple[str, str, str]:
    """Add the ``exception`` event for a handled ``exc``; return (error type, component, operation).

    The event goes on the current recording span, else on a short ``flowtel.record_error`` span
    started from ``tracer``. Component and operation default the way the processor attributes
    that span (``flowtel.component``/``flowtel.operation``, else scope and span name).
    """
    scrubber = current_scrubber()
    error_type = qualified_type_name(type(exc))
    span = trace.get_current_span()
    own = not span.is_recording()
    if own:
        from flowtel.tracing._light import CountedSpan  # a sampled-out @traced call

        own = not isinstance(span, CountedSpan)  # its component and operation count it
    if own:
        component = component or semconv.SCOPE_ERRORS
        operation = operation or semconv.SPAN_RECORD_ERROR
        span = tracer.start_span(
            semconv.SPAN_RECORD_ERROR,
            attributes={
                semconv.COMPONENT: component,
                semconv.OPERATION: operation,
                semconv.ERROR_TYPE: error_type,
            },
        )
    else:
        span_attributes = getattr(span, "attributes", None) or {}
        if component is None:
            component = span_attributes.get(semconv.COMPONENT)
            if not isinstance(component, str):
                scope = getattr(span, "instrumentation_scope", None)
                component = scope.name if scope is not None else semconv.SCOPE_ERRORS
        if operation is None:
            operation = span_attributes.get(semconv.OPERATION)
            if not isinstance(operation, str):
                operation = getattr(span, "name", None) or semconv.SPAN_RECORD_ERROR
    event: dict[str, AttributeValue] = {
        str(key): to_attribute(str(key), value, scrubber) for key, value in attributes.items()
    }
    event.update(exception_attributes(exc, scrubber, escaped=False))
    event[semconv.ERROR_HANDLED] = True
    try:
        span.add_event(semconv.EVENT_EXCEPTION, event)
    finally:
        if own:
            span.end()
    return error_type, component, operation
