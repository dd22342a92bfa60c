"""Every use of another library's private state, in one place, each with a public fallback.

Why any: each access below was measured to matter on a hot path, or fills a hook the SDK does
not have yet. Each is verified on a probe object before its first use (never assumed from a
version number), so an SDK that changes its internals gets the public path instead of wrong
data. ``tests/core/test_compat.py`` runs both paths; CI runs the suite on the oldest and the
newest OpenTelemetry releases ``pyproject.toml`` admits (see ``.ci/run``).

Verified on opentelemetry-sdk 1.41.0 (the oldest release pyproject.toml admits) through 1.45.2.
The accesses, why, and the fallback:

- ``_Span._attributes._dict``: ``@traced`` writes its fixed, already-validated attributes
  (about 4 us of a 28 us span). Fallback: ``start_span(attributes=...)``.
- ``ReadableSpan._name``, ``_attributes``, ``_status``, ``_start_time``, ``_end_time``, ``_kind``,
  ``_parent``, ``_context``: the error
  processor reads every ended span; the properties copy (about 0.6 us, twice per span).
  Fallback: the public properties.
- ``MetricReader._collect``, ``_set_collect_callback``, ``_instrument_class_temporality``: the
  spec's MetricProducer, missing from the Python SDK (opentelemetry-python#4768). Fallback: an
  SDK ``Histogram`` instrument.
- ``opentelemetry.metrics._internal._PROXY_METER_PROVIDER``: tells the API's
  pre-configuration proxy from a real provider. Fallback: every provider counts as real.
- sentry-sdk ``HttpTransport._send_envelope`` and ``_request`` (overridden, verified on sentry-sdk
  2.20 through 2.76): the transport's public hooks say what is lost, never what Sentry accepted.
  Fallback: the Sentry bridge counts an event ``sent`` when sentry-sdk's transport queued it.
- ``BoundedAttributes._dict`` of a ``ReadWriteLogRecord`` and ``Logger._log_record_limits``: the
  log bridge hands ``Logger.emit`` a record whose attributes it built clean (plain ``str``/
  numbers), instead of the SDK cleaning each one again (about 3 us of a 20 us record).
  Fallback: ``Logger.emit(attributes=...)``.
- ``OTLPSpanExporter._translate_data``, ``_stub`` and ``_client`` (overridden by
  ``flowtel._export._otlp_grpc``): span export sends bytes flowtel encoded and scrubbed in one
  pass (encoding 0.19x the SDK's per span), keeping the SDK's retries, channel and headers.
  Checked by :func:`otlp_grpc_bytes_hooks_ok`. Fallback: the SDK's exporter, scrubbed before.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Mapping
from typing import Any, Final

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.metrics import MeterProvider
from opentelemetry.sdk.metrics import Histogram
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.util.types import AttributeValue

__all__ = [
    "API_PROXY_METER_PROVIDER",
    "HISTOGRAM_INSTRUMENT_CLASS",
    "SDK_SPAN_CLASS",
    "direct_span_reads",
    "log_record_limits",
    "preset_log_record",
    "preset_log_records_ok",
    "reader_collect_hooks",
    "sentry_send_hooks",
    "span_attribute_dict_ok",
    "write_preset",
]

_EMPTY_RESOURCE: Final = Resource.get_empty()
"""The probes' resource (the default, ``Resource.create()``, runs the resource detectors)."""

# --- 1. the SDK span's attribute dict ---------------------------------------------------------

SDK_SPAN_CLASS: type | None
try:
    from opentelemetry.sdk.trace import _Span as _SdkSpan

    SDK_SPAN_CLASS = _SdkSpan
except ImportError:  # pragma: no cover - a future SDK layout: the public path is used
    SDK_SPAN_CLASS = None


