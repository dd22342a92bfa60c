"""The last line of secret defence: scrub spans and log records as they reach an exporter.

Why at the export boundary: flowtel's own APIs scrub values when they are recorded, but a span
name built with an f-string, ``trace.get_current_span().set_attribute(...)`` and span events
added by third-party instrumentation never pass through flowtel. Scrubbing what an exporter is
handed catches all of them, whatever API produced the data.

Cost stays off the application's threads (exports run on the batch worker) and is small for
already-clean data: a span is only copied when something in it actually changes, and scrubbed
strings are memoised in a bounded cache because names and attribute values repeat.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Final

from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.trace import Status
from opentelemetry.util.types import AnyValue, AttributeValue

from flowtel._core._scrub import REDACTED, Scrubber, current_scrubber

__all__ = ["scrub_log_records", "scrub_span", "scrub_spans"]

_CACHE_MAX: Final = 4096
_CACHE_MAX_CHARS: Final = 256
_cache: dict[str, str] = {}
_cache_owner: Scrubber | None = None


def _text(scrubber: Scrubber, text: str) -> str:
    if len(text) > _CACHE_MAX_CHARS:  # long values rarely repeat; caching them would pin memory
        return scrubber.scrub_text(text)
    global _cache_owner
    if scrubber is not _cache_owner:  # reconfigured: results of the old patterns are stale
        _cache.clear()
        _cache_owner = scrubber
    hit = _cache.get(text)
    if hit is None:
        hit = scrubber.scrub_text(text)
        if len(_cache) >= _CACHE_MAX:
            _cache.clear()  # bounded: a burst of unique values must not grow memory
        _cache[text] = hit
    return hit


def _value(scrubber: Scrubber, key: str, value: AttributeValue) -> AttributeValue:
    if scrubber.key_is_secret(key):
        return REDACTED
    if isinstance(value, str):
        return _text(scrubber, value)
    if isinstance(value, Sequence) and value and isinstance(value[0], str):
        return tuple(_text(scrubber, v) if isinstance(v, str) else v for v in value)
    return value


def _attributes(
    scrubber: Scrubber, attributes: Mapping[str, AttributeValue] | None
) -> dict[str, AttributeValue] | None:
    """A scrubbed copy of ``attributes``, or None when nothing needed changing."""
    if not attributes:
        return None
    changed = False
    out: dict[str, AttributeValue] = {}
    for key, value in attributes.items():
        clean = _value(scrubber, key, value)
        if clean != value and not (
            isinstance(value, list | tuple) and isinstance(clean, tuple) and tuple(value) == clean
        ):
            changed = True
        out[key] = clean
    return out if changed else None


def scrub_span(span: ReadableSpan, scrubber: Scrubber | None = None) -> ReadableSpan:
    """``span`` itself when it holds no secret, else a scrubbed copy.

    Name, attributes, event names and attributes and the status description are scrubbed; the
    resource (configured by the service) and links are passed through.
    """
    scrubber = scrubber or current_scrubber()
    if not scrubber.enabled:
        return span
    name = _text(scrubber, span.name)
    attributes = _attributes(scrubber, span.attributes)
    events: list[Event] | None = None
    for i, event in enumerate(span.events):
        event_name = _text(scrubber, event.name)
        event_attrs = _attributes(scrubber, event.attributes)
        if event_attrs is not None or event_name != event.name:
            if events is None:
                events = list(span.events)
            events[i] = Event(
                event_name,
                event_attrs if event_attrs is not None else event.attributes,
                event.timestamp,
            )
    status = span.status
    description = status.description
    clean_description = _text(scrubber, description) if description else description
    if (
        name == span.name
        and attributes is None
        and events is None
        and clean_description == description
    ):
        return span
    return ReadableSpan(
        name=name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=attributes if attributes is not None else span.attributes,
        events=events if events is not None else span.events,
        links=span.links,
        kind=span.kind,
        status=Status(status.status_code, clean_description)
        if clean_description != description
        else status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


def scrub_spans(spans: Sequence[ReadableSpan]) -> Sequence[ReadableSpan]:
    """Scrub a batch; returns the same sequence object when nothing changed."""
    scrubber = current_scrubber()
    if not scrubber.enabled:
        return spans
    out = [scrub_span(s, scrubber) for s in spans]
    return spans if all(a is b for a, b in zip(out, spans, strict=True)) else out


def _body(scrubber: Scrubber, body: AnyValue) -> AnyValue:
    if isinstance(body, str):
        return _text(scrubber, body)
    if isinstance(body, Mapping):
        return {k: _body_value(scrubber, str(k), v) for k, v in body.items()}
    if isinstance(body, list | tuple):
        return [_body(scrubber, v) for v in body]
    return body


def _body_value(scrubber: Scrubber, key: str, value: AnyValue) -> AnyValue:
    if scrubber.key_is_secret(key):
        return REDACTED
    return _body(scrubber, value)


def scrub_log_records(records: Sequence[ReadableLogRecord]) -> Sequence[ReadableLogRecord]:
    """Scrub the body and attributes of each record (copies only the records that change)."""
    scrubber = current_scrubber()
    if not scrubber.enabled:
        return records
    out: list[ReadableLogRecord] = []
    changed_any = False
    for record in records:
        api = record.log_record
        body = _body(scrubber, api.body)
        attributes = _attributes(scrubber, api.attributes)
        if body == api.body and attributes is None:
            out.append(record)
            continue
        changed_any = True
        clean = copy.copy(api)
        clean.body = body
        if attributes is not None:
            clean.attributes = attributes
        out.append(
            ReadableLogRecord(
                log_record=clean,
                resource=record.resource,
                instrumentation_scope=record.instrumentation_scope,
                limits=record.limits,
            )
        )
    return out if changed_any else records
