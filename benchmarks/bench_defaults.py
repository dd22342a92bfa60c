"""The headline costs, measured on the defaults, against raw OpenTelemetry doing the same work.

flowtel runs exactly as ``configure_telemetry(service_name=..., otlp_endpoint=...)`` sets it up:
error statistics, scrubbing, logging, the default sampler and its own export pipeline. The raw
anchor is a hand-wired SDK pipeline (TracerProvider, BatchSpanProcessor, the OTLP gRPC
exporter, the SDK's LoggingHandler) given the same attributes. Both export to the same OTLP
sink, a separate process (``_sink.py``), at the same time.

Each row runs paired rounds (raw, then flowtel, order alternating) and reports the median of the
per-round ratios, which cancels most of the drift of a shared machine. ``BENCH_QUICK=1`` runs
short rounds (``make bench-quick``). Lines ``RESULT <key> <ratio>`` feed ``run_all.py``.

Two rows are not on the defaults, and say so in their output: export throughput raises both
queues to hold the whole burst (a 2,048-span queue drops part of a 4-thread burst on either side,
and a rate of delivered spans is only comparable when neither drops), and OTLP encoding times the
encoders alone on spans captured in memory (``exporter="none"`` plus an in-memory exporter).

Run: ``python benchmarks/bench_defaults.py``.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

QUICK = os.environ.get("BENCH_QUICK") == "1" or "--quick" in sys.argv
ONLY = {k for k in os.environ.get("BENCH_ONLY", "").split(",") if k}
"""``BENCH_ONLY=failing,nested_10``: run only these rows (keys as in the RESULT lines)."""


def wanted(*keys: str) -> bool:
    return not ONLY or bool(ONLY.intersection(keys))


ROUNDS = 5 if QUICK else 11
CALLS = 2_000 if QUICK else 10_000
EXPORT_SPANS = 40_000 if QUICK else 200_000
HERE = Path(__file__).resolve().parent


def start_sink() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "_sink.py")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    port = int(proc.stdout.readline())
    return proc, f"http://127.0.0.1:{port}"


def sink_counts(endpoint: str) -> tuple[int, int]:
    import grpc

    with grpc.insecure_channel(endpoint.removeprefix("http://")) as channel:
        raw = channel.unary_unary("/flowtel.bench.Sink/Count")(b"", timeout=10)
    spans, logs = raw.decode().split()
    return int(spans), int(logs)


#: Called before each timed batch: both pipelines export what earlier batches left queued, so
#: one side's background export never runs during the other side's timing (set in main()).
SETTLE: list[Callable[[], object]] = []


def per_call_ns(fn: Callable[[], object], calls: int) -> float:
    for settle in SETTLE:
        settle()
    gc.collect()
    start = time.perf_counter_ns()
    for _ in range(calls):
        fn()
    return (time.perf_counter_ns() - start) / calls


def paired(label: str, raw: Callable[[], object], ours: Callable[[], object], calls: int) -> float:
    """Median over rounds of flowtel/raw, the order alternating round by round."""
    ratios, raw_ns, our_ns = [], [], []
    for _ in range(20):  # warm both paths (caches, first-use imports)
        raw()
        ours()
    for i in range(ROUNDS):
        if i % 2:
            o = per_call_ns(ours, calls)
            r = per_call_ns(raw, calls)
        else:
            r = per_call_ns(raw, calls)
            o = per_call_ns(ours, calls)
        raw_ns.append(r)
        our_ns.append(o)
        ratios.append(o / r)
    ratio = statistics.median(ratios)
    spread = (min(ratios), max(ratios))
    print(
        f"{label:<52} raw {statistics.median(raw_ns):9.0f} ns  flowtel "
        f"{statistics.median(our_ns):9.0f} ns  ratio {ratio:.2f}x "
        f"(rounds {spread[0]:.2f}-{spread[1]:.2f})",
        flush=True,
    )
    return ratio


class Raw:
    """The hand-wired anchor: the SDK's own pieces, exporting to the same sink."""

    def __init__(self, endpoint: str, sample_rate: float = 1.0) -> None:
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
        from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

        resource = Resource.create({"service.name": "raw"})
        self.provider = TracerProvider(
            resource=resource,
            sampler=ParentBased(TraceIdRatioBased(sample_rate)),
            shutdown_on_exit=False,
        )
        self.processor = BatchSpanProcessor(
            OTLPSpanExporter(endpoint=endpoint, insecure=True), max_queue_size=1 << 18
        )
        self.provider.add_span_processor(self.processor)
        self.tracer = self.provider.get_tracer("bench")
        self.logger_provider = LoggerProvider(resource=resource, shutdown_on_exit=False)
        self.logger_provider.add_log_record_processor(
            BatchLogRecordProcessor(OTLPLogExporter(endpoint=endpoint, insecure=True))
        )
        self.log = logging.getLogger("raw.app")
        self.log.propagate = False
        self.log.setLevel(logging.INFO)
        self.log.addHandler(LoggingHandler(logger_provider=self.logger_provider))

    def flush(self) -> None:
        self.provider.force_flush(30_000)
        self.logger_provider.force_flush(30_000)

    def shutdown(self) -> None:
        self.provider.shutdown()
        self.logger_provider.shutdown()