def span_attribute_dict_ok() -> bool:
    """Whether SDK spans keep attributes in a plain dict inside BoundedAttributes, so that
    :func:`write_preset` stores exactly what ``set_attributes`` would."""
    if SDK_SPAN_CLASS is None:
        return False
    try:
        span: Any = SDK_SPAN_CLASS("probe", SpanContext(1, 1, False), resource=_EMPTY_RESOURCE)
        span.start()
        stored: Any = span._attributes
        if stored.__class__ is not BoundedAttributes or type(stored._dict) is not dict:
            return False
        stored._dict.update({"probe.key": "v", "probe.n": 1})
        span.end()
        readable = span._readable_span()
        return dict(readable.attributes or {}) == {"probe.key": "v", "probe.n": 1} and (
            stored.dropped == 0
        )
    except Exception:  # pragma: no cover - an SDK that stores attributes differently
        return False


def write_preset(span: Any, preset: Mapping[str, AttributeValue]) -> None:
    """Store already-validated attributes on a just-started SDK span (see
    :func:`span_attribute_dict_ok`; the caller checked the span's class)."""
    span._attributes._dict.update(preset)


# --- 2. direct reads of a ReadableSpan --------------------------------------------------------


def _direct_reads_work() -> bool:
    """Whether the counting loop may read a ReadableSpan's fields directly."""
    try:
        scope = InstrumentationScope("flowtel.probe")
        status = Status(StatusCode.ERROR)
        attributes = BoundedAttributes(attributes={"k": "v"})
        context = SpanContext(1, 2, False, TraceFlags(TraceFlags.SAMPLED))
        parent = SpanContext(1, 3, True)
        span = ReadableSpan(
            name="probe",
            context=context,
            parent=parent,
            attributes=attributes,
            status=status,
            kind=SpanKind.SERVER,
            start_time=1,
            end_time=2,
            instrumentation_scope=scope,
            resource=_EMPTY_RESOURCE,
        )
        probe: Any = span
        return (
            probe._name == span.name == "probe"
            and probe._attributes is attributes
            and type(attributes._dict) is dict
            and attributes._dict == dict(span.attributes or {}) == {"k": "v"}
            and probe._status is span.status is status
            and (probe._start_time, probe._end_time) == (span.start_time, span.end_time) == (1, 2)
            and probe._kind is span.kind is SpanKind.SERVER
            and probe._parent is span.parent is parent
            and probe._context is span.context is context
        )
    except Exception:  # pragma: no cover - an SDK without these fields
        return False


direct_span_reads: Final = _direct_reads_work()
"""True when the error processor may read ``_name``, ``_attributes`` (its ``_dict``),
``_status``, ``_start_time``/``_end_time``, ``_kind``, ``_parent`` and ``_context`` of ended spans
instead of the copying properties."""


# --- 3. a MetricReader's collect callback (the MetricProducer stand-in) -----------------------

HISTOGRAM_INSTRUMENT_CLASS: type = Histogram
"""The class readers key their temporality table by for histograms."""
try:
    from opentelemetry.sdk.metrics._internal.instrument import _Histogram

    HISTOGRAM_INSTRUMENT_CLASS = _Histogram
except ImportError:  # pragma: no cover - a future SDK layout
    pass


def reader_collect_hooks(
    reader: Any,
) -> tuple[Callable[..., Any], Mapping[type, Any], Callable[[Any], None]] | None:
    """``(collect, temporality table, set_collect_callback)`` of a registered reader, or None
    when this SDK does not have them (the caller then records through an SDK instrument)."""
    collect = getattr(reader, "_collect", None)
    temporalities = getattr(reader, "_instrument_class_temporality", None)
    set_callback = getattr(reader, "_set_collect_callback", None)
    if callable(collect) and isinstance(temporalities, dict) and callable(set_callback):
        return collect, temporalities, set_callback
    return None


# --- 4. the API's proxy MeterProvider ---------------------------------------------------------


def _api_proxy_meter_provider() -> MeterProvider | None:
    try:
        from opentelemetry.metrics._internal import _PROXY_METER_PROVIDER
    except ImportError:  # pragma: no cover - API layout changed; every provider counts as real
        return None
    return _PROXY_METER_PROVIDER


API_PROXY_METER_PROVIDER: Final = _api_proxy_meter_provider()
"""The global MeterProvider until one is set (it forwards instruments to the real one later)."""


