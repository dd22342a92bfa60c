"""Sentry bridge: every exception recorded on a span becomes exactly one Sentry event.

OpenTelemetry stays the source of truth; Sentry gets error events only (no Sentry performance
tracing). :class:`SentryBridge` is a ``SpanProcessor``: in ``on_end`` it reads the span's
``exception`` events and sends one Sentry event per exception *occurrence*, attributed to the
innermost span that recorded it, carrying the OTel ``trace_id``/``span_id`` so a Sentry issue
links to its trace in Tempo/Grafana.

Why dedupe is needed: one raised exception is recorded by every span it escapes (nested
``@traced`` functions, the FastAPI server span) and may also be logged with
``logger.exception``. Occurrences are recognised by object identity when the live exception is
at hand (``sys.exc_info()`` inside ``on_end``: flowtel ends spans inside the ``except`` block),
else by (trace, type, message, raise site) *and* span ancestry, so sibling spans failing the
same way still count separately.

sentry-sdk is imported only by :func:`install` / :meth:`SentryBridge.init_sentry`, never by
``import flowtel``.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from opentelemetry import metrics, trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import Event, ReadableSpan, Span, SpanProcessor

from flowtel import semconv
from flowtel._core._scrub import current_scrubber
from flowtel.sentry import _dedupe as dd
from flowtel.sentry import _event as ev
from flowtel.sentry import _sdk as sdkx
from flowtel.sentry._ledger import SentryLedger
from flowtel.sentry._outcomes import SentryDropReason, SentryOutcome, SentryTag
from flowtel.sentry._payload import build_payload, exported, link_trace

if TYPE_CHECKING:
    from types import ModuleType, TracebackType


__all__ = ["SentryBridge", "SentryDropReason", "SentryOutcome", "SentryTag"]

_log = logging.getLogger("flowtel.sentry")

_HINT_KEY: Final = "flowtel_span"  # marks events the bridge built itself
_MECHANISM: Final = "flowtel"


class _Capture(NamedTuple):
    """One event for the capture thread: what to report and the sentry scopes to report in."""

    span: ReadableSpan
    exc: BaseException | None
    tb: TracebackType | None  # as at span end: the exception keeps growing as it propagates
    event: Event | None
    handled: bool
    mechanism: str
    message: str | None
    scopes: tuple[Any, Any]  # (current, isolation) sentry scopes of the span's thread


class SentryBridge(SpanProcessor):
    """Sends one Sentry event per exception occurrence recorded on spans.

    Threading contract: ``on_end`` may run on any thread, concurrently. It only dedupes and
    queues (O(1), no I/O): building, scrubbing and serialising the event happen on one capture
    thread, sending on sentry-sdk's transport thread. It never raises; internal failures are
    logged once and counted as ``bridge_error``. Each event is counted once, ``sent`` only when
    Sentry answered 2xx (:mod:`~flowtel.sentry._ledger`). Memory is bounded: dedupe state keeps
    at most ``max_tracked`` entries, the capture queue ``max_queue`` events, deferred log
    events ``max_pending``.

    Args:
        environment: the Sentry ``environment`` tag when a span's resource has none.
        send_default_pii: also copy header/user/client-address attributes into events.
        meter_provider: where ``flowtel.sentry.events`` is counted (global provider if None).
        shutdown_timeout_s: how long :meth:`shutdown` waits for queued events to be sent
            (from :meth:`begin_shutdown`); what is left is counted ``shutdown_timeout``.
        max_tracked: bound of the dedupe and span-ancestry tables.
        max_pending: bound of ``logger.exception`` events held until their span ends.
        max_queue: bound of events waiting for the capture thread (more are dropped, counted).
        trace_url_template: a link to the trace in your tracing UI, ``{trace_id}`` and
            ``{span_id}`` substituted, e.g. a Grafana Explore URL; sent as
            ``contexts.otel.trace_url``.

    Raises:
        ConfigurationError: ``trace_url_template`` lacks ``{trace_id}`` or has other fields.
    """

    def __init__(
        self,
        *,
        environment: str | None = None,
        send_default_pii: bool = False,
        meter_provider: metrics.MeterProvider | None = None,
        shutdown_timeout_s: float = 2.0,
        max_tracked: int = 4096,
        max_pending: int = 256,
        max_queue: int = 256,
        trace_url_template: str | None = None,
    ) -> None:
        ev.check_url_template(trace_url_template)
        self._trace_url_template = trace_url_template
        self._environment = environment
        self._send_pii = send_default_pii
        self._shutdown_timeout_s = shutdown_timeout_s
        self._max_tracked = max_tracked
        self._max_pending = max_pending
        self._lock = threading.Lock()  # guards _pending
        self._occurrences = dd.OccurrenceLog(max_tracked)
        # id(exc) -> (exc, span id, log message) for logger.exception inside a live span
        self._pending: dict[int, tuple[BaseException, int, str | None]] = {}
        self._warned: set[str] = set()
        self._shutdown_started: float | None = None
        self._sdk: ModuleType | None = None
        self._client: Any = None
        self._worker: sdkx.CaptureWorker[_Capture] = sdkx.CaptureWorker(
            self._capture, max_queue=max_queue, name="flowtel-sentry-capture"
        )
        sdkx.reset_in_forked_children(self, SentryBridge._after_fork)
        meter = (meter_provider or metrics.get_meter_provider()).get_meter("flowtel.sentry")
        spec = semconv.metric(semconv.METRIC_SENTRY_EVENTS)
        self._events = meter.create_counter(spec.name, unit=spec.unit, description=spec.description)
        self._ledger = SentryLedger(self._add)

    # -- sentry-sdk set-up ---------------------------------------------------------------------
    def init_sentry(
        self,
        dsn: str,
        *,
        environment: str | None = None,
        sample_rate: float = 1.0,
        release: str | None = None,
        send_default_pii: bool = False,
        transport_queue_size: int = 100,
    ) -> None:
        """Initialise sentry-sdk for error events only, wired to this bridge.

        No performance tracing, no sentry OTel integration, no auto-enabled framework
        integrations (they would report the exceptions flowtel already reports). Kept: logging
        (breadcrumbs; ERROR records become events, deduped against span exceptions),
        excepthook and threading (crashes outside any span). Local variables are never captured.
        No atexit integration: it would close the client before this bridge's queue is drained;
        the tracer provider's shutdown (flowtel's exit hook) calls :meth:`shutdown` instead.

        Raises:
            ImportError: sentry-sdk is not installed.
        """
        from flowtel.sentry._init import init_sdk

        self._send_pii = send_default_pii
        if environment is not None:
            self._environment = environment
        self._sdk, self._client = init_sdk(
            self,
            dsn,
            sample_rate=sample_rate,
            release=release,
            send_default_pii=send_default_pii,
            transport_queue_size=transport_queue_size,
        )

    # -- SpanProcessor -------------------------------------------------------------------------
    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """Nothing to do at span start."""

    def on_end(self, span: ReadableSpan) -> None:
        """Report the span's exception events; never raises, never blocks on I/O."""
        if self._sdk is None:
            return
        if not span.events and not self._pending:
            # Nothing to report; only keep the ancestry of spans in traces that had errors.
            if self._occurrences.has_error_traces:
                self._occurrences.link_parent(span)
            return
        try:
            self._on_end(span)
        except Exception:  # never break the host app
            self._warn_once("on_end", "flowtel: Sentry bridge failed to report a span error")
            self._count(SentryOutcome.DROPPED, SentryDropReason.BRIDGE_ERROR)

    def begin_shutdown(self) -> None:
        """Start the shutdown clock (first call wins); ``Telemetry.shutdown()`` calls it first,
        so the budget is the pipeline's, not what the processors before this one left over."""
        if self._shutdown_started is None:
            self._shutdown_started = time.monotonic()

    def shutdown(self) -> None:
        """Capture and send what is queued, close sentry-sdk; bounded by ``shutdown_timeout_s``.

        Stops waiting a reserve before the budget ends (at most 0.25 s, 20 %) so the counts can
        still be exported; every event not answered by then is counted ``shutdown_timeout``.
        """
        self.begin_shutdown()
        budget = self._shutdown_timeout_s
        deadline = (self._shutdown_started or 0.0) + budget - min(0.25, budget * 0.2)
        self._worker.close(max(0.0, deadline - time.monotonic()))
        client, self._client = self._client, None
        try:
            if client is not None:
                client.flush(timeout=max(0.0, deadline - time.monotonic()))
        except Exception:
            self._warn_once("flush", "flowtel: flushing sentry-sdk failed")
        self._ledger.expire()
        try:
            if client is not None:
                sdkx.close_client(self._sdk, client)
        except Exception:
            self._warn_once("shutdown", "flowtel: closing sentry-sdk failed")

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Wait up to ``timeout_millis`` until queued events are built and sent."""
        deadline = time.monotonic() + timeout_millis / 1000
        drained = self._worker.drain(timeout_millis / 1000)
        client = self._client
        if client is None:
            return drained
        try:
            client.flush(timeout=max(0.0, deadline - time.monotonic()))
        except Exception:
            self._warn_once("flush", "flowtel: flushing sentry-sdk failed")
            return False
        return drained

    # -- sentry-sdk hooks ----------------------------------------------------------------------
    def before_send(self, event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any] | None:
        """sentry-sdk ``before_send``: dedupe, link to the OTel trace, scrub. Never raises.

        On failure the event is dropped rather than risk sending an unscrubbed payload.
        """
        try:
            return self._before_send(event, hint)
        except Exception:
            self._warn_once("before_send", "flowtel: Sentry before_send failed; event dropped")
            self._count(SentryOutcome.DROPPED, SentryDropReason.BRIDGE_ERROR)
            return None

    # -- internals -----------------------------------------------------------------------------
    def _on_end(self, span: ReadableSpan) -> None:
        ctx = span.context
        if ctx is None:
            return
        live = sys.exc_info()[1]
        for event in span.events:
            if event.name == semconv.EVENT_EXCEPTION:
                self._report(span, event, live)
        self._occurrences.link_parent(span)
        if self._pending:
            with self._lock:
                mine = [k for k, v in self._pending.items() if v[1] == ctx.span_id]
                entries = [self._pending.pop(k) for k in mine]
            for exc, _span_id, message in entries:
                if dd.was_reported(exc):
                    self._count(SentryOutcome.DROPPED, SentryDropReason.DUPLICATE)
                else:  # logged and swallowed: report it once, on the span that logged it
                    dd.mark_reported(exc)
                    self._send(span, exc, None, handled=True, mechanism="logging", message=message)

    def _report(self, span: ReadableSpan, event: Event, live: BaseException | None) -> None:
        ctx = span.context
        attrs = event.attributes or {}
        exc_type = str(attrs.get(semconv.EXCEPTION_TYPE, "Exception"))
        message = str(attrs.get(semconv.EXCEPTION_MESSAGE, ""))
        stacktrace = attrs.get(semconv.EXCEPTION_STACKTRACE)
        exc = ev.match_live(live, exc_type, message, current_scrubber())
        if exc is not None:
            site = ev.live_raise_site(exc)
        else:
            site = ev.parsed_raise_site(stacktrace) if isinstance(stacktrace, str) else None
        key = ev.Occurrence(ctx.trace_id, exc_type, message, site)
        if (exc is not None and dd.was_reported(exc)) or self._occurrences.reported_below(
            key, span
        ):
            self._occurrences.remember(key, span)
            self._count(SentryOutcome.DROPPED, SentryDropReason.DUPLICATE)
            return
        self._occurrences.remember(key, span)
        if exc is not None:
            dd.mark_reported(exc)
            with self._lock:
                pending = self._pending.pop(id(exc), None)
            if pending is not None:
                self._count(SentryOutcome.DROPPED, SentryDropReason.DUPLICATE)
        self._send(
            span,
            exc,
            event,
            handled=ev.is_handled(attrs),
            mechanism=_MECHANISM,
            message=None,
        )

    def _after_fork(self) -> None:
        """A forked child inherits no threads; locks may have been held mid-operation."""
        self._lock = threading.Lock()
        self._pending = {}
        self._occurrences.reset_after_fork()
        self._worker.reset_after_fork()
        self._ledger.reset_after_fork()
        self._shutdown_started = None

    def _send(
        self,
        span: ReadableSpan,
        exc: BaseException | None,
        event: Event | None,
        *,
        handled: bool,
        mechanism: str,
        message: str | None,
    ) -> None:
        sdk = self._sdk
        if sdk is None:
            return
        scopes = (sdk.get_current_scope(), sdk.get_isolation_scope())
        tb = exc.__traceback__ if exc is not None else None
        job = _Capture(span, exc, tb, event, handled, mechanism, message, scopes)
        self._ledger.open()  # before the capture thread can settle it
        if not self._worker.submit(job):
            self._ledger.cancel(SentryDropReason.QUEUE_FULL)

    def _capture(self, job: _Capture) -> None:
        """Build the event and hand it to sentry-sdk; runs on the capture thread.

        An event that sentry-sdk neither took nor reported lost (a closed client) is ``other``.
        """
        with self._ledger.scope(1, leftover=SentryDropReason.OTHER):
            self._capture_in_scope(job)

    def _capture_in_scope(self, job: _Capture) -> None:
        try:
            sdk = self._sdk
            if sdk is None:
                return
            payload = build_payload(
                job,
                sdk.get_client().options,
                send_pii=self._send_pii,
                environment=self._environment,
                url_template=self._trace_url_template,
            )
            exc = job.exc
            exc_info = (type(exc), exc, job.tb) if exc is not None else None
            current, isolation = job.scopes
            with sdk.scope.use_isolation_scope(isolation):
                current.capture_event(payload, hint={"exc_info": exc_info, _HINT_KEY: job.span})
        except Exception:
            self._warn_once("capture", "flowtel: Sentry bridge failed to build an event")
            self._count(SentryOutcome.DROPPED, SentryDropReason.BRIDGE_ERROR)

    def _before_send(self, event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any] | None:
        scrubber = current_scrubber()
        span = hint.get(_HINT_KEY)
        if isinstance(span, ReadableSpan):
            # Scope processors may have replaced the trace context with sentry's own ids.
            link_trace(event, span.context, ev.trace_context(span), self._trace_url_template)
            # Every field (transaction, tags, contexts, threads, ...); exceptions: at build.
            ev.scrub_event(event, scrubber, exceptions=False)
            return event
        else:
            exc_info = hint.get("exc_info")
            exc = exc_info[1] if isinstance(exc_info, tuple) and len(exc_info) == 3 else None
            current = trace.get_current_span()
            cctx = current.get_span_context()
            if isinstance(exc, BaseException):
                if dd.was_reported(exc):
                    self._count(SentryOutcome.DROPPED, SentryDropReason.DUPLICATE)
                    return None
                if "log_record" in hint and current.is_recording() and cctx.is_valid:
                    with self._lock:
                        if len(self._pending) < self._max_pending:
                            message = ev.log_message(hint["log_record"])
                            self._pending[id(exc)] = (exc, cctx.span_id, message)
                            exported(cctx)  # keep its trace (tail sampling): the event links it
                            return None  # reported when its span ends, unless a span does
                dd.mark_reported(exc)
            if cctx.is_valid:
                link_trace(event, cctx, None, self._trace_url_template)
        ev.scrub_event(event, scrubber)
        return event

    def _count(self, outcome: SentryOutcome, reason: SentryDropReason | None, n: int = 1) -> None:
        self._ledger.count(outcome, reason, n)

    def _add(self, n: int, attributes: dict[str, str]) -> None:
        try:
            self._events.add(n, attributes)
        except Exception:
            self._warn_once("count", "flowtel: counting Sentry events failed")

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            _log.warning(message, exc_info=True)
