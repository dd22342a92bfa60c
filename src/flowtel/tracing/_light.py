"""Sampled-out ``@traced`` calls, counted without building an SDK span.

Why: flowtel's statistics are exact at any sample rate because every call is counted, sampled or
not. Recording a sampled-out span only to count it costs the SDK's whole span machinery, about
twice what raw OpenTelemetry pays to drop the call. Where nothing but flowtel's error processor
would look at a sampled-out span, a ``@traced`` call decides the sampling itself, exactly as
flowtel's :class:`~flowtel.tracing._provider.RatioSampler` would, and:

- when the call is sampled, starts the SDK span as usual, handing the SDK the very trace id the
  decision was made on (:class:`PrimedIds`), so the decision and the exported trace agree;
- when it is not, starts a :class:`CountedSpan`: a non-recording span (children see an unsampled
  parent, as with any sampler) whose end hands the error processor what it counts;
- when a sampled-out call fails, turns it into the SDK span it would have been (recorded, not
  sampled), so the Sentry bridge and the error statistics see the exception as before.

:meth:`FlowtelTracerProvider.light_mode <flowtel.tracing._provider.FlowtelTracerProvider>`
switches this off as soon as anything else might want sampled-out spans: a span processor that
is not flowtel's or the SDK's exporting ones, tail sampling, or another sampler.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any, Final

from opentelemetry import trace as trace_api
from opentelemetry.context import Context
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import (
    NonRecordingSpan,
    Span,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
)
from opentelemetry.util.types import AttributeValue

__all__ = ["CountedSpan", "LightMode", "PrimedIds"]

_TRACE_ID_LIMIT: Final = (1 << 64) - 1
_UNSAMPLED: Final = TraceFlags(TraceFlags.DEFAULT)
_UNSET: Final = Status(StatusCode.UNSET)
_INTERNAL: Final = SpanKind.INTERNAL


class PrimedIds(IdGenerator):
    """The provider's id generator, able to hand out one trace id chosen beforehand (per thread)."""

    def __init__(self, inner: IdGenerator) -> None:
        self.inner = inner
        self._primed = threading.local()

    def prime(self, trace_id: int | None) -> None:
        self._primed.trace_id = trace_id

    def generate_span_id(self) -> int:
        return self.inner.generate_span_id()

    def generate_trace_id(self) -> int:
        primed = getattr(self._primed, "trace_id", None)
        if primed is not None:
            self._primed.trace_id = None
            return int(primed)
        return self.inner.generate_trace_id()


class LightMode:
    """One provider's sampling decision, taken ahead of the SDK for ``@traced`` calls."""

    __slots__ = ("counter", "parent_based", "ratio_bound")

    def __init__(self, counter: Any, rate: float, parent_based: bool) -> None:
        self.counter = counter
        self.ratio_bound = round(rate * (_TRACE_ID_LIMIT + 1))
        self.parent_based = parent_based

    @staticmethod
    def ids(tracer: Any) -> PrimedIds:
        """The id generator ``tracer`` starts spans with (each SDK tracer holds its own)."""
        ids = tracer.id_generator
        if ids.__class__ is not PrimedIds:
            ids = tracer.id_generator = PrimedIds(ids)
        return ids

    def start(
        self,
        name: str,
        attributes: Mapping[str, AttributeValue],
        scope: InstrumentationScope,
        tracer: trace_api.Tracer,
    ) -> Span | None:
        """A counted, non-recording span when the call is sampled out; None (with the trace id
        primed for a root) when the SDK should start a real span."""
        ids = self.ids(tracer)
        parent = trace_api.get_current_span().get_span_context()
        if parent.is_valid:
            trace_id = parent.trace_id
            if self.parent_based:
                if parent.trace_flags.sampled:
                    return None
            elif trace_id & _TRACE_ID_LIMIT < self.ratio_bound:
                return None
            context = SpanContext(
                trace_id, ids.generate_span_id(), False, _UNSAMPLED, parent.trace_state
            )
            return CountedSpan(context, name, attributes, scope, parent, tracer, self)
        trace_id = ids.inner.generate_trace_id()
        if trace_id & _TRACE_ID_LIMIT < self.ratio_bound:
            ids.prime(trace_id)
            return None
        context = SpanContext(trace_id, ids.generate_span_id(), False, _UNSAMPLED)
        return CountedSpan(context, name, attributes, scope, None, tracer, self)


class CountedSpan(NonRecordingSpan):
    """A sampled-out ``@traced`` call: not recorded, but counted by the error processor at its
    end. It carries the fields the processor reads (see ``flowtel._core._compat``)."""

    def __init__(
        self,
        context: SpanContext,
        name: str,
        attributes: Mapping[str, AttributeValue],
        scope: InstrumentationScope,
        parent: SpanContext | None,
        tracer: trace_api.Tracer,
        mode: LightMode,
    ) -> None:
        super().__init__(context)
        self._name = name
        self._attributes: Mapping[str, AttributeValue] = attributes
        self._own_attributes = False
        self._status = _UNSET
        self._kind = _INTERNAL
        self._parent = parent
        self._start_time = time.time_ns()
        self._end_time: int | None = None
        self._tracer = tracer
        self._mode = mode
        self.instrumentation_scope = scope
        self.events = ()

    # What the error processor reads through the public path (its fallback) ----------------
    @property
    def name(self) -> str:
        return self._name

    @property
    def attributes(self) -> Mapping[str, AttributeValue]:
        return self._attributes

    @property
    def status(self) -> Status:
        return self._status

    @property
    def kind(self) -> SpanKind:
        return self._kind

    @property
    def parent(self) -> SpanContext | None:
        return self._parent

    @property
    def context(self) -> SpanContext:
        return self.get_span_context()

    @property
    def start_time(self) -> int:
        return self._start_time

    @property
    def end_time(self) -> int | None:
        return self._end_time

    # The Span API: attributes and status still count (error dimensions, a status set by hand)
    def set_attribute(self, key: str, value: Any) -> None:
        if not self._own_attributes:
            self._attributes, self._own_attributes = dict(self._attributes), True
        self._attributes[key] = value  # type: ignore[index]

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        for key, value in attributes.items():
            self.set_attribute(key, value)

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        if isinstance(status, StatusCode):
            status = Status(status, description)
        if status.status_code is not StatusCode.UNSET:
            self._status = status

    def end(self, end_time: int | None = None) -> None:
        if self._end_time is not None:
            return
        self._end_time = end_time or time.time_ns()
        counter = self._mode.counter
        if counter is not None:
            counter.on_end(self)

    def promote(self) -> Span:
        """The SDK span this call would have had: recorded, not sampled, same trace, same start."""
        self._end_time = -1  # never counted as itself
        parent = self._parent
        if parent is None:
            LightMode.ids(self._tracer).prime(self.get_span_context().trace_id)
            context: Context | None = Context()
        else:
            context = trace_api.set_span_in_context(NonRecordingSpan(parent), Context())
        try:
            span = self._tracer.start_span(
                self._name,
                context=context,
                attributes=self._attributes,
                start_time=self._start_time,
            )
        finally:
            LightMode.ids(self._tracer).prime(None)
        if self._status.status_code is StatusCode.ERROR:
            span.set_status(self._status)
        return span
