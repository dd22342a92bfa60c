"""The Sentry loss ledger: every event is counted once, as ``sent`` or as ``dropped`` with why.

Why a ledger: an event passes three hands (flowtel's capture thread, sentry-sdk's transport
queue, the HTTP request), and each can lose it. ``sent`` is counted only when Sentry answered
2xx; what any hand still holds when the shutdown budget ends is counted ``shutdown_timeout``,
never ``sent``, and is not counted again if its answer comes later.

Each event holds one *pending* slot from the moment it is accepted (queued for capture, or
handed to the transport by sentry-sdk's own integrations) until it is settled. Which event a
loss belongs to is known from where it is reported: a thread inside a :meth:`SentryLedger.scope`
(a capture job, a hand-over, a send job) settles that scope's events; a loss reported elsewhere
(a duplicate seen in ``on_end``, a full capture queue) was never pending and is only counted.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from flowtel import semconv
from flowtel.sentry._outcomes import SentryDropReason, SentryOutcome

__all__ = ["Scope", "SentryLedger"]


class Scope:
    """Events one thread is working on: ``remaining`` of them are not settled yet.

    ``status`` is the HTTP status Sentry answered (send jobs only).
    """

    __slots__ = ("remaining", "status")

    def __init__(self, remaining: int) -> None:
        self.remaining = remaining
        self.status: int | None = None


class SentryLedger:
    """Counts ``flowtel.sentry.events``; thread-safe; never raises into its callers.

    Args:
        add: adds ``n`` with attributes to the counter (the bridge's ``Counter.add``).
    """

    def __init__(self, add: Callable[[int, dict[str, str]], None]) -> None:
        self._add = add
        self._lock = threading.Lock()
        self._local = threading.local()
        self._pending = 0
        self._closed = False

    # -- state ---------------------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        """True once :meth:`expire` ran: nothing pending is sent or counted any more."""
        return self._closed

    @property
    def pending(self) -> int:
        """Events accepted and not settled yet."""
        return self._pending

    def current(self) -> Scope | None:
        """The innermost scope of this thread, if any."""
        return getattr(self._local, "scope", None)

    def reset_after_fork(self) -> None:
        """In a forked child: the parent's pending events are the parent's to count."""
        self._lock = threading.Lock()
        self._local = threading.local()
        self._pending = 0

    # -- accepting -----------------------------------------------------------------------------
    def open(self, n: int = 1) -> None:
        """``n`` events were accepted; they stay pending until settled or expired."""
        with self._lock:
            if not self._closed:
                self._pending += n

    def hand_over(self, n: int) -> None:
        """sentry-sdk's transport received ``n`` events: a capture job's event stays pending
        (the transport settles it now); events from other integrations are opened here."""
        scope = self.current()
        taken = min(n, scope.remaining) if scope is not None else 0
        if scope is not None:
            scope.remaining -= taken
        if n > taken:
            self.open(n - taken)

    @contextmanager
    def scope(self, events: int, leftover: SentryDropReason | None = None) -> Iterator[Scope]:
        """Attribute losses reported on this thread to ``events`` pending events.

        At exit, events the scope neither settled nor handed on are counted as dropped with
        ``leftover`` (if given); else they stay pending (the caller settles them).
        """
        outer = self.current()
        scope = Scope(events)
        self._local.scope = scope
        try:
            yield scope
        finally:
            self._local.scope = outer
            if leftover is not None and scope.remaining > 0:
                self.settle(scope, SentryOutcome.DROPPED, leftover, scope.remaining)

    # -- settling ------------------------------------------------------------------------------
    def count(self, outcome: SentryOutcome, reason: SentryDropReason | None, n: int = 1) -> None:
        """Count ``n`` events; inside a scope they are that scope's pending events."""
        scope = self.current()
        tracked = min(n, scope.remaining) if scope is not None else 0
        if scope is not None and tracked > 0:
            self.settle(scope, outcome, reason, tracked)
        if n > tracked:
            self._emit(outcome, reason, n - tracked)

    def settle(
        self, scope: Scope, outcome: SentryOutcome, reason: SentryDropReason | None, n: int
    ) -> None:
        """``n`` of ``scope``'s pending events are final; ignored once expired."""
        n = min(n, scope.remaining)
        if n <= 0:
            return
        scope.remaining -= n
        with self._lock:
            if self._closed:
                return  # counted as shutdown_timeout already
            self._pending = max(0, self._pending - n)
        self._emit(outcome, reason, n)

    def cancel(self, reason: SentryDropReason, n: int = 1) -> None:
        """``n`` events just opened were refused after all (e.g. a full queue)."""
        self.settle(Scope(n), SentryOutcome.DROPPED, reason, n)

    def answered(self, scope: Scope) -> None:
        """A send job ended: the rest of its events are settled by Sentry's answer."""
        status, left = scope.status, scope.remaining
        if status is not None and 200 <= status < 300:
            self.settle(scope, SentryOutcome.SENT, None, left)
        elif status == 429:
            self.settle(scope, SentryOutcome.DROPPED, SentryDropReason.RATE_LIMITED, left)
        else:  # an error status, or no answer and no loss reported: not accepted
            self.settle(scope, SentryOutcome.DROPPED, SentryDropReason.SEND_ERROR, left)

    def expire(self) -> int:
        """The shutdown budget ended: count every pending event as ``shutdown_timeout``.

        Returns how many. Later settlements of these events are ignored, so each one is
        counted once even if Sentry answers after all.
        """
        with self._lock:
            if self._closed:
                return 0
            self._closed = True
            lost, self._pending = self._pending, 0
        if lost:
            self._emit(SentryOutcome.DROPPED, SentryDropReason.SHUTDOWN_TIMEOUT, lost)
        return lost

    def _emit(self, outcome: SentryOutcome, reason: SentryDropReason | None, n: int) -> None:
        attrs = {semconv.SENTRY_OUTCOME: outcome.value}
        if reason is not None:
            attrs[semconv.SENTRY_REASON] = reason.value
        self._add(n, attrs)
