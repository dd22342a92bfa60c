"""The console span processor: the embedded default for a developer laptop.

A tree of spans indented by nesting, each with its attributes (compact, scrubbed), its events
(retry, timeout, rejection, exception) under it, and the log records written while it was current;
at exit, a table of calls, errors and p50/p95 per operation. A span's line is printed when the span
ends, so children come above their parent, and a log record written inside a span comes above
that span's line, indented under it.

It is a SpanProcessor rather than an exporter because nesting depth is only known at ``on_start``
(children end before their parents). Output goes through a :class:`ConsoleWriter`: the
application never waits for the terminal, and lines dropped because it is stuck are counted.
"""

from __future__ import annotations

import logging
import threading
from typing import IO, TYPE_CHECKING, Final

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.trace import SpanContext

from flowtel._export._console_format import ConsoleVerbosity, Palette, format_log, format_span
from flowtel._export._console_summary import OperationSummary
from flowtel._export._console_writer import ConsoleWriter
from flowtel._export._scrub import scrub_span

if TYPE_CHECKING:
    from opentelemetry.metrics import Meter

__all__ = ["ConsoleSpanProcessor", "ConsoleVerbosity", "active_console"]

_MAX_TRACKED: Final = 10_000
_DEFAULT_CLOSE_S: Final = 1.0

_active_lock = threading.Lock()
_active: ConsoleSpanProcessor | None = None


def active_console() -> ConsoleSpanProcessor | None:
    """The console installed by ``configure_telemetry(exporter="console")``, if any.

    The logging integration prints log records through it, so they keep their order with the
    span lines and sit under the span that was current.
    """
    return _active


class ConsoleSpanProcessor(SpanProcessor):
    """Prints finished sampled spans as an indented tree, without ever blocking the caller.

    Threading: ``on_start``/``on_end`` may run on any thread; a lock guards the depth map, and
    the text goes to a bounded queue drained by the writer's own thread. Never raises.

    Args:
        stream: where to write (default ``sys.stdout`` at write time).
        colors: force colours on/off; ``None`` colours only when the stream is a TTY.
        verbosity: how much to show (:class:`ConsoleVerbosity` or its value).
        summary: print the per-operation table at shutdown (not in ``quiet``).
        close_timeout_s: how long shutdown waits for queued output to be written.
        max_queue: queued blocks before output is dropped (and counted).
    """

    def __init__(
        self,
        stream: IO[str] | None = None,
        colors: bool | None = None,
        *,
        verbosity: ConsoleVerbosity | str = ConsoleVerbosity.NORMAL,
        summary: bool = True,
        close_timeout_s: float = _DEFAULT_CLOSE_S,
        max_queue: int | None = None,
    ) -> None:
        self.writer = (
            ConsoleWriter(stream) if max_queue is None else ConsoleWriter(stream, max_queue)
        )
        self._colors = colors
        self._verbosity = ConsoleVerbosity(verbosity)
        self._summary = OperationSummary() if summary else None
        self._close_timeout_s = close_timeout_s
        self._depth: dict[int, int] = {}
        self._lock = threading.Lock()
        self._failed = False
        self._closed = False

    # -- wiring -----------------------------------------------------------------------------------

    def activate(self) -> None:
        """Make this the console that log records are printed through (until shutdown)."""
        global _active
        with _active_lock:
            _active = self

    def instrument(self, meter: Meter) -> None:
        """Count dropped output on ``flowtel.console.dropped``."""
        self.writer.instrument(meter)

    # -- SpanProcessor ----------------------------------------------------------------------------

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        ctx = span.context
        if ctx is None or not ctx.trace_flags.sampled:
            return
        parent = span.parent
        with self._lock:
            depth = self._depth.get(parent.span_id, -1) + 1 if parent is not None else 0
            if len(self._depth) < _MAX_TRACKED:
                self._depth[ctx.span_id] = depth

    def on_end(self, span: ReadableSpan) -> None:
        ctx = span.context
        if ctx is None or not ctx.trace_flags.sampled:
            return
        try:
            span = scrub_span(span)  # data set through the raw OTel API is scrubbed here too
            with self._lock:
                depth = self._depth.pop(ctx.span_id, 0)
            if self._summary is not None:
                self._summary.add(span)
            self.writer.write(format_span(span, depth, self._verbosity, self._palette()))
        except Exception:  # never break the host app because of a formatting surprise
            self._warn_once()

    def write_log(self, text: str, span_context: SpanContext | None) -> None:
        """Print a formatted log line, under ``span_context``'s span while it is open."""
        try:
            trace_id = depth = None
            if span_context is not None and span_context.is_valid:
                with self._lock:
                    depth = self._depth.get(span_context.span_id)
                trace_id = span_context.trace_id if depth is not None else None
            self.writer.write(format_log(text, trace_id, depth, self._palette()))
        except Exception:
            self._warn_once()

    def shutdown(self) -> None:
        global _active
        with _active_lock:
            if _active is self:
                _active = None
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._depth.clear()
        if self._summary is not None and self._verbosity is not ConsoleVerbosity.QUIET:
            table = self._summary.render()
            if table:
                self.writer.write(table)
        self.writer.close(self._close_timeout_s)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.writer.flush(timeout_millis / 1000)

    # -- helpers ----------------------------------------------------------------------------------

    def _palette(self) -> Palette:
        colors = self._colors
        if colors is None:
            try:
                colors = bool(self.writer.stream.isatty())
            except Exception:
                colors = False
        return Palette(colors)

    def _warn_once(self) -> None:
        if not self._failed:
            self._failed = True
            logging.getLogger(__name__).warning("flowtel console output failed", exc_info=True)
