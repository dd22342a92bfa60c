"""Faults through the real ``configure_telemetry()`` pipeline, in-process and in subprocesses."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import flowtel
from flowtel._export._guard import LossReason, TelemetrySignal
from tests.support.otlp_receiver import BlackHoleServer, OtlpGrpcReceiver, OtlpHttpReceiver

ROOT = Path(__file__).resolve().parents[2]
TRACES = TelemetrySignal.TRACES
SLACK_S = 0.3


@flowtel.traced(record_args=True)
def handler(n: int) -> int:
    """A host-app function with its arguments recorded."""
    return n + 1


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
class TestConfiguredShutdown:
    """Telemetry.shutdown() honours its budget against a black-holed collector."""

    def test_black_hole_shutdown_within_budget(
        self,
        protocol: str,
        black_hole: BlackHoleServer,
        configure: Callable[..., flowtel.Telemetry],
    ) -> None:
        """100 calls return their results; shutdown takes < 1 s; all 100 spans are counted."""
        telemetry = configure(
            exporter="otlp",
            otlp_endpoint=black_hole.endpoint,
            otlp_protocol=protocol,
            shutdown_timeout_s=1.0,
            batch_schedule_delay_s=0.05,
        )
        assert [handler(i) for i in range(100)] == list(range(1, 101))
        started = time.monotonic()
        telemetry.shutdown()
        assert time.monotonic() - started < 1.0 + SLACK_S
        guard = telemetry.export_guard
        assert guard is not None
        assert guard.dropped(TRACES) == 100


class TestLossIsVisible:
    """Lost spans show up in flowtel.telemetry.dropped, exported by the healthy metrics path."""

    def test_dropped_metric_reaches_collector(
        self,
        monkeypatch: pytest.MonkeyPatch,
        black_hole: BlackHoleServer,
        otlp_grpc: OtlpGrpcReceiver,
        configure: Callable[..., flowtel.Telemetry],
    ) -> None:
        """Spans lost to a black-holed traces endpoint are counted on the metrics endpoint."""
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", otlp_grpc.endpoint)
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", black_hole.endpoint)
        telemetry = configure(exporter="otlp", otlp_protocol="grpc", batch_export_timeout_s=0.2)
        for i in range(20):
            handler(i)
        assert telemetry.force_flush(timeout_s=5.0)

        def counted(points: list) -> bool:  # type: ignore[type-arg]
            return any(
                p.attributes.get("flowtel.signal") == "traces" and p.value == 20 for p in points
            )

        points = otlp_grpc.wait_for_metric("flowtel.telemetry.dropped", counted)
        reasons = {p.attributes["flowtel.reason"] for p in points if p.value == 20}
        assert reasons == {LossReason.EXPORT_TIMEOUT}
        assert otlp_grpc.spans() == []


class TestAttributeValues:
    """Hostile argument values never break the call, the span, or the rest of the batch."""

    def test_hostile_arguments_export_cleanly(
        self, otlp_http: OtlpHttpReceiver, configure: Callable[..., flowtel.Telemetry]
    ) -> None:
        """Raising __str__/__repr__, 1 MB strings, bytes, nesting and bad UTF-8 all export."""

        class BadRepr:
            def __repr__(self) -> str:
                raise RuntimeError("repr exploded")

            def __str__(self) -> str:
                raise RuntimeError("str exploded")

        @flowtel.traced("hostile", record_args=True)
        def hostile(bad: object, huge: str, raw: bytes, nested: object, surrogate: str) -> str:
            return "ok"

        telemetry = configure(
            exporter="otlp", otlp_endpoint=otlp_http.endpoint, otlp_protocol="http/protobuf"
        )
        nested: dict[str, object] = {"a": [1, {"b": (2, 3)}], "c": {1, 2}}
        result = hostile(BadRepr(), "x" * 1_000_000, b"\xff\xfe\x00", nested, "bad \udcff end")
        assert result == "ok"
        with flowtel.span("raw-attrs", weird="\udcff", obj=BadRepr()):
            pass
        handler(41)
        assert telemetry.force_flush(timeout_s=5.0)

        spans = otlp_http.wait_for_spans(3)
        by_name = {s.name: s.attributes for s in spans}
        attrs = by_name["hostile"]
        assert "repr() failed" in attrs["flowtel.arg.bad"]
        assert 1_000 <= len(attrs["flowtel.arg.huge"]) <= 2_000
        assert attrs["flowtel.arg.raw"] == "<3 bytes>"
        assert "'a'" in attrs["flowtel.arg.nested"]
        assert attrs["flowtel.arg.surrogate"].startswith("bad ")
        assert "\udcff" not in attrs["flowtel.arg.surrogate"]
        assert "repr() failed" in by_name["raw-attrs"]["obj"]
        assert by_name[handler.__module__ + ".handler"]["flowtel.arg.n"] == 41
        guard = telemetry.export_guard
        assert guard is not None and guard.dropped() == 0


CHILD_PRELUDE = """
import atexit, os, sys, time
import flowtel
from flowtel._export._guard import TelemetrySignal

