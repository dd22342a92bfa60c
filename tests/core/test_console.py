"""The console exporter: one line per finished span, indented by nesting, with status."""

from __future__ import annotations

import io

import pytest

import flowtel
from flowtel._export._console import ConsoleSpanProcessor


class TestConsoleOutput:
    def test_lines_nesting_status_and_attributes(self) -> None:
        """Children are indented under parents; failures show ✗ with the error; no colours."""
        stream = io.StringIO()
        telemetry = flowtel.configure_telemetry(
            exporter="none",
            span_processors=[ConsoleSpanProcessor(stream=stream, colors=False)],
            logging=False,
            force=True,
        )

        @flowtel.traced("child", component="billing", operation="charge")
        def child() -> None:
            raise ValueError("card declined")

        with flowtel.span("parent"), pytest.raises(ValueError):
            child()
        telemetry.shutdown()
        lines = stream.getvalue().splitlines()
        assert len(lines) == 2
        child_line, parent_line = lines
        trace_prefix = parent_line.split(" ", 1)[0]
        assert len(trace_prefix) == 8 and child_line.startswith(trace_prefix)
        assert child_line[9:].startswith("  ✗ child ")  # one level deeper than its parent
        assert "error='ValueError: card declined'" in child_line
        assert "component=billing operation=charge" in child_line
        assert parent_line[9:].startswith("✓ parent ")
        assert "ms" in parent_line and "\x1b[" not in parent_line

    def test_colours_when_forced(self) -> None:
        """colors=True adds ANSI colour codes."""
        stream = io.StringIO()
        telemetry = flowtel.configure_telemetry(
            exporter="none",
            span_processors=[ConsoleSpanProcessor(stream=stream, colors=True)],
            logging=False,
            force=True,
        )
        with flowtel.span("coloured"):
            pass
        telemetry.shutdown()
        assert "\x1b[32m✓" in stream.getvalue()

    def test_broken_stream_never_raises(self) -> None:
        """A closed stream does not break the traced code."""
        stream = io.StringIO()
        stream.close()
        telemetry = flowtel.configure_telemetry(
            exporter="none",
            span_processors=[ConsoleSpanProcessor(stream=stream, colors=False)],
            logging=False,
            force=True,
        )
        with flowtel.span("into-the-void"):
            pass
        telemetry.shutdown()
