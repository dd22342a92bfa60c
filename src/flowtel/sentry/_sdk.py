"""The sentry-sdk-facing machinery of the Sentry bridge.

Why separate: :mod:`flowtel.sentry` decides *what* to report (dedupe, attribution); this module
deals with *how* sentry-sdk is driven without hurting the host app: a capture thread so the
span's thread never builds or serialises events, a transport that counts what Sentry accepted
and what is lost, and the scrubbing pass over every event sentry-sdk is about to send.
sentry-sdk objects arrive as arguments; nothing here imports it at module level.
"""

from __future__ import annotations

import importlib.util
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from flowtel._core import _compat
from flowtel._core._scrub import Scrubber
from flowtel.sentry import _event as ev
from flowtel.sentry._ledger import SentryLedger
from flowtel.sentry._outcomes import SDK_REASONS, SentryDropReason, SentryOutcome

_J = TypeVar("_J")


class CaptureWorker(Generic[_J]):
    """One daemon thread that runs ``handle(job)`` for queued jobs, in order.

    Why: building a Sentry event (frames, source context, scrubbing, serialisation) costs
    milliseconds; doing it in ``on_end`` would add that to every failing request. ``submit``
    is O(1) and never blocks; a full queue refuses the job (the caller counts the drop).
    Restarts its thread lazily, e.g. in a forked child where the thread did not survive.
    """

    def __init__(self, handle: Callable[[_J], None], *, max_queue: int, name: str) -> None:
        self._handle = handle
        self._max_queue = max_queue
        self._name = name
        self._queue: deque[_J] = deque()
        self._cond = threading.Condition()
        self._unfinished = 0
        self._closed = False
        self._thread: threading.Thread | None = None

    def reset_after_fork(self) -> None:
        """In a forked child: fresh lock and queue (the parent's may have been mid-use)."""
        self._cond = threading.Condition()
        self._queue = deque()
        self._unfinished = 0
        self._thread = None

    def submit(self, job: _J) -> bool:
        """Queue ``job``; False when the queue is full or the worker is closed."""
        with self._cond:
            if self._closed or self._unfinished >= self._max_queue:
                return False
            self._queue.append(job)
            self._unfinished += 1
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            self._cond.notify_all()
        return True

    def drain(self, timeout_s: float) -> bool:
        """Wait until every queued job has been handled; False at the deadline."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while self._unfinished:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
        return True

    def close(self, timeout_s: float) -> bool:
        """Handle what is queued (bounded by ``timeout_s``), then stop the thread."""
        drained = self.drain(timeout_s)
        with self._cond:
            self._closed = True
            self._queue.clear()
            self._cond.notify_all()
        return drained

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if not self._queue:
                    return
                job = self._queue.popleft()
            try:
                self._handle(job)
            finally:
                with self._cond:
                    self._unfinished -= 1
                    self._cond.notify_all()


def pii_options(send_default_pii: bool) -> dict[str, Any]:
    """sentry-sdk options for the PII opt-in, across SDK versions.

    Nothing when off: sentry-sdk's default is no PII. When on, newer SDKs (which deprecate
    ``send_default_pii``) get the equivalent ``data_collection``, still without frame variables.
    """
    if not send_default_pii:
        return {}
    if importlib.util.find_spec("sentry_sdk.data_collection") is not None:
        return {"data_collection": {"user_info": True, "stack_frame_variables": False}}
    return {"send_default_pii": True}


def sdk_reason(reason: str, answered: bool) -> SentryDropReason | None:
    """The drop reason for a loss sentry-sdk reports; None for ``before_send`` (the bridge
    dropped that event itself and counted why). sentry-sdk says ``network_error`` also when
    Sentry answered an error status: that is a ``send_error``."""
    if reason == "before_send":
        return None
    if reason == "network_error" and answered:
        return SentryDropReason.SEND_ERROR
    return SDK_REASONS.get(reason, SentryDropReason.OTHER)


def counting_transport(sentry_sdk: Any, ledger: SentryLedger) -> type[Any]:
    """sentry-sdk's HTTP transport, settling every error event it carries in ``ledger``.

    Sending, retries and rate limits stay sentry-sdk's own. An event is ``sent`` when Sentry
    answered 2xx to its envelope (through :func:`~flowtel._core._compat.sentry_send_hooks`; on
    an SDK where those hooks fail their probe, when the transport queued it). Losses come
    from the public ``record_lost_event``. After the ledger expired, queued envelopes are not
    sent any more: they were counted ``shutdown_timeout``.
    """
    base: type[Any] = sentry_sdk.transport.HttpTransport
    hooked = _compat.sentry_send_hooks(base)

    class CountingTransport(hooked or base):  # type: ignore[misc]
        def capture_envelope(self, envelope: Any) -> None:
            errors = _errors(envelope)
            if not errors:
                super().capture_envelope(envelope)
                return
            ledger.hand_over(errors)
            with ledger.scope(errors) as scope:
                super().capture_envelope(envelope)  # a full queue reports queue_overflow here
            if hooked is None:  # the fallback: queued counts as sent
                ledger.settle(scope, SentryOutcome.SENT, None, scope.remaining)

        def flowtel_send(self, envelope: Any, send: Callable[[], None]) -> None:
            if ledger.closed:
                return  # counted shutdown_timeout at the end of the budget: never sent late
            with ledger.scope(_errors(envelope)) as scope:
                try:
                    send()
                finally:
                    ledger.answered(scope)

        def flowtel_answer(self, status: int) -> None:
            scope = ledger.current()
            if scope is not None:
                scope.status = status

        def record_lost_event(
            self,
            reason: str,
            data_category: str | None = None,
            item: Any = None,
            *,
            quantity: int = 1,
        ) -> None:
            category = item.data_category if item is not None else data_category
            if category == "error":
                scope = ledger.current()
                why = sdk_reason(reason, scope is not None and scope.status is not None)
                if why is not None:
                    ledger.count(SentryOutcome.DROPPED, why, 1 if item is not None else quantity)
            super().record_lost_event(reason, data_category, item, quantity=quantity)

    return CountingTransport


def _errors(envelope: Any) -> int:
    return sum(1 for item in envelope.items if item.data_category == "error")


def reset_in_forked_children(target: Any, reset: Callable[[Any], None]) -> None:
    """Call ``reset(target)`` in every forked child while ``target`` is alive (held weakly)."""
    ref = weakref.ref(target)

    def after_in_child() -> None:
        alive = ref()
        if alive is not None:
            reset(alive)

    if hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=after_in_child)


def close_client(sdk: Any, client: Any) -> None:
    """Stop ``client``'s transport without waiting (the caller flushed) and unbind it.

    A closed client left bound would keep running before_send for every ERROR log of the
    process; it stays bound only if someone else replaced it meanwhile.
    """
    client.close(timeout=0.0)
    if sdk is not None and sdk.get_client() is client:
        sdk.get_global_scope().set_client(None)


def scrub_event(event: dict[str, Any], scrubber: Scrubber, *, exceptions: bool = True) -> None:
    """Scrub every free-text field sentry-sdk or its integrations may have put in ``event``."""
    exception = event.get("exception")
    if exceptions and isinstance(exception, dict) and isinstance(exception.get("values"), list):
        ev.scrub_exception_values(exception["values"], scrubber)
    if isinstance(event.get("message"), str):
        event["message"] = scrubber.scrub_text(event["message"])
    logentry = event.get("logentry")
    if isinstance(logentry, dict):
        for key in ("message", "formatted"):
            if isinstance(logentry.get(key), str):
                logentry[key] = scrubber.scrub_text(logentry[key])
        params = logentry.get("params")
        if isinstance(params, list):
            logentry["params"] = [scrubber.scrub_text(str(p)) for p in params]
    crumbs = event.get("breadcrumbs")
    values = crumbs.get("values") if isinstance(crumbs, dict) else None
    for crumb in values or ():
        if isinstance(crumb, dict):
            if isinstance(crumb.get("message"), str):
                crumb["message"] = scrubber.scrub_text(crumb["message"])
            crumb.pop("data", None)
    extra = event.get("extra")
    if isinstance(extra, dict):
        event["extra"] = {
            k: scrubber.scrub_value(k, v if isinstance(v, (str, int, float, bool)) else str(v))
            for k, v in extra.items()
        }
