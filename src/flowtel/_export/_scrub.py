"""The last line of secret defence: scrub spans, log records and metric points at an exporter.

Why at the export boundary: flowtel's own APIs scrub values when they are recorded, but a span
name built with an f-string, ``trace.get_current_span().set_attribute(...)``, span events added
by third-party instrumentation and metric attributes given to a counter never pass through
flowtel. Scrubbing what an exporter is handed catches all of them, whatever API produced them.

Attribute *names* are scrubbed too (``f"user.{email}"`` makes the name data). Cost stays off the
application's threads (exports run on the batch worker) and is small for already-clean data:
an item is only copied when something in it actually changes, and the scrubber memoises short
strings because names and attribute values repeat.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk.metrics.export import MetricsData
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.trace import Status
from opentelemetry.util.types import AnyValue, AttributeValue

from flowtel._core._scrub import REDACTED, Scrubber, current_scrubber

__all__ = ["scrub_log_records", "scrub_metrics", "scrub_span", "scrub_spans"]


def _value(scrubber: Scrubber, key: str, value: AttributeValue) -> AttributeValue:
    if scrubber.key_is_secret(key):
        return REDACTED
    if isinstance(value, str):
        return scrubber.scrub_text(value)
    if isinstance(value, Sequence) and value and isinstance(value[0], str):
        return tuple(scrubber.scrub_text(v) if isinstance(v, str) else v for v in value)
    return value


def _attributes(
    scrubber: Scrubber, attributes: Mapping[str, AttributeValue] | None
) -> dict[str, AttributeValue] | None:
    """A scrubbed copy of ``attributes`` (names and values), or None when nothing changed."""
    if not attributes:
        return None
    changed = False
    out: dict[str, AttributeValue] = {}
    for key, value in attributes.items():
        clean_key = scrubber.scrub_key(key)
        clean = _value(scrubber, key, value)
        if clean_key != key or (
            clean != value
            and not (
                isinstance(value, list | tuple)
                and isinstance(clean, tuple)
                and tuple(value) == clean
            )
        ):
            changed = True
        out[clean_key] = clean
    return out if changed else None


def scrub_span(span: ReadableSpan, scrubber: Scrubber | None = None) -> ReadableSpan:
    """``span`` itself when it holds no secret, else a scrubbed copy.

    Name, attributes, event names and attributes, link attributes and the status description
    are scrubbed; the resource (configured by the service) is passed through.
    """
    scrubber = scrubber or current_scrubber()
    if not scrubber.enabled:
        return span
    name = scrubber.scrub_text(span.name)
    attributes = _attributes(scrubber, span.attributes)
    events: list[Event] | None = None
    for i, event in enumerate(span.events):
        event_name = scrubber.scrub_text(event.name)
        event_attrs = _attributes(scrubber, event.attributes)
        if event_attrs is not None or event_name != event.name:
            if events is None:
                events = list(span.events)
            events[i] = Event(
                event_name,
                event_attrs if event_attrs is not None else event.attributes,
                event.timestamp,
            )
    links: list[Any] | None = None
    for i, link in enumerate(span.links):
        link_attrs = _attributes(scrubber, link.attributes)
        if link_attrs is not None:
            if links is None:
                links = list(span.links)
            links[i] = type(link)(link.context, link_attrs)
    status = span.status
    description = status.description
    clean_description = scrubber.scrub_text(description) if description else description
    if (
        name == span.name
        and attributes is None
        and events is None
        and links is None
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
        links=links if links is not None else span.links,
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


def _body(scrubber: Scrubber, body: AnyValue, depth: int = 0) -> AnyValue:
    if isinstance(body, str):
        return scrubber.scrub_text(body)
    if depth > 8:  # bounded: a pathological nesting is not walked further
        return body
    if isinstance(body, Mapping):
        return {
            scrubber.scrub_key(str(k)): REDACTED
            if scrubber.key_is_secret(str(k))
            else _body(scrubber, v, depth + 1)
            for k, v in body.items()
        }
    if isinstance(body, list | tuple):
        return [_body(scrubber, v, depth + 1) for v in body]
    return body


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


def scrub_metrics(data: MetricsData) -> MetricsData:
    """Scrub the attributes of every data point; ``data`` itself when nothing changed.

    Metric attributes come from any code that holds a meter (a URL, a user id, a query as a
    label); flowtel's own labels are clean and pass without a copy.
    """
    scrubber = current_scrubber()
    if not scrubber.enabled:
        return data
    resource_metrics = []
    changed_any = False
    for rm in data.resource_metrics:
        scope_metrics = []
        for sm in rm.scope_metrics:
            metrics = []
            for metric in sm.metrics:
                points = []
                changed = False
                for point in metric.data.data_points:
                    attrs = _attributes(scrubber, point.attributes)
                    if attrs is not None:
                        changed = True
                        point = dataclasses.replace(point, attributes=attrs)
                    points.append(point)
                if changed:
                    changed_any = True
                    clean_data: Any = dataclasses.replace(metric.data, data_points=points)  # type: ignore[arg-type]
                    metric = dataclasses.replace(metric, data=clean_data)
                metrics.append(metric)
            scope_metrics.append(dataclasses.replace(sm, metrics=metrics))
        resource_metrics.append(dataclasses.replace(rm, scope_metrics=scope_metrics))
    if not changed_any:
        return data
    return dataclasses.replace(data, resource_metrics=resource_metrics)