# --- 5. sentry-sdk's HTTP transport: one envelope's send and its HTTP answer -------------------

_SENTRY_HOOKED: dict[type, type | None] = {}
_SENTRY_LOCK = threading.Lock()


def sentry_send_hooks(base: type) -> type | None:
    """``base`` (sentry-sdk's ``HttpTransport``) reporting each send, or None on an SDK where the
    probe fails (the caller then counts at hand-over).

    The subclass calls ``self.flowtel_send(envelope, send)`` on the transport's worker thread
    for every envelope it picks up (``send()`` is sentry-sdk's own send, which may never be
    called), and ``self.flowtel_answer(status)`` with the HTTP status of each request; a
    subclass of it defines both. Verified once per ``base`` on a probe transport whose requests
    answer 200 without touching the network. Call only with sentry-sdk importable.
    """
    with _SENTRY_LOCK:
        if base not in _SENTRY_HOOKED:
            _SENTRY_HOOKED[base] = _hook_sentry(base) if _sentry_hooks_work(base) else None
        return _SENTRY_HOOKED[base]


def _hook_sentry(base: type) -> type:
    class Hooked(base):  # type: ignore[misc]
        def _send_envelope(self, envelope: Any) -> None:
            self.flowtel_send(envelope, lambda: super(Hooked, self)._send_envelope(envelope))

        def _request(self, *args: Any, **kwargs: Any) -> Any:
            response = super()._request(*args, **kwargs)
            status = getattr(response, "status", None)
            if isinstance(status, int):
                self.flowtel_answer(status)
            return response

    return Hooked


def _sentry_hooks_work(base: type) -> bool:
    """Send one envelope through ``base``'s own worker and check both hooks fired, in order."""
    try:
        from sentry_sdk.consts import DEFAULT_OPTIONS
        from sentry_sdk.envelope import Envelope

        class Answer:
            status, data = 200, b""
            headers: dict[str, str] = {}

            def close(self) -> None:
                return None

        class Offline(base):  # type: ignore[misc]
            def _request(self, *args: Any, **kwargs: Any) -> Any:
                return Answer()

        seen: list[object] = []

        class Probe(_hook_sentry(Offline)):  # type: ignore[misc]
            def flowtel_send(self, envelope: Any, send: Callable[[], None]) -> None:
                seen.append(len(envelope.items))
                send()
                seen.append("done")

            def flowtel_answer(self, status: int) -> None:
                seen.append(status)

        options = dict(DEFAULT_OPTIONS, dsn="http://probe@127.0.0.1:9/1", transport_queue_size=2)
        transport = Probe(options)
        envelope = Envelope()
        envelope.add_event({"event_id": "0" * 32, "level": "error", "message": "probe"})
        transport.capture_envelope(envelope)
        transport.flush(5.0)
        transport.kill()
        return seen == [1, 200, "done"]
    except Exception:  # pragma: no cover - an SDK that sends differently: count at hand-over
        return False


# --- 6. SDK log records built with attributes that are clean already ---------------------------

_PLAIN_VALUE_TYPES: Final = frozenset({str, int, float, bool})
_STR_TYPE: Final = frozenset({str})


def log_record_limits(logger: Any) -> Any | None:
    """The ``LogRecordLimits`` the SDK ``logger`` gives each record it builds, or None if unknown.

    Newer SDKs keep the provider's limits on each logger (``_log_record_limits``); 1.41 gives
    every record a default ``LogRecordLimits()`` (read from the environment), which one built
    here equals. Anything else: None, and the caller emits through the public path.
    """
    import inspect

    from opentelemetry.sdk._logs import LogRecordLimits, ReadWriteLogRecord

    limits = getattr(logger, "_log_record_limits", None)
    if isinstance(limits, LogRecordLimits):
        return limits
    build = inspect.signature(ReadWriteLogRecord._from_api_log_record).parameters
    return LogRecordLimits() if limits is None and "limits" not in build else None


