"""OTLP span encoding with the export-side scrub folded in: each distinct value costs once.

Why: the SDK's encoder builds a protobuf object per span, per attribute and per value, then
serialises the tree; with the export-side scrub (:mod:`flowtel._export._scrub`) walking every
attribute again before that, encoding was most of the CPU a span costs a process. Attributes
repeat (``code.*``, component, operation, route, status), so this encoder writes the OTLP wire
format directly and memoises each attribute's *scrubbed and encoded* bytes, keyed by name, type
and value: a repeated attribute costs one dictionary lookup, and a new one is scrubbed and
encoded once. Whatever set it (``@traced``, ``span.set_attribute``, an instrumentation), every
name and value still passes the current scrubber exactly as :func:`scrub_span` would.

The bytes equal ``encode_spans(scrub_spans(spans)).SerializeToString()`` (the equivalence tests
check this field for field), so receivers see the same spans. Memory is bounded: at most
:data:`_CACHE_MAX` short and :data:`_LONG_CACHE_MAX` long entries, cleared when full.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from typing import Any, Final

from opentelemetry.sdk.trace import ReadableSpan

from flowtel._core._scrub import REDACTED, Scrubber, current_scrubber
from flowtel._export._scrub import scrub_span

__all__ = ["SpanEncoder"]

_CACHE_MAX: Final = 8192
_SHORT_CHARS: Final = 256
_LONG_CACHE_MAX: Final = 128
_LONG_CHARS: Final = 16_384
"""Longer values (stack traces of a recurring error) are cached too, but only a few of them."""
_INT64_MIN: Final = -(1 << 63)
_INT64_MAX: Final = (1 << 63) - 1
_SMALL: Final = tuple(bytes((i,)) for i in range(128))
_TIMES: Final = struct.Struct("<BQBQ")
_TIME: Final = struct.Struct("<BQ")
_DOUBLE: Final = struct.Struct("<d")
_FLAGS_LOCAL: Final = b"\x85\x01" + struct.pack("<I", 0x100)
_FLAGS_REMOTE: Final = b"\x85\x01" + struct.pack("<I", 0x300)
_LINK_FLAGS_LOCAL: Final = b"\x35" + struct.pack("<I", 0x100)
_LINK_FLAGS_REMOTE: Final = b"\x35" + struct.pack("<I", 0x300)
_SCALARS: Final = frozenset((str, int, float, bool))
_TUPLE_ITEMS: Final = 16


def _varint(n: int) -> bytes:
    if n < 0x80:
        if n >= 0:
            return _SMALL[n]
        n += 1 << 64  # int64: two's complement, ten bytes
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _field(tag: bytes, body: bytes) -> bytes:
    """A length-delimited field: ``tag``, the length, ``body``."""
    return tag + _varint(len(body)) + body


def _text(tag: bytes, text: str) -> bytes:
    return _field(tag, text.encode("utf-8"))


def _any(value: object) -> bytes:
    """An ``AnyValue`` message body, as the SDK's ``_encode_value`` would build it."""
    if value is None:
        return b""
    if isinstance(value, bool):
        return b"\x10\x01" if value else b"\x10\x00"
    if isinstance(value, str):
        return _text(b"\x0a", value)
    if isinstance(value, int):
        if not _INT64_MIN <= value <= _INT64_MAX:
            raise ValueError("integer out of int64 range")
        return b"\x18" + _varint(value)
    if isinstance(value, float):
        return b"\x21" + _DOUBLE.pack(value)
    if isinstance(value, bytes):
        return _field(b"\x3a", value)
    if isinstance(value, Sequence):
        return _field(b"\x2a", b"".join(_field(b"\x0a", _any(v)) for v in value))
    if isinstance(value, Mapping):
        items = b"".join(_field(b"\x0a", _key_value(str(k), v)) for k, v in value.items())
        return _field(b"\x32", items)
    raise TypeError(f"cannot encode a {type(value).__name__}")


def _key_value(key: str, value: object) -> bytes:
    return _text(b"\x0a", key) + _field(b"\x12", _any(value))


def _plain_attributes(tag: bytes, attributes: Mapping[str, Any] | None) -> bytes:
    """Repeated ``KeyValue`` fields, unscrubbed; a value the SDK cannot encode is skipped."""
    out = []
    for key, value in (attributes or {}).items():
        try:
            out.append(_field(tag, _key_value(key, value)))
        except (TypeError, ValueError, UnicodeError):
            continue
    return b"".join(out)


