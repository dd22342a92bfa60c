"""In-process tail sampling: keep whole local traces that failed, were slow, or were asked for.

Why in-process: the OpenTelemetry Python SDK decides at span start (head sampling), before
anything has failed; the collector's tail sampling needs a gateway tier with sticky routing by
trace id. :class:`TailSamplingProcessor` wraps the export processors. Spans of a trace that the
head rate picked (or whose upstream parent was sampled, W3C ``traceparent``) pass straight
through. Spans of any other trace are recorded (RECORD_ONLY) and buffered until the trace's
local root span ends; then the whole local trace is exported, when a rule matched, or dropped.

Bounds: at most ``max_traces`` undecided traces and ``max_spans`` buffered spans. At either cap
the oldest undecided trace is decided now: exported if a rule already matched, else dropped as
the head rate decided (counted as ``overflow``); the buffer never grows. A trace whose root has
not ended after ``root_timeout_s`` is decided the same way (``timeout``). Recent decisions are
remembered, so a span that ends after its root follows its trace.

What it cannot do: spans of other services are not kept by this process's decision (their
``traceparent`` said "not sampled"); combine it with the collector's tail sampling for that.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Final

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.context import Context
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.trace import SpanContext, StatusCode, TraceFlags

from flowtel import semconv
from flowtel._core._sampling import Sampling
from flowtel.tracing import _keep

if TYPE_CHECKING:
    from flowtel._core._telemetry import Telemetry

__all__ = ["TailSamplingProcessor"]

_log = logging.getLogger("flowtel.sampling")
_ERROR: Final = StatusCode.ERROR
_EXCEPTION: Final = semconv.EVENT_EXCEPTION
_SAMPLED: Final = TraceFlags(TraceFlags.SAMPLED)
_REMEMBERED: Final = 8192
"""Recent decisions kept for spans that end after their local root."""

_created: TailSamplingProcessor | None = None


class _Trace:
    """An undecided local trace: its buffered spans and the first rule that matched."""

    __slots__ = ("reason", "since_s", "spans")

    def __init__(self, since_s: float) -> None:
        self.spans: list[ReadableSpan] = []
        self.reason: str | None = None
        self.since_s = since_s


class TailSamplingProcessor(SpanProcessor):
    """Buffers the spans of undecided traces and hands kept traces, whole, to its exporters.

    ``wants_sampled_out_spans``: it buffers every span, sampled or not (see tracing._light).

    Threading: ``on_end`` may run on any thread; it holds one lock for a few dictionary
    operations, and calls the export processors outside it. It never raises.

    Args:
        rules: the rules and bounds (``configure_telemetry(sampling=...)``).
        clock: monotonic seconds, for root timeouts; injectable for tests.
    """

    wants_sampled_out_spans = True

    def __init__(self, rules: Sampling, clock: Callable[[], float] = time.monotonic) -> None:
        global _created
        self.rules = rules
        self._clock = clock
        self._exporters: list[SpanProcessor] = []
        self._lock = threading.Lock()
        self._open: OrderedDict[int, _Trace] = OrderedDict()
        self._decided: OrderedDict[int, bool] = OrderedDict()
        self._buffered = 0
        self._slow_ns = None if rules.slow_root_s is None else int(rules.slow_root_s * 1e9)
        self.decisions: dict[tuple[str, str], int] = {}
        """Traces decided so far, per (decision, reason): what ``flowtel.sampling.traces``
        counts. Head-sampled traces pass through undecided and are not counted here."""
        self._failure_logged = False
        _created = self

    def add_exporter(self, span_processor: SpanProcessor) -> None:
        """Wrap an export processor: it receives head-sampled spans and kept traces."""
        self._exporters.append(span_processor)

    # -- rules -------------------------------------------------------------------------------

    def keep(self, trace_id: int) -> bool:
        """Keep the local trace ``trace_id`` (``flowtel.keep_trace()``); False if too late."""
        with self._lock:
            decided = self._decided.get(trace_id)
            if decided is not None:
                return decided
            trace = self._open.get(trace_id)
            if trace is None:
                trace = self._open[trace_id] = _Trace(self._clock())
                overflow = self._over_caps()
            else:
                overflow = []
            if trace.reason is None:
                trace.reason = "keep_trace"
        self._export(overflow)
        return True

    def will_export(self, trace_id: int) -> bool:
        """Whether the trace was exported, or will be when its root ends (a rule matched)."""
        with self._lock:
            decided = self._decided.get(trace_id)
            if decided is not None:
                return decided
            trace = self._open.get(trace_id)
            return trace is not None and trace.reason is not None

    # -- SpanProcessor -----------------------------------------------------------------------

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        for processor in self._exporters:
            processor.on_start(span, parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        """Pass a sampled span on; buffer any other until its trace is decided. Never raises."""
        try:
            context = span.context
            if context is None:
                return
            if context.trace_flags.sampled:
                for processor in self._exporters:
                    processor.on_end(span)
                return
            self._export(self._buffer(span, context.trace_id))
        except Exception:
            if not self._failure_logged:
                self._failure_logged = True
                _log.exception("flowtel.sampling: could not sample a span; it is dropped")

    def _buffer(self, span: ReadableSpan, trace_id: int) -> list[ReadableSpan]:
        """Buffer ``span`` and decide what can be; return the spans to export now."""
        rules = self.rules
        failed = rules.errors and (
            span.status.status_code is _ERROR or any(e.name == _EXCEPTION for e in span.events)
        )
        parent = span.parent
        root = parent is None or parent.is_remote
        with self._lock:
            decided = self._decided.get(trace_id)
            if decided is not None:
                return [span] if decided else []
            now = self._clock()
            trace = self._open.get(trace_id)
            if trace is None:
                trace = self._open[trace_id] = _Trace(now)
            trace.spans.append(span)
            self._buffered += 1
            if failed and trace.reason is None:
                trace.reason = "error"
            out: list[ReadableSpan] = []
            if root:
                if trace.reason is None and self._slow_ns is not None:
                    start, end = span.start_time, span.end_time
                    if start is not None and end is not None and end - start >= self._slow_ns:
                        trace.reason = "slow"
                out = self._decide(trace_id, trace.reason or "head")
            out.extend(self._over_caps())
            out.extend(self._expired(now))
        return out

    def _decide(self, trace_id: int, reason: str) -> list[ReadableSpan]:
        """Close ``trace_id`` (caller holds the lock); its spans when kept, else nothing."""
        trace = self._open.pop(trace_id)
        self._buffered -= len(trace.spans)
        keep = trace.reason is not None
        self._decided[trace_id] = keep
        if len(self._decided) > _REMEMBERED:
            self._decided.popitem(last=False)
        key = ("kept" if keep else "dropped", reason if not keep else trace.reason or reason)
        self.decisions[key] = self.decisions.get(key, 0) + 1
        return trace.spans if keep else []

    def _over_caps(self) -> list[ReadableSpan]:
        """Decide the oldest traces while a cap is exceeded (caller holds the lock)."""
        out: list[ReadableSpan] = []
        rules = self.rules
        while self._open and (
            len(self._open) > rules.max_traces or self._buffered > rules.max_spans
        ):
            oldest = next(iter(self._open))
            out.extend(self._decide(oldest, "overflow"))
        return out

    def _expired(self, now: float) -> list[ReadableSpan]:
        """Decide traces whose root has not ended within the timeout (caller holds the lock)."""
        out: list[ReadableSpan] = []
        limit = now - self.rules.root_timeout_s
        while self._open:
            oldest, trace = next(iter(self._open.items()))
            if trace.since_s > limit:
                break
            out.extend(self._decide(oldest, "timeout"))
        return out

    def _export(self, spans: Iterable[ReadableSpan]) -> None:
        if not self._exporters:
            return
        for span in spans:
            sampled = _as_sampled(span)
            for processor in self._exporters:
                try:
                    processor.on_end(sampled)
                except Exception:
                    if not self._failure_logged:
                        self._failure_logged = True
                        _log.exception("flowtel.sampling: an export processor failed")

    def shutdown(self) -> None:
        """Decide every open trace (kept if a rule matched), then shut the exporters down."""
        with self._lock:
            out: list[ReadableSpan] = []
            for trace_id in list(self._open):
                out.extend(self._decide(trace_id, "shutdown"))
        self._export(out)
        for processor in self._exporters:
            processor.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Flush the exporters; traces whose root is still running stay buffered."""
        deadline = time.monotonic() + timeout_millis / 1000
        flushed = True
        for processor in self._exporters:
            remaining = max(0, int((deadline - time.monotonic()) * 1000))
            flushed = processor.force_flush(remaining) and flushed
        with self._lock:
            expired = self._expired(self._clock())
        self._export(expired)
        return flushed

    def observe(self, options: CallbackOptions) -> Iterable[Observation]:
        """The ``flowtel.sampling.traces`` counter."""
        with self._lock:
            items = list(self.decisions.items())
        return [
            Observation(n, {semconv.SAMPLING_DECISION: d, semconv.SAMPLING_REASON: r})
            for (d, r), n in items
        ]


