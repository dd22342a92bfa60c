"""The Sentry event built from a span, and the link from an event to its trace.

Why the link is decided here: a Sentry event that names a trace id nobody exported opens
nothing. An event carries the OTel trace id (``contexts.trace``, the ``trace_id`` tag, the
optional ``trace_url``) only when that trace was exported, or will be: head-sampled, or kept by
tail sampling (``sampling=``; the bridge asks it to keep the traces it reports). Otherwise the
event says ``trace_sampled: false`` and carries no trace id at all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanContext

from flowtel import semconv
from flowtel._core._scrub import current_scrubber
from flowtel.sentry import _event as ev
from flowtel.sentry._outcomes import SentryTag
from flowtel.tracing._keep import keep_trace_id, trace_exported

if TYPE_CHECKING:
    from flowtel.sentry._bridge import _Capture

__all__ = ["build_payload", "exported", "link_trace", "span_tags"]


def exported(context: SpanContext) -> bool:
    """Whether the trace of ``context`` is exported; asks tail sampling to keep it if it can."""
    return trace_exported(context) or keep_trace_id(context.trace_id)


def link_trace(
    event: dict[str, Any],
    context: SpanContext,
    trace_context: dict[str, Any] | None,
    url_template: str | None,
) -> None:
    """Point ``event`` at its trace when that trace is exported, else say it was sampled out."""
    contexts = event.setdefault("contexts", {})
    tags = event.setdefault("tags", {})
    if exported(context):
        trace_id = trace.format_trace_id(context.trace_id)
        contexts["trace"] = trace_context or {
            "trace_id": trace_id,
            "span_id": trace.format_span_id(context.span_id),
        }
        tags[SentryTag.TRACE_ID.value] = trace_id
        if url_template is not None:
            contexts.setdefault("otel", {})["trace_url"] = url_template.format(
                trace_id=trace_id, span_id=trace.format_span_id(context.span_id)
            )
        return
    contexts.pop("trace", None)  # sentry-sdk's own ids would look like a trace nobody has
    tags.pop(SentryTag.TRACE_ID.value, None)
    tags[SentryTag.TRACE_SAMPLED.value] = "false"
    contexts.setdefault("otel", {}).pop("trace_url", None)


def build_payload(
    job: _Capture,
    client_options: dict[str, Any],
    *,
    send_pii: bool,
    environment: str | None,
    url_template: str | None,
) -> dict[str, Any]:
    """The event for one capture job (runs on the capture thread)."""
    scrubber = current_scrubber()
    span, exc, event = job.span, job.exc, job.event
    mech = {"type": job.mechanism, "handled": job.handled}
    if exc is not None:
        from sentry_sdk.utils import exceptions_from_error_tuple

        values: list[dict[str, Any]] = exceptions_from_error_tuple(
            (type(exc), exc, job.tb), client_options, mech
        )
    else:
        attrs = (event.attributes if event is not None else None) or {}
        values = [ev.parsed_exception_value(attrs, mech, scrubber)]
    ev.scrub_exception_values(values, scrubber)
    payload: dict[str, Any] = {
        "level": "error",
        "platform": "python",
        "exception": {"values": values},
        "transaction": span.name,
        "tags": span_tags(span, environment),
        "contexts": {
            "otel": {
                "attributes": ev.exportable_attributes(
                    span.attributes, scrubber, send_pii=send_pii
                ),
                "resource": ev.exportable_attributes(
                    span.resource.attributes, scrubber, send_pii=send_pii
                ),
            },
        },
    }
    link_trace(payload, span.context, ev.trace_context(span), url_template)
    if event is not None:
        payload["timestamp"] = event.timestamp / 1e9
    if job.message:
        payload["logentry"] = {"message": scrubber.scrub_text(job.message)}
    return payload


def span_tags(span: ReadableSpan, environment: str | None) -> dict[str, str]:
    """The tags of an event built from ``span`` (the trace id is added by :func:`link_trace`)."""
    resource = span.resource.attributes
    tags: dict[str, str] = {SentryTag.OPERATION.value: ev.span_operation(span)}
    service = resource.get(semconv.SERVICE_NAME)
    if service is not None:
        tags[SentryTag.SERVICE.value] = str(service)
    env = environment or resource.get(semconv.DEPLOYMENT_ENVIRONMENT)
    if env is not None:
        tags[SentryTag.ENVIRONMENT.value] = str(env)
    component = ev.span_component(span)
    if component is not None:
        tags[SentryTag.COMPONENT.value] = component
    return tags
