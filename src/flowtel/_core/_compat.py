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
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.metrics import MeterProvider
from opentelemetry.sdk.metrics import Histogram
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.util.types import AttributeValue

__all__ = [
    "API_PROXY_METER_PROVIDER",
    "HISTOGRAM_INSTRUMENT_CLASS",
    "SDK_SPAN_CLASS",
    "direct_span_reads",
    "reader_collect_hooks",
    "sentry_send_hooks",
    "span_attribute_dict_ok",
    "write_preset",
]

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
        from opentelemetry.sdk.resources import Resource

        span: Any = SDK_SPAN_CLASS("probe", SpanContext(1, 1, False), resource=Resource.get_empty())
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
