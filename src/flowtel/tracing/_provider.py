"""flowtel's TracerProvider: the SDK's, plus what lets ``@traced`` skip re-validating attributes.

Why: the attributes ``@traced`` puts on every span (``code.*``, component, operation, the
decorator's ``attributes=``) are fixed at decoration time, yet the SDK validates them again on
every call, inside the span constructor: about 4 µs of a 28 µs span on the CI machine. ``@traced``
validates them once per configuration instead (:func:`preset_attributes`) and writes them into the
span's attribute dict right after it starts. That is only invisible to other code when

- the SDK stores span attributes the way ``_compat.span_attribute_dict_ok`` verified on a probe,
- no span processor looks at attributes in ``on_start`` (tracked here: processors from flowtel and
  the SDK's batch/simple processors do not; anything else turns the shortcut off), and
- the sampler ignores attributes (flowtel's sampler does; it is the only one flowtel installs).

Otherwise ``@traced`` passes its attributes to ``start_span`` like any instrumentation.

The head sampler lives here too (:class:`RatioSampler`): parent-based ratio sampling that
*records* what it does not export. Why RECORD_ONLY instead of DROP: flowtel's error statistics
and RED metrics are computed from every finished span in a SpanProcessor. A sampled-out span
that is still recorded reaches ``on_end`` (so it is counted) but carries no SAMPLED flag, so
export processors skip it. That makes the statistics exact at any sample rate, at the cost of
building the span object. With ``count_unsampled=False`` the sampler drops instead.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any, Final

from opentelemetry.context import Context
from opentelemetry.sdk.trace import SpanLimits, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind, TraceState, get_current_span
from opentelemetry.util.types import Attributes, AttributeValue

from flowtel._core._compat import span_attribute_dict_ok
from flowtel._core._telemetry import HUB

__all__ = ["FlowtelTracerProvider", "RatioSampler", "preset_attributes"]

_SDK_BLIND: Final = (BatchSpanProcessor, SimpleSpanProcessor)
"""SDK processors whose ``on_start`` never reads attributes (exact types: subclasses may)."""


def _reads_attributes_on_start(processor: SpanProcessor) -> bool:
    kind = type(processor)
    if kind in _SDK_BLIND:
        return False
    # flowtel's own processors (batch, console, errors, Sentry) read no attributes in on_start.
    return not kind.__module__.startswith("flowtel.")


def _wants_sampled_out_spans(processor: SpanProcessor) -> bool:
    """Whether ``processor`` may look at spans that are recorded but not sampled: the SDK's
    exporting processors and flowtel's own (which export, print or count them) do not; tail
    sampling buffers every span, and anything else might."""
    kind = type(processor)
    if kind in _SDK_BLIND:
        return False
    if getattr(processor, "wants_sampled_out_spans", False):  # flowtel's tail sampler
        return True
    return not kind.__module__.startswith("flowtel.")


class FlowtelTracerProvider(TracerProvider):
    """The SDK TracerProvider, tracking whether span attributes may be written after start."""

    def __init__(self, *, span_limits: SpanLimits, **kwargs: Any) -> None:
        super().__init__(span_limits=span_limits, **kwargs)
        self.limits = span_limits
        self.presets_allowed = True
        """False once a processor that may read attributes in ``on_start`` was added."""
        self.light_allowed = True
        """False once a processor that may want sampled-out spans was added (see _light)."""
        self.light_counter: SpanProcessor | None = None
        """The error processor: it counts the sampled-out calls ``@traced`` does not record."""
        self._flowtel_lock = threading.Lock()

    def add_span_processor(self, span_processor: SpanProcessor) -> None:
        """Add ``span_processor``; one that may read attributes in ``on_start`` ends presets."""
        super().add_span_processor(span_processor)
        presets = not _reads_attributes_on_start(span_processor)
        light = not _wants_sampled_out_spans(span_processor)
        if not (presets and light):
            with self._flowtel_lock:
                was = (self.presets_allowed, self.light_allowed)
                self.presets_allowed = self.presets_allowed and presets
                self.light_allowed = self.light_allowed and light
                if (self.presets_allowed, self.light_allowed) != was:
                    HUB.invalidate()  # @traced sites pick up the change

    def light_mode(self) -> Any:
        """A :class:`~flowtel.tracing._light.LightMode` when sampled-out ``@traced`` calls may
        be counted without an SDK span: flowtel's ratio sampler recording what it does not
        sample, and no processor that would look at such spans; else None."""
        from flowtel.tracing._light import LightMode

        sampler = self.sampler
        if not (
            self.light_allowed
            and isinstance(sampler, RatioSampler)
            and sampler.records_unsampled
            and sampler.rate < 1.0
        ):
            return None
        return LightMode(self.light_counter, sampler.rate, sampler.parent_based)


_layout: bool | None = None


def preset_attributes(
    provider: object, attributes: Mapping[str, AttributeValue]
) -> dict[str, AttributeValue] | None:
    """``attributes`` exactly as the SDK would store them on ``provider``'s spans, if allowed.

    None means: pass them to ``start_span`` instead (not flowtel's provider, a processor that
    reads attributes at start, more attributes than the span limit, or an unexpected value).
    """
    global _layout
    if not isinstance(provider, FlowtelTracerProvider) or not provider.presets_allowed:
        return None
    if _layout is None:
        _layout = span_attribute_dict_ok()
    if not _layout:
        return None
    limit = provider.limits.max_span_attributes
    if limit is not None and len(attributes) > limit:
        return None
    max_len = provider.limits.max_span_attribute_length
    preset: dict[str, AttributeValue] = {}
    for key, value in attributes.items():
        if not key or not isinstance(key, str):
            return None
        if isinstance(value, str):
            preset[key] = value if max_len is None else value[:max_len]
        elif isinstance(value, bool | int | float):
            preset[key] = value
        else:
            return None  # sequences and the rest: let the SDK clean them
    return preset


_TRACE_ID_LIMIT = (1 << 64) - 1


class RatioSampler(Sampler):
    """Parent-based (optionally) trace-id-ratio sampler with a RECORD_ONLY fallback.

    Thread-safe and allocation-light: it is called for every span start.

    Args:
        rate: fraction of root traces to sample, 0..1.
        parent_based: follow the parent's sampled flag (local or remote, e.g. W3C traceparent).
        record_unsampled: return RECORD_ONLY instead of DROP for the sampled-out share.
    """

    def __init__(self, rate: float, *, parent_based: bool = True, record_unsampled: bool = True):
        self._rate = rate
        self._bound = round(rate * (_TRACE_ID_LIMIT + 1))
        self._parent_based = parent_based
        self._unsampled = Decision.RECORD_ONLY if record_unsampled else Decision.DROP

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        # The SDK builds the span's attributes from the sampling result, so pass them through.
        parent = get_current_span(parent_context).get_span_context()
        if parent.is_valid:
            if self._parent_based:
                decision = (
                    Decision.RECORD_AND_SAMPLE if parent.trace_flags.sampled else self._unsampled
                )
            else:
                decision = self._ratio(trace_id)
            return SamplingResult(decision, attributes, parent.trace_state)
        return SamplingResult(self._ratio(trace_id), attributes)

    @property
    def rate(self) -> float:
        """The fraction of root traces sampled."""
        return self._rate

    @property
    def parent_based(self) -> bool:
        """Whether a parent's sampled flag decides."""
        return self._parent_based

    @property
    def records_unsampled(self) -> bool:
        """Whether sampled-out spans are recorded (so that they are counted)."""
        return self._unsampled is Decision.RECORD_ONLY

    def _ratio(self, trace_id: int) -> Decision:
        if trace_id & _TRACE_ID_LIMIT < self._bound:
            return Decision.RECORD_AND_SAMPLE
        return self._unsampled

    def get_description(self) -> str:
        mode = "ParentBased" if self._parent_based else "Root"
        return f"flowtel.RatioSampler{{{mode},rate={self._rate},unsampled={self._unsampled.name}}}"
