"""The console span processor: the embedded default for a developer laptop.

One compact line per finished span, indented by nesting, with duration, status and the key
attributes. It is a SpanProcessor rather than an exporter because nesting depth is only known at
``on_start`` (children end before their parents). It writes synchronously: that is what a developer
wants on a terminal, and it is only the default when no OTLP endpoint is configured.
"""

from __future__ import annotations

import sys
import threading
from typing import IO, Final

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.trace import StatusCode

from flowtel import semconv
from flowtel._export._scrub import scrub_span

_MAX_TRACKED: Final = 10_000
_KEY_ATTRS: Final = (
    semconv.COMPONENT,
    semconv.OPERATION,
    semconv.ERROR_TYPE,
    "http.request.method",
    "http.route",
    "http.response.status_code",
    semconv.STARTUP_CHECK,
    semconv.STARTUP_OUTCOME,
)
_RESET, _DIM, _RED, _GREEN, _CYAN = "\x1b[0m", "\x1b[2m", "\x1b[31m", "\x1b[32m", "\x1b[36m"


class ConsoleSpanProcessor(SpanProcessor):
    """Prints one line per finished sampled span.

    Threading: ``on_start``/``on_end`` may run on any thread; a lock guards the depth map and the
    stream writes so lines never interleave. Never raises.

    Args:
        stream: where to write (default ``sys.stdout`` at write time).
        colors: force colours on/off; ``None`` colours only when the stream is a TTY.
    """

    def __init__(self, stream: IO[str] | None = None, colors: bool | None = None) -> None:
        self._stream = stream
        self._colors = colors
        self._depth: dict[int, int] = {}
        self._lock = threading.Lock()
        self._failed = False

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
            stream = self._stream or sys.stdout
            with self._lock:
                depth = self._depth.pop(ctx.span_id, 0)
                stream.write(self._format(span, depth, stream) + "\n")
                stream.flush()
        except Exception:  # never break the host app because a terminal went away
            if not self._failed:
                self._failed = True
                import logging

                logging.getLogger(__name__).warning("flowtel console output failed", exc_info=True)

    def _format(self, span: ReadableSpan, depth: int, stream: IO[str]) -> str:
        colors = self._colors
        if colors is None:
            isatty = getattr(stream, "isatty", None)
            colors = bool(isatty and isatty())
        duration_ms = ((span.end_time or 0) - (span.start_time or 0)) / 1e6
        failed = span.status.status_code is StatusCode.ERROR
        mark = "✗" if failed else "✓"
        attrs = span.attributes or {}
        shown = " ".join(f"{k.rsplit('.', 1)[-1]}={attrs[k]!s}" for k in _KEY_ATTRS if k in attrs)
        trace_id = f"{span.context.trace_id:032x}"[:8] if span.context else "-"
        if colors:
            mark = f"{_RED if failed else _GREEN}{mark}{_RESET}"
            head = f"{_DIM}{trace_id}{_RESET} "
            name = f"{_CYAN}{span.name}{_RESET}"
        else:
            head = f"{trace_id} "
            name = span.name
        line = f"{head}{'  ' * depth}{mark} {name} {duration_ms:.2f}ms"
        if failed and span.status.description:
            line += f" error={span.status.description!r}"
        return f"{line} {shown}" if shown else line

    def shutdown(self) -> None:
        with self._lock:
            self._depth.clear()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