def _as_sampled(span: ReadableSpan) -> ReadableSpan:
    """``span`` with the sampled flag set, so export processors take it (kept traces only)."""
    ctx = span.context
    flags = TraceFlags(ctx.trace_flags | TraceFlags.SAMPLED)
    context = SpanContext(ctx.trace_id, ctx.span_id, ctx.is_remote, flags, ctx.trace_state)
    # The SDK's bounded containers carry the dropped counts; the public properties copy them.
    raw: Any = span
    attributes = getattr(raw, "_attributes", None)
    if not isinstance(attributes, BoundedAttributes):
        attributes = span.attributes
    events = getattr(raw, "_events", None)
    links = getattr(raw, "_links", None)
    return ReadableSpan(
        name=span.name,
        context=context,
        parent=span.parent,
        resource=span.resource,
        attributes=attributes,
        events=events if events is not None else span.events,
        links=links if links is not None else span.links,
        kind=span.kind,
        status=span.status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


def _install(telemetry: Telemetry) -> None:
    """Make the processor built for ``telemetry`` the active one, and count its decisions."""
    sampler = _created
    if sampler is None:
        return
    _keep.activate(sampler)
    spec = semconv.metric(semconv.METRIC_SAMPLING_TRACES)
    meter = telemetry.meter_provider.get_meter("flowtel.sampling")
    meter.create_observable_counter(
        spec.name, [sampler.observe], unit=spec.unit, description=spec.description
    )

    telemetry.add_shutdown_callback(lambda: _keep.deactivate(sampler))
