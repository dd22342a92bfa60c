"""A stream writer that never blocks the caller: a bounded queue drained by its own thread.

Why: a terminal that is paused (Ctrl-S), or a stdout pipe that nobody reads, makes ``write()``
block. Telemetry must never stop the application, so the console output is handed to a daemon
thread through a bounded queue; when the queue is full the line is dropped and counted
(``flowtel.console.dropped``). Before each write the thread waits, with a short timeout, for the
file descriptor to accept data, so it does not sit inside ``write()`` holding the stream's lock
when the interpreter exits (which would abort the process at finalisation).
"""

from __future__ import annotations

import os
import select
import sys
import threading
from collections import deque
from collections.abc import Iterable
from enum import StrEnum
from typing import IO, TYPE_CHECKING, Final

from flowtel import semconv

if TYPE_CHECKING:
    from opentelemetry.metrics import CallbackOptions, Meter, Observation

__all__ = ["ConsoleDropReason", "ConsoleWriter"]

DEFAULT_MAX_QUEUE: Final = 4096
"""Lines (or multi-line blocks) held while the stream is slow; beyond that they are dropped."""
_CHUNK_CHARS: Final = 1024
"""At most 4096 UTF-8 bytes: the size Linux guarantees a writable pipe accepts in one write."""
_POLL_S: Final = 0.1


class ConsoleDropReason(StrEnum):
    """Why console output was dropped (value of ``flowtel.reason``)."""

    QUEUE_FULL = "queue_full"
    """The stream did not keep up (stuck terminal or unread pipe) and the queue was full."""
    SHUTDOWN_TIMEOUT = "shutdown_timeout"
    """Still queued when the writer was closed and its budget ran out."""
    WRITE_FAILED = "write_failed"
    """The stream raised (closed, broken pipe)."""


class ConsoleWriter:
    """Writes text to ``stream`` from a daemon thread; :meth:`write` never blocks.

    Threading: :meth:`write` may be called from any thread and only appends to a bounded deque
    under a lock. The writer thread is started on first use and again after a fork.

    Args:
        stream: where to write; ``None`` means ``sys.stdout`` as it is at write time.
        max_queue: queued blocks before new ones are dropped.
    """

    def __init__(self, stream: IO[str] | None = None, max_queue: int = DEFAULT_MAX_QUEUE) -> None:
        self._stream = stream
        self._max_queue = max_queue
        self._cond = threading.Condition()
        self._queue: deque[str] = deque()
        self._inflight = 0
        self._closed = False
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self.dropped: dict[ConsoleDropReason, int] = dict.fromkeys(ConsoleDropReason, 0)
        self.written = 0

    @property
    def stream(self) -> IO[str]:
        """The stream written to now."""
        return self._stream if self._stream is not None else sys.stdout

    def write(self, text: str) -> bool:
        """Queue ``text``; returns False (and counts it) when it was dropped."""
        with self._cond:
            if self._pid != os.getpid():  # forked: the thread did not survive, the queue is stale
                self._pid, self._thread, self._inflight = os.getpid(), None, 0
                self._queue.clear()
            if self._closed:
                self.dropped[ConsoleDropReason.SHUTDOWN_TIMEOUT] += 1
                return False
            if len(self._queue) >= self._max_queue:
                self.dropped[ConsoleDropReason.QUEUE_FULL] += 1
                return False
            self._queue.append(text)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="flowtel-console", daemon=True
                )
                self._thread.start()
            self._cond.notify()
        return True

    def flush(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` until everything queued is written."""
        with self._cond:
            return self._cond.wait_for(
                lambda: not self._queue and not self._inflight, timeout=max(timeout_s, 0.0)
            )

    def close(self, timeout_s: float) -> bool:
        """Flush within ``timeout_s``, then stop; what is still queued is counted as dropped."""
        done = self.flush(timeout_s)
        with self._cond:
            self._closed = True
            lost = len(self._queue) + self._inflight
            self._queue.clear()
            self.dropped[ConsoleDropReason.SHUTDOWN_TIMEOUT] += lost
            self._inflight = 0
            self._cond.notify_all()
        return done

    def instrument(self, meter: Meter) -> None:
        """Report the drop counts as ``flowtel.console.dropped`` (read at collection time)."""
        definition = semconv.metric(semconv.METRIC_CONSOLE_DROPPED)
        meter.create_observable_counter(
            definition.name,
            callbacks=[self._observe],
            unit=definition.unit,
            description=definition.description,
        )

    def _observe(self, _options: CallbackOptions) -> Iterable[Observation]:
        from opentelemetry.metrics import Observation

        with self._cond:
            counts = list(self.dropped.items())
        return [Observation(n, {semconv.TELEMETRY_REASON: r.value}) for r, n in counts]

    # -- the writer thread ----------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                batch = list(self._queue)
                self._queue.clear()
                self._inflight = len(batch)
            ok = self._write("".join(batch))
            with self._cond:
                if self._closed:
                    return  # close() counted the in-flight blocks already
                if ok:
                    self.written += self._inflight
                else:
                    self.dropped[ConsoleDropReason.WRITE_FAILED] += self._inflight
                self._inflight = 0
                self._cond.notify_all()

    def _write(self, text: str) -> bool:
        stream = self.stream
        try:
            fd: int | None = stream.fileno()
        except Exception:  # StringIO and friends: no descriptor, never blocks
            fd = None
        try:
            for start in range(0, len(text), _CHUNK_CHARS):
                if fd is not None and not self._wait_writable(fd):
                    return True  # closed while waiting: close() counted the rest
                stream.write(text[start : start + _CHUNK_CHARS])
                stream.flush()
        except Exception:  # a closed or broken stream must not kill the thread or the app
            return False
        return True

    def _wait_writable(self, fd: int) -> bool:
        """Wait until ``fd`` accepts a chunk without blocking; False once the writer is closed."""
        while True:
            _, ready, _ = select.select([], [fd], [], _POLL_S)
            if ready:
                return True
            with self._cond:
                if self._closed:
                    return False
