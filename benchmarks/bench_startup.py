"""Process start cost: ``import flowtel; configure_telemetry(exporter='otlp')`` vs raw SDK wiring.

Run: ``python benchmarks/bench_startup.py``. Each variant runs as a fresh interpreter, interleaved
in a shuffled order, ``RUNS`` times; the median wall time is reported with the ratio against the
raw gRPC script.

Against an earlier flowtel: ``BENCH_STARTUP_AGAINST=<a checkout's src directory>`` adds the two
flowtel scripts run with that tree first on ``PYTHONPATH``, and prints the paired difference (each
round runs both trees, so a busy moment of the machine hits both). For example::

    git worktree add /tmp/before 921d0e8
    BENCH_STARTUP_AGAINST=/tmp/before/src BENCH_STARTUP_RUNS=61 python benchmarks/bench_startup.py

Both sides start from compiled bytecode, as after ``pip install``: pip compiles the SDK's modules
when it installs them, so flowtel's are compiled here first (an editable install under
``PYTHONDONTWRITEBYTECODE=1`` would otherwise recompile flowtel's sources in every run).
"""

from __future__ import annotations

import os
import random
import statistics
import subprocess
import sys
import time

RUNS = int(os.environ.get("BENCH_STARTUP_RUNS", "15"))
AGAINST = os.environ.get("BENCH_STARTUP_AGAINST", "")

# The reference is "a script that wires the raw SDK with the OTLP gRPC exporter": the
# traces-only script is the strictest reading; the three-signal one wires what flowtel wires.
RAW_GRPC_TRACES = """
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
provider = TracerProvider(resource=Resource.create({"service.name": "bench"}))
provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
trace.set_tracer_provider(provider)
"""

RAW_GRPC_ALL = (
    RAW_GRPC_TRACES
    + """
from opentelemetry import metrics, _logs
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
res = provider.resource
metrics.set_meter_provider(MeterProvider(resource=res,
    metric_readers=[PeriodicExportingMetricReader(OTLPMetricExporter())]))
lp = LoggerProvider(resource=res)
lp.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter()))
_logs.set_logger_provider(lp)
"""
)

FLOWTEL_DEFAULT = """
import flowtel
flowtel.configure_telemetry(service_name="bench", exporter="otlp")
"""

FLOWTEL_HTTP = """
import flowtel
flowtel.configure_telemetry(service_name="bench", exporter="otlp", otlp_protocol="http/protobuf")
"""

FLOWTEL_GRPC_NAME = "flowtel, otlp (default protocol: grpc)"
FLOWTEL_HTTP_NAME = "flowtel, otlp_protocol=http/protobuf"
VARIANTS = {
    "raw SDK, gRPC, traces only": RAW_GRPC_TRACES,
    "raw SDK, gRPC, traces+metrics+logs": RAW_GRPC_ALL,
    FLOWTEL_GRPC_NAME: FLOWTEL_DEFAULT,
    FLOWTEL_HTTP_NAME: FLOWTEL_HTTP,
}


def run_once(code: str, src: str = "") -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "FLOWTEL_"))}
    if src:
        env["PYTHONPATH"] = src
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> int:
    import compileall
    import pathlib

    import flowtel

    compileall.compile_dir(str(pathlib.Path(flowtel.__file__).parent), quiet=1)
    runs: dict[str, tuple[str, str]] = {name: (code, "") for name, code in VARIANTS.items()}
    if AGAINST:
        compileall.compile_dir(AGAINST, quiet=1)
        runs[f"before: {FLOWTEL_GRPC_NAME}"] = (FLOWTEL_DEFAULT, AGAINST)
        runs[f"before: {FLOWTEL_HTTP_NAME}"] = (FLOWTEL_HTTP, AGAINST)
    times: dict[str, list[float]] = {name: [] for name in runs}
    for code, src in runs.values():  # warm the OS page cache
        run_once(code, src)
    order = list(runs)
    for _ in range(RUNS):
        random.shuffle(order)
        for name in order:
            times[name].append(run_once(*runs[name]))
    base = statistics.median(times["raw SDK, gRPC, traces only"])
    for name, samples in times.items():
        median = statistics.median(samples)
        print(f"{name:<48} median {median * 1000:7.1f} ms   ratio {median / base:.3f}x")
    if AGAINST:
        for name in (FLOWTEL_GRPC_NAME, FLOWTEL_HTTP_NAME):
            diffs = [
                (a - b) * 1000 for a, b in zip(times[name], times[f"before: {name}"], strict=True)
            ]
            print(
                f"{name}: now - before, paired: median {statistics.median(diffs):+.2f} ms, "
                f"mean {statistics.mean(diffs):+.2f} ms over {RUNS} rounds"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