def _scope(scope: Any) -> bytes:
    """``InstrumentationScope`` body (what ``_encode_instrumentation_scope`` encodes)."""
    if scope is None:
        return b""
    out = _text(b"\x0a", scope.name) if scope.name else b""
    if scope.version:
        out += _text(b"\x12", scope.version)
    return out + _plain_attributes(b"\x1a", scope.attributes)


def _plain(attributes: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """The dict inside the SDK's ``BoundedAttributes`` (iterating that costs several times
    more), else ``attributes`` itself."""
    inner = getattr(attributes, "_dict", None)
    return inner if isinstance(inner, dict) else attributes


def _items_of(span: ReadableSpan) -> Mapping[str, Any] | None:
    """A span's attributes without the read-only proxy around them, when the SDK has one."""
    return _plain(getattr(span, "_attributes", None)) or span.attributes


class SpanEncoder:
    """Encodes span batches to ``ExportTraceServiceRequest`` bytes, scrubbed on the way.

    Threading contract: one export worker calls :meth:`encode` at a time (the caches are not
    locked); a new scrubber (a reconfiguration) empties them.
    """

    def __init__(self) -> None:
        self._scrubber: Scrubber | None = None
        self._attrs: dict[tuple[bytes, str, type, object], bytes] = {}
        self._long: dict[tuple[bytes, str, str], bytes] = {}
        self._names: dict[str, bytes] = {}

    def encode(self, spans: Sequence[ReadableSpan]) -> bytes:
        """The serialised request for ``spans``, grouped by resource and scope like the SDK's."""
        scrubber = current_scrubber()
        if scrubber is not self._scrubber:
            self._scrubber = scrubber
            self._attrs, self._long, self._names = {}, {}, {}
        groups: dict[Any, dict[Any, list[bytes]]] = {}
        last: tuple[Any, Any, list[bytes]] = (None, None, [])
        for span in spans:
            encoded = self._span(span, scrubber)
            if encoded is None:  # a name changes under scrubbing: take the copying path
                encoded = self._span(scrub_span(span, scrubber), None, span)
            assert encoded is not None
            resource, scope = span.resource, span.instrumentation_scope or None
            if resource is not last[0] or scope is not last[1]:
                # Hashing a Resource serialises it to JSON: look up only when it changes.
                scopes = groups.get(resource)
                if scopes is None:
                    scopes = groups[resource] = {}
                group = scopes.get(scope)
                if group is None:
                    group = scopes[scope] = []
                last = (resource, scope, group)
            last[2].append(encoded)
        out = []
        for resource, scopes in groups.items():
            body = [_field(b"\x0a", _plain_attributes(b"\x0a", resource.attributes))]
            for scope, encoded_spans in scopes.items():
                scope_spans = [_field(b"\x0a", _scope(scope)), *encoded_spans]
                if scope is not None and scope.schema_url:
                    scope_spans.append(_text(b"\x1a", scope.schema_url))
                body.append(_field(b"\x12", b"".join(scope_spans)))
            if resource.schema_url:
                body.append(_text(b"\x1a", resource.schema_url))
            out.append(_field(b"\x0a", b"".join(body)))
        return b"".join(out)

    def _span(
        self, span: ReadableSpan, scrubber: Scrubber | None, original: ReadableSpan | None = None
    ) -> bytes | None:
        """One ``spans`` field; None when an attribute name would change under scrubbing.

        A scrubbed copy (``scrubber`` None) takes its dropped counts from ``original``.
        """
        counts = original or span
        context = span.context
        assert context is not None
        parts = [
            b"\x0a\x10",
            context.trace_id.to_bytes(16, "big"),
            b"\x12\x08",
            context.span_id.to_bytes(8, "big"),
        ]
        trace_state = context.trace_state
        if trace_state:
            parts.append(_text(b"\x1a", ",".join(f"{k}={v}" for k, v in trace_state.items())))
        parent = span.parent
        if parent is not None:
            parts += (b"\x22\x08", parent.span_id.to_bytes(8, "big"))
        parts.append(self._name(span.name, scrubber))
        parts.append(_SMALL[0x30] + _SMALL[span.kind.value + 1])
        start, end = span.start_time, span.end_time
        if start and end:
            parts.append(_TIMES.pack(0x39, start, 0x41, end))
        else:
            if start:
                parts.append(_TIME.pack(0x39, start))
            if end:
                parts.append(_TIME.pack(0x41, end))
        attributes = self._attributes(b"\x4a", _items_of(span), scrubber)
        if attributes is None:
            return None
        parts.append(attributes)
        if counts.dropped_attributes:
            parts += (b"\x50", _varint(counts.dropped_attributes))
        for event in span.events:
            event_attrs = self._attributes(b"\x1a", _plain(event.attributes), scrubber)
            if event_attrs is None:
                return None
            name = event.name if scrubber is None else scrubber.scrub_text(event.name)
            body = _TIME.pack(0x09, event.timestamp) if event.timestamp else b""
            body += _text(b"\x12", name) + event_attrs
            if event.dropped_attributes:
                body += b"\x20" + _varint(event.dropped_attributes)
            parts.append(_field(b"\x5a", body))
        if counts.dropped_events:
            parts += (b"\x60", _varint(counts.dropped_events))
        for link in span.links:
            link_attrs = self._attributes(b"\x22", link.attributes, scrubber)
            if link_attrs is None:
                return None
            linked = link.context
            body = b"\x0a\x10" + linked.trace_id.to_bytes(16, "big")
            body += b"\x12\x08" + linked.span_id.to_bytes(8, "big") + link_attrs
            if link.dropped_attributes:
                body += b"\x28" + _varint(link.dropped_attributes)
            body += _LINK_FLAGS_REMOTE if linked.is_remote else _LINK_FLAGS_LOCAL
            parts.append(_field(b"\x6a", body))
        if counts.dropped_links:
            parts += (b"\x70", _varint(counts.dropped_links))
        status = span.status
        if status is not None:
            message = status.description
            body = b""
            if message:
                if scrubber is not None:
                    message = scrubber.scrub_text(message)
                body = _text(b"\x12", message)
            if status.status_code.value:
                body += b"\x18" + _varint(status.status_code.value)
            parts.append(_field(b"\x7a", body))
        parts.append(_FLAGS_REMOTE if parent is not None and parent.is_remote else _FLAGS_LOCAL)
        return _field(b"\x12", b"".join(parts))

    def _name(self, name: str, scrubber: Scrubber | None) -> bytes:
        if scrubber is None:
            return _text(b"\x2a", name) if name else b""
        hit = self._names.get(name)
        if hit is None:
            clean = scrubber.scrub_text(name)
            hit = _text(b"\x2a", clean) if clean else b""
            if len(self._names) >= _CACHE_MAX:
                self._names.clear()
            self._names[name] = hit
        return hit

    def _attributes(
        self, tag: bytes, attributes: Mapping[str, Any] | None, scrubber: Scrubber | None
    ) -> bytes | None:
        """Repeated ``KeyValue`` fields, scrubbed; None when a name changes under scrubbing."""
        if not attributes:
            return b""
        if scrubber is None:
            return _plain_attributes(tag, attributes)
        cache, long_cache = self._attrs, self._long
        out = []
        for key, value in attributes.items():
            cls = value.__class__
            if cls is str and len(value) > _SHORT_CHARS:
                entry: Any = (tag, key, value)
                hit = long_cache.get(entry) if len(value) <= _LONG_CHARS else None
            elif cls in _SCALARS or (
                cls is tuple
                and len(value) <= _TUPLE_ITEMS
                and all(v.__class__ is str for v in value)
            ):
                entry = (tag, key, cls, value)  # the class: True == 1 == 1.0 as dict keys
                hit = cache.get(entry)
            else:  # lists (unhashable), long tuples, mappings: encoded without the cache
                entry, hit = None, None
            if hit is None:
                if scrubber.scrub_key(key) != key:
                    return None
                hit = self._scrubbed(tag, key, value, scrubber)
                if entry is None:
                    pass
                elif len(entry) == 3:
                    if len(value) <= _LONG_CHARS:
                        if len(long_cache) >= _LONG_CACHE_MAX:
                            long_cache.clear()
                        long_cache[entry] = hit
                else:
                    if len(cache) >= _CACHE_MAX:
                        cache.clear()
                    cache[entry] = hit
            out.append(hit)
        return b"".join(out)

    @staticmethod
    def _scrubbed(tag: bytes, key: str, value: object, scrubber: Scrubber) -> bytes:
        """One ``KeyValue`` field with its value scrubbed as :func:`scrub_span` scrubs it;
        empty when the SDK's encoder would skip it."""
        if scrubber.key_is_secret(key):
            value = REDACTED
        elif isinstance(value, str):
            value = scrubber.scrub_text(value)
        elif isinstance(value, Sequence) and value and isinstance(value[0], str):
            value = tuple(scrubber.scrub_text(v) if isinstance(v, str) else v for v in value)
        try:
            return _field(tag, _key_value(key, value))
        except (TypeError, ValueError, UnicodeError):
            return b""
