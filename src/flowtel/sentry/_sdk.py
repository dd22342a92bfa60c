"""The sentry-sdk-facing machinery of the Sentry bridge.

Why separate: :mod:`flowtel.sentry` decides *what* to report (dedupe, attribution); this module
deals with *how* sentry-sdk is driven without hurting the host app: a capture thread so the
span's thread never builds or serialises events, a transport that counts what is lost, and the
scrubbing pass over every event sentry-sdk is about to send. sentry-sdk objects arrive as
arguments; nothing here imports it at module level.
"""

from __future__ import annotations

import importlib.util
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from flowtel._core._scrub import Scrubber
from flowtel.sentry import _event as ev

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


def counting_transport(
    sentry_sdk: Any,
    on_queued: Callable[[int], None],
    on_lost: Callable[[str, int], None],
) -> type[Any]:
    """sentry-sdk's HTTP transport, reporting error events queued and lost.

    Uses only the public ``Transport`` hooks (``capture_envelope``, ``record_lost_event``), so
    sending, retries and rate-limit handling stay sentry-sdk's own.
    """
    base: type[Any] = sentry_sdk.transport.HttpTransport
    local = threading.local()

    class CountingTransport(base):  # type: ignore[misc]
        def capture_envelope(self, envelope: Any) -> None:
            errors = sum(1 for item in envelope.items if item.data_category == "error")
            local.overflow = 0
            super().capture_envelope(envelope)
            queued = errors - getattr(local, "overflow", 0)
            if queued > 0:
                on_queued(queued)

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
                if reason == "queue_overflow":
                    local.overflow = getattr(local, "overflow", 0) + 1
                on_lost(reason, quantity)
            super().record_lost_event(reason, data_category, item, quantity=quantity)

    return CountingTransport


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
