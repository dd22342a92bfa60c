"""Exception stack traces on spans: the standard layout, scrubbed, and linear in depth.

An exception that escapes nested ``@traced`` functions is recorded on every span it leaves (as
OpenTelemetry's own instrumentation does). Each frame is formatted and scrubbed once: a span
further out adds only the frames the exception unwound through since.
"""

from __future__ import annotations

import re
import traceback
from collections.abc import Callable
from typing import Any

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import flowtel
from flowtel import semconv
from flowtel._core import _values


def _stack(span: Any) -> str:
    (event,) = [e for e in span.events if e.name == semconv.EVENT_EXCEPTION]
    return str(event.attributes[semconv.EXCEPTION_STACKTRACE])


def _nested(depth: int) -> Callable[[], None]:
    @flowtel.traced(component="test", operation="leaf")
    def leaf() -> None:
        raise ValueError("token=abc123secret in request")

    fn: Callable[[], None] = leaf
    for level in range(depth - 1):

        @flowtel.traced(component="test", operation=f"level{level}")
        def outer(inner: Callable[[], None] = fn) -> None:
            inner()

        fn = outer
    return fn


def _without_carets(text: str) -> str:
    return "".join(
        line for line in text.splitlines(keepends=True) if not re.fullmatch(r"\s*[~^]+\s*", line)
    )


class TestLayout:
    def test_same_text_as_the_standard_library_without_caret_lines(
        self, configure: Callable[..., flowtel.Telemetry]
    ) -> None:
        """Chained exceptions and frames read exactly as traceback.format_exception prints
        them, minus the 3.11 lines that point at the failing expression."""
        exporter = InMemorySpanExporter()
        configure(span_exporters=[exporter], scrub=False)

        def cause() -> None:
            raise KeyError("missing")

        @flowtel.traced
        def wrapper() -> None:
            try:
                cause()
            except KeyError as exc:
                raise RuntimeError("wrapped") from exc

        with pytest.raises(RuntimeError) as info:
            wrapper()
        expected = _without_carets("".join(traceback.format_exception(info.value)))
        # The span was recorded before the exception reached this test's frame.
        this_frame = re.compile(r'  File "[^"]+", line \d+, in test_same_text\w*\n    .*\n')
        expected = this_frame.sub("", expected)
        (span,) = exporter.get_finished_spans()
        assert _stack(span) == expected

    def test_secrets_in_frames_and_message_are_scrubbed(
        self, configure: Callable[..., flowtel.Telemetry]
    ) -> None:
        """The message and the source lines shown go through the scrubber."""
        exporter = InMemorySpanExporter()
        configure(span_exporters=[exporter])
        with pytest.raises(ValueError):
            _nested(3)()
        for span in exporter.get_finished_spans():
            assert "abc123secret" not in _stack(span)
            event = next(e for e in span.events if e.name == semconv.EVENT_EXCEPTION)
            assert "abc123secret" not in str(event.attributes[semconv.EXCEPTION_MESSAGE])


class TestDepth:
    @pytest.mark.parametrize("depth", [1, 10, 40])
    def test_each_frame_is_formatted_once(
        self,
        depth: int,
        configure: Callable[..., flowtel.Telemetry],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """Formatting work grows linearly with depth, and every span still gets the whole
        stack as it stood when the exception left that span."""
        exporter = InMemorySpanExporter()
        configure(span_exporters=[exporter])
        formatted: list[int] = []
        original = _values._frame_lines

        def counting(frames: list[tuple[Any, int]], scrubber: Any) -> str:
            formatted.append(len(frames))
            return original(frames, scrubber)

        monkeypatch.setattr(_values, "_frame_lines", counting)
        with pytest.raises(ValueError) as info:
            _nested(depth)()
        total_frames = len(list(traceback.walk_tb(info.value.__traceback__)))
        assert sum(formatted) <= total_frames
        spans = exporter.get_finished_spans()
        assert len(spans) == depth
        outermost = spans[-1]
        assert _stack(outermost).count('  File "') == total_frames - 1  # all but the test's frame
