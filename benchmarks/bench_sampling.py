"""Tail sampling (``sampling=``) cost versus raw OpenTelemetry at ratio 0.1, in one run.

Run: ``PYTHONPATH=src python benchmarks/bench_sampling.py`` (``--quick`` for a smoke run).

Prints, per call, CPU time of the application thread plus the export thread (process CPU
time), median of interleaved rounds:

1. a successful ``@traced`` call: flowtel with ``configure_telemetry(sample_rate=0.1,
   sampling={"errors": True})`` against raw OpenTelemetry (``ParentBased(TraceIdRatioBased(0.1))``,
   ``BatchSpanProcessor`` to a null exporter, ``start_as_current_span``), and against flowtel's
   own head sampling (``sample_rate=0.1``, no ``sampling=``, the exact-count default);
2. a failing call, with and without ``sampling=`` (tail sampling keeps the failing traces);
3. memory of the buffer at its caps (tracemalloc), and the time one trace decision takes.

NOT THE DEFAULTS: ``sample_rate=0.1`` and ``sampling=`` are the options under test, and both
sides export to a null exporter (flowtel through ``exporter="none"`` and a batch processor
where the OTLP one would go), so the figures are the sampling path, not a delivery pipeline.
The headline ``sample_rate=0.1`` row on the defaults is ``bench_defaults.py``'s.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import Status, StatusCode

import flowtel
from flowtel.tracing import Sampling, _tail
from flowtel.tracing._provider import RatioSampler
from flowtel.tracing._tail import TailSamplingProcessor


class NullExporter(SpanExporter):
    """Accepts and forgets every batch: the cost is what the process pays, not the network."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def per_call(fn: Callable[[], object], n: int, flush: Callable[[], object]) -> float:
    """Process CPU seconds per call, the export thread's work included (flushed at the end)."""
    gc.collect()
    start = time.process_time()
    for _ in range(n):
        fn()
    flush()
    return (time.process_time() - start) / n