@atexit.register  # registered before configure_telemetry, so it runs after flowtel's hook
def report():
    guard = flowtel._core._telemetry.current().export_guard
    print("dropped", guard.dropped(TelemetrySignal.TRACES), flush=True)

telemetry = flowtel.configure_telemetry(
    service_name="child", exporter="otlp", otlp_protocol="grpc", logging=False,
    shutdown_timeout_s=1.0, batch_schedule_delay_s=0.05,
)

@flowtel.traced
def work(i):
    return i * 2

assert [work(i) for i in range(50)] == [i * 2 for i in range(50)]
"""


def _spawn(code: str, endpoint: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "FLOWTEL_"))}
    env["OTEL_EXPORTER_OTLP_ENDPOINT"] = endpoint
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(ROOT)])
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(CHILD_PRELUDE) + textwrap.dedent(code)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_line(proc: subprocess.Popen[str], expected: str) -> None:
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    assert line == expected, (line, proc.stderr.read() if proc.stderr else "")


class TestProcessExit:
    """The exit paths of a real process stay within the shutdown budget."""

    def test_atexit_hook_is_bounded(self, black_hole: BlackHoleServer) -> None:
        """A normal exit with a black-holed collector takes < 1 s after main ends."""
        proc = _spawn('print("main done", flush=True)\n', black_hole.endpoint)
        _wait_line(proc, "main done")
        started = time.monotonic()
        out, err = proc.communicate(timeout=30)
        exit_s = time.monotonic() - started
        assert proc.returncode == 0, err
        assert exit_s < 1.0 + SLACK_S
        assert out.strip() == "dropped 50"

    def test_sigterm_during_export_is_bounded(self, black_hole: BlackHoleServer) -> None:
        """SIGTERM while an export hangs: the app's handler exits within the budget."""
        code = """
        import signal
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
        print("exporting", flush=True)
        while True:
            signal.pause()
        """
        proc = _spawn(code, black_hole.endpoint)
        _wait_line(proc, "exporting")
        assert black_hole.wait_for_connections(1, timeout_s=10)  # the export is in flight
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
        exit_s = time.monotonic() - started
        assert proc.returncode == 143, err
        assert exit_s < 1.0 + SLACK_S
        assert out.strip() == "dropped 50"


class TestFork:
    """A process forked after configuration exports its own spans."""

    @pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
    def test_child_spans_arrive(
        self, otlp_grpc: OtlpGrpcReceiver, configure: Callable[..., flowtel.Telemetry]
    ) -> None:
        """Parent and child spans both reach the collector; the child's loss count starts at 0."""

        @flowtel.traced("forked.work")
        def work(who: str) -> str:
            return who

        telemetry = configure(
            exporter="otlp", otlp_endpoint=otlp_grpc.endpoint, otlp_protocol="grpc"
        )
        assert work("parent-before") == "parent-before"
        guard = telemetry.export_guard
        assert guard is not None
        guard.record_drop(TRACES, LossReason.QUEUE_FULL, 5)  # the parent has lost some spans
        pid = os.fork()
        if pid == 0:  # child: must never return into pytest
            code = 1
            try:
                work("child")
                code = 0 if telemetry.force_flush(timeout_s=5.0) else 2
                code = code or (0 if guard.dropped() == 0 else 3)  # child counts afresh
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        work("parent-after")
        assert telemetry.force_flush(timeout_s=5.0)
        spans = otlp_grpc.wait_for_spans(3)
        assert len({s.span.span_id for s in spans}) == 3
        assert guard.dropped() == 5
