"""Shutdown time against a broken collector, and queue cost, versus raw OpenTelemetry.

Run: ``python benchmarks/bench_reliability.py``. Everything is measured in this run on loopback:

1. Exit time: a child process ends 100 spans and exits normally while its OTLP/gRPC collector
   is black-holed (accepts TCP, never answers) or refused. Raw OpenTelemetry (TracerProvider +
   BatchSpanProcessor + OTLP exporter, the SDK's own exit hook) versus flowtel
   (``configure_telemetry(exporter="otlp")``, default 3 s budget). Wall time from "main done"
   to process exit.
2. Fault matrix figures: flowtel in-process with a 1 s budget; for each collector fault, the
   shutdown time and how many of 200 spans were received or counted lost.
3. Cost on the application thread: ``on_end`` (queueing a finished span) of flowtel's bounded
   batch processor versus the SDK's BatchSpanProcessor, measured interleaved.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
import timeit
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import (  # noqa: E402
    BatchSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from tests.support.otlp_receiver import (  # noqa: E402
    BlackHoleServer,
    OtlpGrpcReceiver,
    ResettingServer,
    refused_endpoint,
)

from flowtel._export._batch import BoundedBatchSpanProcessor  # noqa: E402
from flowtel._export._guard import ExportGuard  # noqa: E402

RAW_CHILD = """
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
provider = TracerProvider()
provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=ENDPOINT, insecure=True)))
tracer = provider.get_tracer("bench")
for i in range(100):
    tracer.start_span("work").end()
print("main done", flush=True)
"""

FLOWTEL_CHILD = """
import flowtel
flowtel.configure_telemetry(service_name="bench", exporter="otlp", otlp_endpoint=ENDPOINT,
                            otlp_protocol="grpc")
from opentelemetry import trace
t = trace.get_tracer("bench")
for i in range(100):
    t.start_span("work").end()
print("main done", flush=True)
"""


def exit_time_s(code: str, endpoint: str, limit_s: float = 120.0) -> float:
    """Seconds from the child's "main done" to its exit."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "FLOWTEL_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(ROOT)])
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code).replace("ENDPOINT", repr(endpoint))],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    assert line == "main done", line
    started = time.monotonic()
    proc.wait(limit_s)
    return time.monotonic() - started


class NullExporter(SpanExporter):
    """Accepts and forgets every batch."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


def on_end_cost_ns(rounds: int = 5, n: int = 100_000) -> tuple[float, float]:
    """Best ``on_end`` cost of each processor, measured interleaved with an idle worker."""
    provider = TracerProvider()
    span = provider.get_tracer("bench").start_span("s")
    span.end()
    big = n * rounds * 3 + 1
    sdk = BatchSpanProcessor(
        NullExporter(), max_queue_size=big, max_export_batch_size=big, schedule_delay_millis=3.6e6
    )
    ours = BoundedBatchSpanProcessor(
        NullExporter(),
        ExportGuard(),
        max_queue_size=big,
        max_export_batch_size=big,
        schedule_delay_s=3600,
    )
    best_sdk = best_ours = float("inf")
    for _ in range(rounds):
        best_sdk = min(best_sdk, timeit.timeit(lambda: sdk.on_end(span), number=n) / n * 1e9)
        best_ours = min(best_ours, timeit.timeit(lambda: ours.on_end(span), number=n) / n * 1e9)
    return best_sdk, best_ours


def fault_row(label: str, endpoint: str, receiver: OtlpGrpcReceiver | None) -> None:
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    guard = ExportGuard(shutdown_timeout_s=1.0)
    processor = BoundedBatchSpanProcessor(
        OTLPSpanExporter(endpoint=endpoint, insecure=True), guard, schedule_delay_s=0.05
    )
    provider = TracerProvider()
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("bench")
    worst_call_s = 0.0
    for _ in range(200):
        started = time.perf_counter()
        tracer.start_span("work").end()
        worst_call_s = max(worst_call_s, time.perf_counter() - started)
    started = time.monotonic()
    provider.shutdown()
    took = time.monotonic() - started
    received = len(receiver.spans()) if receiver else 0
    print(
        f"{label:<22} {took:>10.2f} {received:>9} {guard.dropped():>6} {worst_call_s * 1e3:>9.2f}"
    )


def fault_matrix() -> None:
    print("flowtel, 1 s budget, 200 spans, OTLP/gRPC")
    print(f"{'collector':<22} {'shutdown s':>10} {'received':>9} {'lost':>6} {'worst ms':>9}")
    fault_row("refused", refused_endpoint(), None)
    with BlackHoleServer() as hole:
        fault_row("black hole", hole.endpoint, None)
    with ResettingServer() as reset:
        fault_row("resets connection", reset.endpoint, None)
    with OtlpGrpcReceiver() as receiver:
        receiver.delay_s = 0.2
        fault_row("slow (0.2 s/request)", receiver.endpoint, receiver)
        receiver.clear()
        receiver.reset()
        receiver.unavailable(times=3)
        fault_row("3x UNAVAILABLE", receiver.endpoint, receiver)


def main() -> None:
    print("Exit time with a broken OTLP/gRPC collector (100 spans pending)")
    print(f"{'collector':<12} {'raw OTel (s)':>13} {'flowtel (s)':>12} {'ratio':>7}")
    with BlackHoleServer() as hole:
        for label, endpoint in (("black hole", hole.endpoint), ("refused", refused_endpoint())):
            raw = exit_time_s(RAW_CHILD, endpoint)
            ours = exit_time_s(FLOWTEL_CHILD, endpoint)
            print(f"{label:<12} {raw:>13.2f} {ours:>12.2f} {ours / raw:>7.2f}")

    print()
    fault_matrix()
    print()
    print("on_end cost on the application thread (queueing one span, best of 5 interleaved)")
    raw_ns, ours_ns = on_end_cost_ns()
    print(f"{'SDK BatchSpanProcessor':<34} {raw_ns:>8.0f} ns")
    ratio = ours_ns / raw_ns
    print(f"{'flowtel BoundedBatchSpanProcessor':<34} {ours_ns:>8.0f} ns  ratio {ratio:.2f}")


if __name__ == "__main__":
    main()