def rounds(configs: dict[str, tuple[Callable[[], object], Callable[[], object]]], n: int,
           repeats: int) -> dict[str, float]:  # fmt: skip
    samples: dict[str, list[float]] = {name: [] for name in configs}
    for fn, flush in configs.values():
        per_call(fn, n // 10, flush)  # warm up
    for _ in range(repeats):  # interleaved: machine noise hits every row alike
        for name, (fn, flush) in configs.items():
            samples[name].append(per_call(fn, n, flush))
    return {name: statistics.median(v) for name, v in samples.items()}


def raw_pipeline() -> tuple[TracerProvider, Callable[[], None], Callable[[], None]]:
    provider = TracerProvider(sampler=ParentBased(TraceIdRatioBased(0.1)))
    provider.add_span_processor(BatchSpanProcessor(NullExporter(), max_queue_size=1 << 16))
    tracer = provider.get_tracer("bench")

    def ok() -> None:
        with tracer.start_as_current_span("bench.work", attributes={"k": "v"}):
            pass

    def failing() -> None:
        try:
            with tracer.start_as_current_span("bench.work", attributes={"k": "v"}):
                raise ValueError("boom")
        except ValueError:
            pass

    return provider, ok, failing


def flowtel_pipeline(**options: Any) -> tuple[flowtel.Telemetry, Callable[[], None],
                                              Callable[[], None]]:  # fmt: skip
    telemetry = flowtel.configure_telemetry(
        service_name="bench",
        exporter="none",
        span_exporters=[],
        force=True,
        **options,
    )
    # A batch processor to a null exporter where configure_telemetry puts the OTLP one: inside
    # the tail sampler when sampling= is set (span_exporters would export synchronously).
    batch = BatchSpanProcessor(NullExporter(), max_queue_size=1 << 16)
    tail = _tail._created if "sampling" in options else None
    if tail is not None:
        tail.add_exporter(batch)
    else:
        telemetry.tracer_provider.add_span_processor(batch)

    @flowtel.traced(attributes={"k": "v"})
    def ok() -> None:
        pass

    @flowtel.traced(attributes={"k": "v"})
    def boom() -> None:
        raise ValueError("boom")

    def failing() -> None:
        with contextlib.suppress(ValueError):
            boom()

    return telemetry, ok, failing


def bench_calls(n: int, repeats: int) -> None:
    raw, raw_ok, raw_fail = raw_pipeline()
    results: dict[str, float] = {}
    for label, options in (
        ("flowtel sample_rate=0.1 + sampling=errors (tail)", {"sampling": {"errors": True}}),
        ("flowtel sample_rate=0.1 (head only, exact counts)", {}),
    ):
        telemetry, ok, failing = flowtel_pipeline(sample_rate=0.1, **options)
        flush = telemetry.tracer_provider.force_flush
        configs = {
            "raw OTel ratio 0.1, success": (raw_ok, raw.force_flush),
            f"{label}, success": (ok, flush),
            "raw OTel ratio 0.1, failing": (raw_fail, raw.force_flush),
            f"{label}, failing": (failing, flush),
        }
        results.update(rounds(configs, n, repeats))
        telemetry.shutdown()
    raw.shutdown()
    base_ok = results["raw OTel ratio 0.1, success"]
    base_fail = results["raw OTel ratio 0.1, failing"]
    print(f"\n## Per call, CPU us (median of {repeats} interleaved rounds of {n:,})")
    print(f"{'configuration':62} {'us':>7} {'vs raw':>7}")
    for name, value in results.items():
        base = base_fail if name.endswith("failing") else base_ok
        print(f"{name:62} {value * 1e6:7.2f} {value / base:6.2f}x")


def bench_buffer(caps: Sequence[tuple[int, int]]) -> None:
    """Memory held by the buffer when it is full of open traces, and one decision's cost."""
    print("\n## Buffer at its caps (undecided traces whose roots are still running)")
    print(
        f"{'max_traces':>10} {'max_spans':>10} {'spans held':>10} {'traced MB':>10} {'per span':>9}"
    )
    for max_traces, max_spans in caps:
        provider = TracerProvider(sampler=RatioSampler(0.0, record_unsampled=True))
        tail = TailSamplingProcessor(Sampling(head_rate=0.0, max_traces=max_traces,
                                              max_spans=max_spans))  # fmt: skip
        tail.add_exporter(BatchSpanProcessor(NullExporter()))
        provider.add_span_processor(tail)
        tracer = provider.get_tracer("bench")
        per_trace = max(1, max_spans // max_traces)
        roots = [tracer.start_span("root") for _ in range(max_traces)]
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        for root in roots:
            ctx = trace.set_span_in_context(root)
            for _ in range(per_trace):
                tracer.start_span("child", context=ctx, attributes={"k": "v" * 16}).end()
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
        spans = tail._buffered
        print(f"{max_traces:>10,} {max_spans:>10,} {spans:>10,} {held / 1e6:>10.1f} "
              f"{held / max(spans, 1):>8.0f}B")  # fmt: skip
        start = time.process_time()
        for root in roots:
            root.set_status(Status(StatusCode.OK))
            root.end()
        per_decision = (time.process_time() - start) / len(roots)
        print(
            f"{'':>10} one root end + decision (drop, {per_trace} spans): "
            f"{per_decision * 1e6:.1f} us"
        )
        provider.shutdown()


def main(argv: Sequence[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small counts, for CI smoke runs")
    args = parser.parse_args(argv)
    n, repeats = (5_000, 3) if args.quick else (20_000, 7)
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
          f"load {os.getloadavg()[0]:.1f}")  # fmt: skip
    print("(not the defaults: sample_rate=0.1 and sampling=, both sides to a null exporter)")
    bench_calls(n, repeats)
    bench_buffer([(1024, 4096)] if args.quick else [(1024, 4096), (4096, 32768)])


if __name__ == "__main__":
    main(sys.argv[1:])