def code_attributes(fn: Callable[..., object], component: str, operation: str) -> dict[str, Any]:
    """What @traced puts on a span, so that the raw side does the same attribute work."""
    code = fn.__code__
    return {
        "code.function.name": fn.__qualname__,
        "code.file.path": code.co_filename,
        "code.line.number": code.co_firstlineno,
        "flowtel.component": component,
        "flowtel.operation": operation,
    }


def drive(coro_fn: Callable[[], Any]) -> Callable[[], object]:
    def run() -> object:
        coro = coro_fn()
        try:
            coro.send(None)
        except StopIteration as stop:
            return stop.value
        raise RuntimeError("coroutine suspended")

    return run


def main() -> int:
    import flowtel

    sink, endpoint = start_sink()
    results: dict[str, float] = {}
    try:
        telemetry = flowtel.configure_telemetry(service_name="bench", otlp_endpoint=endpoint)
        raw = Raw(endpoint)
        tracer = raw.tracer
        SETTLE[:] = [lambda: raw.flush(), lambda: telemetry.force_flush(30)]

        # --- 1. successful call, sync and async ---------------------------------------------
        @flowtel.traced(component="bench", operation="work")
        def work() -> int:
            return 1

        attrs = code_attributes(work.__wrapped__, "bench", "work")  # type: ignore[attr-defined]

        def raw_work() -> int:
            with tracer.start_as_current_span("work", attributes=attrs):
                return 1

        if wanted("success_sync"):
            results["success_sync"] = paired("successful call, sync", raw_work, work, CALLS)

        @flowtel.traced(component="bench", operation="awork")
        async def awork() -> int:
            return 1

        async def raw_awork() -> int:
            with tracer.start_as_current_span("awork", attributes=attrs):
                return 1

        if wanted("success_async"):
            results["success_async"] = paired(
                "successful call, async", drive(raw_awork), drive(awork), CALLS
            )

        # --- 2. failing call ------------------------------------------------------------------
        @flowtel.traced(component="bench", operation="fail")
        def fail() -> None:
            raise ValueError("payment declined for order 1234")

        def call_fail() -> None:
            try:  # noqa: SIM105 - suppress() would add its own cost to what is measured
                fail()
            except ValueError:
                pass

        def raw_fail() -> None:
            try:
                with tracer.start_as_current_span("fail", attributes=attrs):
                    raise ValueError("payment declined for order 1234")
            except ValueError:
                pass

        if wanted("failing"):
            results["failing"] = paired(
                "failing call (exception recorded)", raw_fail, call_fail, CALLS
            )

        # --- 3. an exception escaping nested frames -------------------------------------------
        def nested_flowtel(depth: int) -> Callable[[], None]:
            @flowtel.traced(component="bench", operation="leaf")
            def leaf() -> None:
                raise ValueError("deep failure")

            fn: Callable[[], None] = leaf
            for level in range(depth - 1):
                inner = fn

                @flowtel.traced(component="bench", operation=f"level{level}")
                def outer(inner: Callable[[], None] = inner) -> None:
                    inner()

                fn = outer

            def run() -> None:
                try:  # noqa: SIM105
                    fn()
                except ValueError:
                    pass

            return run

        def nested_raw(depth: int) -> Callable[[], None]:
            def level(n: int) -> None:
                with tracer.start_as_current_span(f"level{n}", attributes=attrs):
                    if n == 0:
                        raise ValueError("deep failure")
                    level(n - 1)

            def run() -> None:
                try:  # noqa: SIM105
                    level(depth - 1)
                except ValueError:
                    pass

            return run

        deep_calls = max(CALLS // 20, 100)
        if wanted("nested_10"):
            results["nested_10"] = paired(
                "exception through 10 nested frames", nested_raw(10), nested_flowtel(10), deep_calls
            )
        if wanted("nested_50"):
            results["nested_50"] = paired(
                "exception through 50 nested frames",
                nested_raw(50),
                nested_flowtel(50),
                deep_calls // 5,
            )

        # --- 4. a log record inside a span ------------------------------------------------------
        app_log = logging.getLogger("bench.app")

        def flowtel_log() -> None:
            with flowtel.span("logging"):
                app_log.info("order %s placed for %s", 1234, "alice")

        def raw_log() -> None:
            with tracer.start_as_current_span("logging"):
                raw.log.info("order %s placed for %s", 1234, "alice")

        if wanted("log_record"):
            results["log_record"] = paired("log record inside a span", raw_log, flowtel_log, CALLS)

        # --- 5. sampled out at 0.1, counted exactly -------------------------------------------
        telemetry.shutdown()
        raw.shutdown()
        telemetry = flowtel.configure_telemetry(
            service_name="bench", otlp_endpoint=endpoint, sample_rate=0.1, force=True
        )
        raw = Raw(endpoint, sample_rate=0.1)
        tracer = raw.tracer
        SETTLE[:] = [lambda: raw.flush(), lambda: telemetry.force_flush(30)]

        @flowtel.traced(component="bench", operation="sampled")
        def sampled() -> int:
            return 1

        def raw_sampled() -> int:
            with tracer.start_as_current_span("sampled", attributes=attrs):
                return 1

        if wanted("sampled_0_1"):
            results["sampled_0_1"] = paired(
                "call at sample_rate=0.1 (flowtel counts every call)", raw_sampled, sampled, CALLS
            )
        SETTLE.clear()
        telemetry.shutdown()
        raw.shutdown()

        # --- 6. export throughput: 4 threads, queue sized for the load ------------------------
        if wanted("export_throughput"):
            results["export_throughput"] = export_throughput(flowtel, endpoint)

        # --- 7. OTLP encoding per span ----------------------------------------------------------
        if wanted("encoding"):
            results["encoding"] = encoding_cost(flowtel)
    finally:
        if sink.stdin is not None:
            sink.stdin.close()
        sink.wait(timeout=10)
    print()
    for key, ratio in results.items():
        print(f"RESULT {key} {ratio:.3f}")
    return 0


def export_throughput(flowtel: Any, endpoint: str) -> float:
    """Delivered spans per second at the sink, flowtel over raw (higher is better for flowtel:
    the figure printed is flowtel/raw throughput, so > 1 means flowtel delivers faster).

    Each round builds a fresh pipeline on each side (order alternating), starts the clock,
    ends ``EXPORT_SPANS`` spans from 4 threads and stops it when the sink has counted them all.
    The queues hold the whole load, so any drop is a failure and is printed."""
    import grpc

    per_thread = EXPORT_SPANS // 4
    channel = grpc.insecure_channel(endpoint.removeprefix("http://"))
    count = channel.unary_unary("/flowtel.bench.Sink/Count")

    def delivered() -> int:
        return int(count(b"", timeout=10).decode().split()[0])

    def run(start_span: Callable[[], None]) -> tuple[float, float]:
        """Spans/s over the whole load, and over all but its last partial batch (the SDK's
        processor holds that back for its schedule delay, 5 s by default)."""
        before = delivered()
        threads = [
            threading.Thread(target=lambda: [start_span() for _ in range(per_thread)])
            for _ in range(4)
        ]
        gc.collect()
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        deadline = time.monotonic() + 120
        bulk, bulk_s = EXPORT_SPANS - EXPORT_SPANS % 512, 0.0
        while (n := delivered() - before) < EXPORT_SPANS and time.monotonic() < deadline:
            if not bulk_s and n >= bulk:
                bulk_s = time.perf_counter() - t0
            time.sleep(0.02)  # one cheap unary call per poll: the sink counts, not us
        total_s = time.perf_counter() - t0
        return (delivered() - before) / total_s, bulk / (bulk_s or total_s)

    def ours() -> tuple[tuple[float, float], int]:
        telemetry = flowtel.configure_telemetry(
            service_name="bench",
            otlp_endpoint=endpoint,
            batch_max_queue_size=EXPORT_SPANS,  # not the default: see the module docstring
            force=True,
        )
        tracer = telemetry.tracer_provider.get_tracer("bench")
        rate = run(lambda: tracer.start_span("export").end())
        dropped = telemetry.export_guard.dropped() if telemetry.export_guard else 0
        telemetry.shutdown()
        return rate, dropped

    def theirs() -> tuple[float, float]:
        raw = Raw(endpoint)
        tracer = raw.tracer
        rate = run(lambda: tracer.start_span("export").end())
        raw.shutdown()
        return rate

    rounds = 3 if QUICK else 5
    ratios: list[float] = []
    bulk_ratios: list[float] = []
    our_rates, raw_rates, drops = [], [], 0
    for i in range(rounds):
        if i % 2:
            raw_rate = theirs()
            our_rate, dropped = ours()
        else:
            our_rate, dropped = ours()
            raw_rate = theirs()
        drops += dropped
        our_rates.append(our_rate[0])
        raw_rates.append(raw_rate[0])
        ratios.append(our_rate[0] / raw_rate[0])
        bulk_ratios.append(our_rate[1] / raw_rate[1])
    channel.close()
    ratio = statistics.median(ratios)
    print(
        f"{'export throughput, ' + str(EXPORT_SPANS) + ' spans from 4 threads':<52} raw "
        f"{statistics.median(raw_rates):9.0f}/s  flowtel {statistics.median(our_rates):9.0f}/s  "
        f"ratio {ratio:.2f}x (rounds {min(ratios):.2f}-{max(ratios):.2f}; higher is better; "
        f"flowtel dropped {drops})",
        flush=True,
    )
    print(f"{'  (not the defaults: both queues hold the burst)':<52}", flush=True)
    print(
        f"{'  without the last partial batch':<52} ratio {statistics.median(bulk_ratios):.2f}x "
        f"(rounds {min(bulk_ratios):.2f}-{max(bulk_ratios):.2f})",
        flush=True,
    )
    return ratio


def encoding_cost(flowtel: Any) -> float:
    """OTLP protobuf encoding per span, as each exporter does it: the raw SDK exporter's
    ``encode_spans`` + serialisation of raw spans, against flowtel's export path (scrub,
    encode, serialise) of ``@traced`` spans carrying the same attributes."""
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    try:  # flowtel's OTLP/gRPC exporter encodes (and scrubs) with its own encoder
        from flowtel._export._encode import SpanEncoder

        flowtel_encode: Callable[[Any], bytes] = SpanEncoder().encode
    except ImportError:  # before it existed: scrub, then the SDK's encoder
        from flowtel._export._scrub import scrub_spans

        def flowtel_encode(spans: Any) -> bytes:
            return encode_spans(scrub_spans(spans)).SerializeToString()  # type: ignore[no-any-return]

    ours_exp = InMemorySpanExporter()
    telemetry = flowtel.configure_telemetry(
        service_name="bench", exporter="none", span_exporters=[ours_exp], force=True
    )

    @flowtel.traced(component="bench", operation="encode")
    def encode_me() -> int:
        return 1

    for _ in range(512):
        encode_me()
    ours = list(ours_exp.get_finished_spans())
    telemetry.shutdown()
    raw_exp = InMemorySpanExporter()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(raw_exp))
    tracer = provider.get_tracer("bench")
    attrs = code_attributes(encode_me.__wrapped__, "bench", "encode")  # type: ignore[attr-defined]
    for _ in range(512):
        with tracer.start_as_current_span("encode_me", attributes=attrs):
            pass
    theirs = list(raw_exp.get_finished_spans())
    calls = 20 if QUICK else 100
    ratio = paired(
        "OTLP encoding, per batch of 512 spans (encoders alone)",
        lambda: encode_spans(theirs).SerializeToString(),
        lambda: flowtel_encode(ours),
        calls,
    )
    raw_us = per_call_ns(lambda: encode_spans(theirs).SerializeToString(), calls) / 512 / 1000
    our_us = per_call_ns(lambda: flowtel_encode(ours), calls) / 512 / 1000
    print(f"{'  per span':<52} raw {raw_us:6.2f} us  flowtel {our_us:6.2f} us", flush=True)
    return ratio


if __name__ == "__main__":
    asyncio.set_event_loop_policy(None)
    sys.exit(main())
