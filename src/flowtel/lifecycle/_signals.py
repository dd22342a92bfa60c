"""SIGTERM/SIGINT routing for a lifecycle: the first signal drains, the second ends the drain.

Under plain ``uvicorn module:app``, uvicorn 0.54 installs ``Server.handle_exit`` with
``signal.signal`` in ``Server.capture_signals`` before the lifespan starts. ``handle_exit`` sets
``should_exit``, and once serving ends uvicorn re-raises the signal it captured, so the process
dies *by* SIGTERM. :class:`SignalBridge` finds that bound method, puts its own handler in its
place, and after the drain stops the server by setting ``server.should_exit``. uvicorn never
sees the signal, so it re-raises nothing and the process exits 0. A signal that arrives after
the drain is forwarded to uvicorn when it is SIGINT, so a repeated Ctrl+C still forces a quit.
With no uvicorn (a worker), asyncio's ``loop.add_signal_handler`` is used.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import signal
import threading
from contextlib import suppress
from types import FrameType
from typing import Any, Protocol

__all__ = ["SignalBridge", "SignalMode"]

_log = logging.getLogger("flowtel.lifecycle")

_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class SignalMode(enum.StrEnum):
    """How SIGTERM/SIGINT were taken over."""

    UVICORN = "uvicorn"  # wrapped uvicorn's Server.handle_exit
    ASYNCIO = "asyncio"  # loop.add_signal_handler (a worker without a web server)
    NONE = "none"  # not the main thread, or already installed


class Drainable(Protocol):
    """What the bridge needs from a lifecycle."""

    @property
    def shutdown_requested(self) -> bool: ...

    @property
    def should_stop(self) -> bool: ...

    def request_shutdown(self, reason: str = ...) -> None: ...

    def end_drain(self) -> None: ...

    def add_drain_callback(self, callback: Any) -> None: ...


class SignalBridge:
    """Routes SIGTERM/SIGINT to ``target``. Install and remove on the event loop thread."""

    def __init__(self, target: Drainable) -> None:
        self._target = target
        self.mode = SignalMode.NONE
        self._loop: asyncio.AbstractEventLoop | None = None
        self._previous: dict[int, Any] = {}

    def install(self) -> SignalMode:
        """Take over the signals; returns how (``NONE`` off the main thread)."""
        if self.mode is not SignalMode.NONE:
            return SignalMode.NONE
        if threading.current_thread() is not threading.main_thread():
            _log.debug("not the main thread; signal handling left to the host")
            return SignalMode.NONE
        self._loop = loop = asyncio.get_running_loop()
        server = uvicorn_server(signal.getsignal(signal.SIGTERM))
        if server is not None:
            for sig in _SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
            self._target.add_drain_callback(lambda: setattr(server, "should_exit", True))
            self.mode = SignalMode.UVICORN
        else:
            for sig in _SIGNALS:
                loop.add_signal_handler(sig, self._on_signal, sig)
            self.mode = SignalMode.ASYNCIO
        _log.debug("signal handlers installed (%s)", self.mode.value)
        return self.mode

    def remove(self) -> None:
        """Give the signals back to whoever had them before."""
        if self.mode is SignalMode.UVICORN:
            for sig, handler in self._previous.items():
                if signal.getsignal(sig) == self._handle:
                    signal.signal(sig, handler)
        elif self.mode is SignalMode.ASYNCIO and self._loop is not None:
            for sig in _SIGNALS:
                with suppress(Exception):
                    self._loop.remove_signal_handler(sig)
        self._previous.clear()
        self.mode = SignalMode.NONE

    def _handle(self, sig: int, frame: FrameType | None) -> None:
        # Runs in the main thread between two bytecodes, maybe inside the loop: hand over.
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._on_signal, sig)

    def _on_signal(self, sig: int) -> None:
        name = signal.Signals(sig).name
        target = self._target
        if not target.shutdown_requested:
            target.request_shutdown(name)
        elif not target.should_stop:
            _log.info("second %s: ending the drain now", name)
            target.end_drain()
        elif sig == signal.SIGINT and self.mode is SignalMode.UVICORN:
            previous = self._previous.get(sig)
            if callable(previous):  # uvicorn's handle_exit: force exit on a repeated Ctrl+C
                previous(sig, None)
        else:
            _log.info("%s ignored: shutdown already in progress", name)


def uvicorn_server(handler: object) -> Any:
    """The uvicorn ``Server`` whose ``handle_exit`` is ``handler``, else ``None``."""
    owner = getattr(handler, "__self__", None)
    if owner is None or getattr(handler, "__name__", "") != "handle_exit":
        return None
    if not type(owner).__module__.startswith("uvicorn") or not hasattr(owner, "should_exit"):
        return None
    return owner
