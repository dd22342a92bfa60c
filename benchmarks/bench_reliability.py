"""Shutdown time against a broken collector, and queue cost, versus raw OpenTelemetry.

Run: ``python benchmarks/bench_reliability.py``. Everything is measured in this run on loopback:

1. Exit time: a child process ends 100 spans and exits normally while its OTLP/gRPC collector
   is black-holed (accepts TCP, never answers) or refused. Raw OpenTelemetry (TracerProvider +
   BatchSpanProcessor + OTLP exporter, the SDK's own exit hook) versus flowtel
   (``configure_telemetry(exporter="otlp")``, default 3 s budget). Wall time from "main done"
   to process exit.
2. Per-span cost on the application thread: ``on_end`` of flowtel's bounded batch processor
   versus the SDK's BatchSpanProcessor, both feeding an exporter that does nothing.
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
from tests.support.otlp_receiver import BlackHoleServer, refused_endpoint  # noqa: E402

from flowtel._batch_processor import BoundedBatchSpanProcessor  # noqa: E402
from flowtel._export_guard import ExportGuard  # noqa: E402

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
                            otlp_protocol="grpc", logging=False)
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


def span_cost_ns(processor: object, n: int = 50_000, repeats: int = 5) -> float:
    provider = TracerProvider()
    provider.add_span_processor(processor)  # type: ignore[arg-type]
    tracer = provider.get_tracer("bench")

    def one() -> None:
        tracer.start_span("x").end()

    best = min(timeit.repeat(one, number=n, repeat=repeats)) / n * 1e9
    provider.shutdown()
    return best


def main() -> None:
    print("Exit time with a broken OTLP/gRPC collector (100 spans pending)")
    print(f"{'collector':<12} {'raw OTel (s)':>13} {'flowtel (s)':>12} {'ratio':>7}")
    with BlackHoleServer() as hole:
        for label, endpoint in (("black hole", hole.endpoint), ("refused", refused_endpoint())):
            raw = exit_time_s(RAW_CHILD, endpoint)
            ours = exit_time_s(FLOWTEL_CHILD, endpoint)
            print(f"{label:<12} {raw:>13.2f} {ours:>12.2f} {ours / raw:>7.2f}")

    print()
    print("Per-span cost on the application thread (start + end, no-op exporter)")
    # A queue large enough that nothing is dropped: this measures the normal path.
    queue = {"max_queue_size": 400_000, "max_export_batch_size": 512}
    raw_ns = span_cost_ns(BatchSpanProcessor(NullExporter(), **queue))
    ours_ns = span_cost_ns(BoundedBatchSpanProcessor(NullExporter(), ExportGuard(), **queue))
    ratio = ours_ns / raw_ns
    print(f"{'SDK BatchSpanProcessor':<34} {raw_ns:>8.0f} ns")
    print(f"{'flowtel BoundedBatchSpanProcessor':<34} {ours_ns:>8.0f} ns  ratio {ratio:.2f}")


if __name__ == "__main__":
    main()
