"""Recognising one exception occurrence across the spans (and log calls) that saw it.

Why two mechanisms: when the live exception object is at hand (``sys.exc_info()`` in
``on_end``), identity is exact; flowtel marks the object once it is reported. When only the
span event's text is left, an :class:`~flowtel._sentry_event.Occurrence` key (trace, type,
message, raise site) recognises it, but only on an *ancestor* of the span that reported it.
Siblings failing the same way (retries) are separate occurrences.
"""

from __future__ import annotations

import contextlib
import threading
from collections import OrderedDict
from typing import Final, TypeVar

from opentelemetry.sdk.trace import ReadableSpan

from flowtel.sentry._event import Occurrence

_SENT_ATTR: Final = "__flowtel_sentry_sent__"  # set on exception objects already reported
_MAX_REPORTERS: Final = 16
_MAX_HOPS: Final = 256
_K = TypeVar("_K")
_V = TypeVar("_V")


def mark_reported(exc: BaseException) -> None:
    """Remember that ``exc`` was reported (exceptions with ``__slots__`` cannot be marked)."""
    with contextlib.suppress(Exception):
        setattr(exc, _SENT_ATTR, True)


def was_reported(exc: BaseException) -> bool:
    """True when ``exc`` itself was already reported to Sentry."""
    return getattr(exc, _SENT_ATTR, False) is True


class OccurrenceLog:
    """Which occurrences were reported by which spans, and the span tree of error traces.

    Thread-safe; every table is an LRU bounded by ``max_entries``. Parent links are kept only
    for traces that had an error, so spans of healthy traces cost a dict lookup.
    """

    def __init__(self, max_entries: int) -> None:
        self._max = max_entries
        self._lock = threading.Lock()
        self._reported: OrderedDict[Occurrence, list[int]] = OrderedDict()
        self._parents: OrderedDict[int, int] = OrderedDict()
        self._error_traces: OrderedDict[int, None] = OrderedDict()

    def reset_after_fork(self) -> None:
        """In a forked child: a fresh lock (the parent's may have been held mid-update)."""
        self._lock = threading.Lock()

    @property
    def has_error_traces(self) -> bool:
        """Whether any trace had an error recently (then span ancestry is being kept)."""
        return bool(self._error_traces)

    def link_parent(self, span: ReadableSpan) -> None:
        """Record ``span``'s parent when its trace had an error."""
        ctx, parent = span.context, span.parent
        if ctx is None or parent is None or ctx.trace_id not in self._error_traces:
            return
        with self._lock:
            self._parents[ctx.span_id] = parent.span_id
            _trim(self._parents, self._max)

    def reported_below(self, key: Occurrence, span: ReadableSpan) -> bool:
        """True when a descendant of ``span`` already reported ``key``."""
        span_id = span.context.span_id
        with self._lock:
            for reporter in self._reported.get(key, ()):
                node, hops = self._parents.get(reporter), 0
                while node is not None and hops < _MAX_HOPS:
                    if node == span_id:
                        return True
                    node, hops = self._parents.get(node), hops + 1
        return False

    def remember(self, key: Occurrence, span: ReadableSpan) -> None:
        """Record that ``span`` recorded ``key`` (reported it, or saw it as a duplicate)."""
        ctx = span.context
        with self._lock:
            reporters = self._reported.setdefault(key, [])
            if len(reporters) < _MAX_REPORTERS:
                reporters.append(ctx.span_id)
            self._reported.move_to_end(key)
            self._error_traces[ctx.trace_id] = None
            self._error_traces.move_to_end(ctx.trace_id)
            _trim(self._reported, self._max)
            _trim(self._error_traces, self._max)


def _trim(table: OrderedDict[_K, _V], max_entries: int) -> None:
    while len(table) > max_entries:
        table.popitem(last=False)