def preset_log_record(
    record: Any, logger: Any, limits: Any, attributes: Mapping[str, AttributeValue]
) -> Any | None:
    """The ``ReadWriteLogRecord`` the SDK ``logger`` would build from ``record`` and
    ``attributes``, with the attributes stored as they are instead of cleaned one by one.

    ``record`` is an API ``LogRecord`` without attributes. None when an attribute needs the
    SDK's cleaning (a key that is not a non-empty ``str``, a value that is not a plain
    ``str``/``int``/``float``/``bool``, a string over the length limit, more attributes than
    the count limit): the caller then emits through the public path. Hand the result to
    ``logger.emit`` (see :func:`preset_log_records_ok`).
    """
    values = attributes.values()
    if (
        not _PLAIN_VALUE_TYPES.issuperset(map(type, values))
        or not _STR_TYPE.issuperset(map(type, attributes))
        or "" in attributes
    ):
        return None
    writable = _read_write_log_record()(
        log_record=record,
        resource=logger.resource,
        instrumentation_scope=logger.instrumentation_scope,
        limits=limits,
    )
    bounded: Any = record.attributes
    maxlen, max_value_len = bounded.maxlen, bounded.max_value_len
    if maxlen is not None and len(attributes) > maxlen:
        return None
    if max_value_len is not None and any(type(v) is str and len(v) > max_value_len for v in values):
        return None
    bounded._dict.update(attributes)
    return writable


@functools.cache
def _read_write_log_record() -> Any:
    from opentelemetry.sdk._logs import ReadWriteLogRecord

    return ReadWriteLogRecord


@functools.cache
def preset_log_records_ok() -> bool:
    """Whether a record from :func:`preset_log_record` reaches the processors exactly as the
    public ``logger.emit(attributes=...)`` record does (same attributes, limits, resource and
    scope, nothing dropped). Verified once, on a probe provider."""
    try:
        from opentelemetry._logs import LogRecord
        from opentelemetry.metrics import NoOpMeterProvider
        from opentelemetry.sdk._logs import LoggerProvider, LogRecordProcessor
        from opentelemetry.sdk.resources import Resource

        seen: list[Any] = []

        class Keep(LogRecordProcessor):
            def on_emit(self, log_record: Any) -> None:
                seen.append(log_record)

            def shutdown(self) -> None:
                return None

            def force_flush(self, timeout_millis: int = 30_000) -> bool:
                return True

        provider = LoggerProvider(
            resource=Resource({"probe": "yes"}),
            shutdown_on_exit=False,
            meter_provider=NoOpMeterProvider(),
        )
        provider.add_log_record_processor(Keep())
        logger = provider.get_logger("flowtel.probe")
        attributes: dict[str, AttributeValue] = {"probe.s": "v", "probe.n": 1, "probe.b": True}
        logger.emit(body="b", attributes=attributes)
        limits = log_record_limits(logger)
        preset: Any = preset_log_record(LogRecord(body="b"), logger, limits, attributes)
        if limits is None or preset is None:
            return False
        logger.emit(preset)
        public, fast = seen
        a, b = public.log_record.attributes, fast.log_record.attributes
        return (
            fast is preset
            and list(a.items()) == list(b.items()) == list(attributes.items())
            and (a.maxlen, a.max_value_len, a.dropped) == (b.maxlen, b.max_value_len, b.dropped)
            and vars(public.limits) == vars(fast.limits)
            and fast.resource is public.resource
            and fast.instrumentation_scope is public.instrumentation_scope
        )
    except Exception:  # pragma: no cover - an SDK that builds records differently: public path
        return False


# --- 7. the OTLP/gRPC span exporter's request encoding ----------------------------------------


def otlp_grpc_bytes_hooks_ok(exporter_class: type) -> bool:
    """Whether the SDK's OTLP/gRPC span exporter still builds its request in
    ``_translate_data`` and sends it through ``_export``, the two places flowtel's encoding
    exporter replaces (the caller then checks the built exporter uses flowtel's stub)."""
    return all(
        callable(getattr(exporter_class, name, None)) for name in ("_translate_data", "_export")
    )
