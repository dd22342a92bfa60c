"""The console exporter: a tree of spans with attributes, events and logs, that never blocks."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import flowtel
from flowtel import semconv
from flowtel._export._console import ConsoleSpanProcessor

SRC = str(Path(flowtel.__file__).resolve().parents[1])
log = logging.getLogger("app.checkout")


def _configure(processor: ConsoleSpanProcessor, **options: object) -> flowtel.Telemetry:
    return flowtel.configure_telemetry(
        exporter="none", span_processors=[processor], logging=False, force=True, **options
    )


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "FLOWTEL_"))}
    env["PYTHONPATH"] = SRC
    env.update(extra)
    return env


class TestTree:
    def test_nesting_status_attributes_and_events(self) -> None:
        """Children are indented under parents; failures show ✗, the error and the exception."""
        stream = io.StringIO()
        telemetry = _configure(ConsoleSpanProcessor(stream=stream, colors=False))

        @flowtel.traced("child", component="billing", operation="charge")
        def child() -> None:
            raise ValueError("card declined")

        with (
            flowtel.span("parent", order_id="o-1", api_key="sk_live_abcdef123456"),
            pytest.raises(ValueError),
        ):
            child()
        telemetry.shutdown()
        lines = stream.getvalue().splitlines()
        child_line, event_line, parent_line = lines[:3]
        trace_prefix = parent_line.split(" ", 1)[0]
        assert len(trace_prefix) == 8 and child_line.startswith(trace_prefix)
        assert child_line[9:].startswith("  ✗ child ")  # one level deeper than its parent
        assert "error='ValueError: card declined'" in child_line
        assert "component=billing operation=charge" in child_line
        assert re.fullmatch(
            rf"{trace_prefix}       · exception \+\d+\.\dms ValueError: card declined", event_line
        )
        assert parent_line[9:].startswith("✓ parent ")
        assert "order_id=o-1" in parent_line and "sk_live_abcdef123456" not in parent_line
        assert "\x1b[" not in stream.getvalue()

    def test_custom_events_under_their_span(self) -> None:
        """A span event (a retry, a rejection) is printed under its span with its attributes."""
        stream = io.StringIO()
        telemetry = _configure(ConsoleSpanProcessor(stream=stream, colors=False))
        with flowtel.span("call") as span:
            span.add_event("retry", {"attempt": 2, "wait_s": 0.5})
        telemetry.shutdown()
        line, event = stream.getvalue().splitlines()[:2]
        assert "✓ call" in line
        assert re.fullmatch(r"[0-9a-f]{8}     · retry \+\d+\.\dms attempt=2 wait_s=0.5", event)

    def test_log_records_sit_under_their_span(
        self, capsys: pytest.CaptureFixture[str], configure: Callable[..., flowtel.Telemetry]
    ) -> None:
        """A record logged inside a span is printed indented under it, one outside is flat."""
        telemetry = configure(exporter="console", console_colors=False, logging=True)
        with flowtel.span("outer"), flowtel.span("inner"):
            log.info("inside inner")
        log.warning("outside")
        telemetry.shutdown()
        lines = capsys.readouterr().out.splitlines()
        inside = next(i for i, line in enumerate(lines) if line.endswith("inside inner"))
        assert re.fullmatch(
            r"[0-9a-f]{8}       │ \d\d:\d\d:\d\d\.\d{3} INFO  app.checkout: inside inner",
            lines[inside],
        )
        assert "✓ inner" in lines[inside + 1] and "✓ outer" in lines[inside + 2]
        assert any(re.fullmatch(r"\d\d:\d\d:.* WARNING app.checkout: outside", x) for x in lines)

    def test_colours_when_forced(self) -> None:
        """colors=True adds ANSI colour codes."""
        stream = io.StringIO()
        telemetry = _configure(ConsoleSpanProcessor(stream=stream, colors=True))
        with flowtel.span("coloured"):
            pass
        telemetry.shutdown()
        assert "\x1b[32m✓" in stream.getvalue()


class TestVerbosity:
    def _lines(self, verbosity: str) -> list[str]:
        stream = io.StringIO()
        telemetry = _configure(
            ConsoleSpanProcessor(stream=stream, colors=False, verbosity=verbosity)
        )
        with flowtel.span("op", note="x" * 100, **{"code.function": "f"}) as span:
            span.add_event("retry", {"attempt": 1})
        telemetry.shutdown()
        return stream.getvalue().splitlines()

    def test_quiet_is_one_line_per_span(self) -> None:
        """quiet: the span line with its key attributes only; no events, no summary."""
        (line,) = self._lines("quiet")
        assert "note=" not in line and "✓ op" in line

    def test_normal_cuts_long_values_and_hides_code_attributes(self) -> None:
        """normal: other attributes, long values cut to 60 characters, code.* hidden."""
        line = self._lines("normal")[0]
        assert "note=" + "x" * 59 + "…" in line and "code.function" not in line

    def test_verbose_shows_everything(self) -> None:
        """verbose: every attribute in full, plus the span id."""
        line = self._lines("verbose")[0]
        assert "note=" + "x" * 100 in line and "code.function=f" in line
        assert re.search(r"span_id=[0-9a-f]{16}", line)

    def test_bad_verbosity_is_a_configuration_error(self) -> None:
        """An unknown verbosity fails at configure time, naming the option."""
        with pytest.raises(flowtel.ConfigurationError, match="console_verbosity"):
            flowtel.configure_telemetry(console_verbosity="loud", force=True)


class TestSummary:
    def test_calls_errors_and_percentiles_per_operation(self) -> None:
        """At shutdown a table gives calls, errors, p50 and p95 per (component, operation)."""
        stream = io.StringIO()
        telemetry = _configure(ConsoleSpanProcessor(stream=stream, colors=False))

        @flowtel.traced(component="agent", operation="answer")
        def answer(fail: bool) -> None:
            if fail:
                raise LookupError("none")

        for i in range(20):
            with pytest.raises(LookupError) if i % 4 == 0 else _nothing():
                answer(i % 4 == 0)
        telemetry.shutdown()
        out = stream.getvalue()
        row = next(line for line in out.splitlines() if line.startswith("agent answer"))
        calls, errors, p50, p95 = row.split()[2:]
        assert (calls, errors) == ("20", "5")
        assert float(p50.removesuffix("ms")) <= float(p95.removesuffix("ms"))


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


class TestNeverBlocks:
    def test_broken_stream_never_raises(self) -> None:
        """A closed stream does not break the traced code; the lost output is counted."""
        stream = io.StringIO()
        stream.close()
        processor = ConsoleSpanProcessor(stream=stream, colors=False)
        telemetry = _configure(processor)
        with flowtel.span("into-the-void"):
            pass
        telemetry.shutdown()
        assert sum(processor.writer.dropped.values()) >= 1

    def test_unread_pipe_drops_and_counts_without_blocking(self, tmp_path: Path) -> None:
        """With stdout a pipe nobody reads, 20,000 traced calls finish and the process exits;
        what could not be printed is counted on flowtel.console.dropped."""
        report = tmp_path / "report.json"
        script = textwrap.dedent(
            f"""
            import json, time
            from opentelemetry.sdk.metrics.export import InMemoryMetricReader
            import flowtel
            reader = InMemoryMetricReader()
            t = flowtel.configure_telemetry(
                service_name="stuck", exporter="console", metric_readers=[reader],
                shutdown_timeout_s=1.0,
            )
            start = time.monotonic()
            for i in range(20_000):
                with flowtel.span("work", payload="x" * 200, i=i):
                    pass
            elapsed = time.monotonic() - start
            dropped = {{}}
            for rm in reader.get_metrics_data().resource_metrics:
                for sm in rm.scope_metrics:
                    for m in sm.metrics:
                        if m.name == {semconv.METRIC_CONSOLE_DROPPED!r}:
                            for p in m.data.data_points:
                                dropped[p.attributes["flowtel.reason"]] = p.value
            json.dump({{"elapsed_s": elapsed, "dropped": dropped}}, open({str(report)!r}, "w"))
            t.shutdown()
            """
        )
        started = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, "-c", script],
            stdout=subprocess.PIPE,  # never read until the process has exited
            stderr=subprocess.DEVNULL,
            env=_env(),
        )
        try:
            code = proc.wait(timeout=60)
        finally:
            proc.kill()
            assert proc.stdout is not None
            proc.stdout.close()
        took = time.monotonic() - started
        assert code == 0
        got = json.loads(report.read_text())
        assert got["dropped"].get("queue_full", 0) > 0
        assert took < 30, took


class TestStdout:
    def test_json_logs_keep_stdout_json_only(self) -> None:
        """json_logs=True without an endpoint: stdout is JSON lines only; spans and the
        "nothing is exported" line go to stderr."""
        script = textwrap.dedent(
            """
            import logging
            import flowtel
            t = flowtel.configure_telemetry(service_name="j", json_logs=True)
            with flowtel.span("op"):
                logging.getLogger("app").warning("hello")
            t.shutdown()
            """
        )
        result = subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            timeout=60,
            env=_env(),
            check=False,
        )
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        assert lines and all(json.loads(line)["service.name"] == "j" for line in lines)
        assert "✓ op" in result.stderr
        assert result.stderr.count("no OTLP endpoint is set") == 1

    def test_fallback_line_only_when_auto(
        self, capsys: pytest.CaptureFixture[str], configure: Callable[..., flowtel.Telemetry]
    ) -> None:
        """exporter="auto" without an endpoint says so once; an explicit console does not."""
        configure(exporter="console").shutdown()
        assert "no OTLP endpoint" not in capsys.readouterr().out
        configure().shutdown()
        assert capsys.readouterr().out.count("no OTLP endpoint is set") == 1


def test_dropped_metric_is_defined() -> None:
    """The drop counter is defined in semconv (and so in the telemetry reference)."""
    definition = semconv.metric(semconv.METRIC_CONSOLE_DROPPED)
    assert definition.attributes == (semconv.TELEMETRY_REASON,)
