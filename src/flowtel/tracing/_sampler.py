"""The head sampler: parent-based ratio sampling that *records* what it does not export.

Why RECORD_ONLY instead of DROP: flowtel's error statistics and RED metrics are computed from
every finished span in a SpanProcessor. A sampled-out span that is still recorded reaches
``on_end`` (so it is counted) but carries no SAMPLED flag, so export processors skip it. That makes
the statistics exact at any sample rate, at the cost of building the span object. With
``count_unsampled=False`` the sampler drops instead, for the lowest overhead.
"""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.context import Context
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind, TraceState, get_current_span
from opentelemetry.util.types import Attributes

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
