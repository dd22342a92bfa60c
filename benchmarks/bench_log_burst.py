"""A burst of log records to a collector that never answers: memory, caller latency, total time.

Run: ``python benchmarks/bench_log_burst.py [records]`` (default 100,000). Exports over OTLP/gRPC
to a loopback socket that accepts connections and never replies, once through flowtel
(``configure_telemetry()``) and once through raw OpenTelemetry (SDK ``LoggingHandler`` on an
SDK ``LoggerProvider`` with a ``BatchLogRecordProcessor`` and the OTLP exporter), in the same run.
Prints tracemalloc peak, the first ``logger.info`` call (which pays the one-time setup: the SDK
logger, the log bridge's probe, the scrubbing rules) and the worst call after it, and total time
for each, and the ratios. flowtel runs on the defaults (``configure_telemetry()`` with only the
endpoint and protocol given).
"""

from __future__ import annotations

import logging
import socket
import sys
import threading
import time
import tracemalloc
import warnings
from collections.abc import Callable

import flowtel


def black_hole() -> tuple[str, Callable[[], None]]:
    """A loopback TCP endpoint that accepts and never answers; returns (endpoint, stop)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    threading.Thread(target=accept, daemon=True).start()

    def close() -> None:
        stop.set()
        for conn in held:
            conn.close()
        server.close()

    return f"http://127.0.0.1:{server.getsockname()[1]}", close


def burst(logger: logging.Logger, records: int) -> tuple[float, float, float, float]:
    """(peak MB, first call ms, worst later call ms, total s) for ``records`` INFO records inside
    one span."""
    first = worst = 0.0
    tracemalloc.start()
    started = time.perf_counter()
    with flowtel.span("burst"):
        for i in range(records):
            t0 = time.perf_counter()
            logger.info("record %d", i, extra={"order_id": i})
            if i:
                worst = max(worst, time.perf_counter() - t0)
            else:
                first = time.perf_counter() - t0
    total = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 1e6, first * 1e3, worst * 1e3, total


def main() -> None:
    records = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    endpoint, stop = black_hole()
    logging.getLogger("opentelemetry").propagate = False  # keep the SDK's complaints off stderr
    telemetry = flowtel.configure_telemetry(
        service_name="bench",
        otlp_endpoint=endpoint,
        otlp_protocol="grpc",
    )
    ours = burst(logging.getLogger("bench.flowtel"), records)
    telemetry.shutdown(timeout_s=1)

    from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
    from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor

    telemetry = flowtel.configure_telemetry(
        service_name="bench", exporter="none", logging=False, force=True
    )
    provider = LoggerProvider(shutdown_on_exit=False)
    provider.add_log_record_processor(
        BatchLogRecordProcessor(OTLPLogExporter(endpoint=endpoint, insecure=True))
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        handler = LoggingHandler(logger_provider=provider)
    raw_logger = logging.getLogger("bench.raw")
    raw_logger.propagate = False
    raw_logger.setLevel(logging.INFO)
    raw_logger.addHandler(handler)
    raw = burst(raw_logger, records)
    threading.Thread(target=provider.shutdown, daemon=True).start()
    telemetry.shutdown(timeout_s=1)
    stop()

    print(f"{records} records to a black-holed OTLP/gRPC collector")
    print(f"{'':10}{'peak MB':>10}{'first call ms':>15}{'worst later ms':>16}{'total s':>10}")
    for label, (peak, first, worst, total) in (("raw OTel", raw), ("flowtel", ours)):
        print(f"{label:10}{peak:10.1f}{first:15.2f}{worst:16.2f}{total:10.2f}")
    print(f"ratio flowtel/raw: peak {ours[0] / raw[0]:.2f}x, total {ours[3] / raw[3]:.2f}x")


if __name__ == "__main__":
    main()
