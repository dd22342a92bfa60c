"""An OTLP/gRPC sink for benchmarks: accepts every export, counts spans and log records.

Run as its own process (``python benchmarks/_sink.py``) so that decoding never competes with the
measured process for the GIL; it prints its port on the first line of stdout. The count is read
with a unary call to ``/flowtel.bench.Sink/Count``, answered as ``b"<spans> <log records>"``.
Both flowtel and the raw OpenTelemetry anchor export to the same sink in a benchmark run.
"""

from __future__ import annotations

import sys
import threading
from concurrent import futures
from typing import Any

import grpc
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

_lock = threading.Lock()
_counts = [0, 0]


def _traces(request: bytes, context: Any) -> bytes:
    parsed = ExportTraceServiceRequest.FromString(request)
    n = sum(len(s.spans) for r in parsed.resource_spans for s in r.scope_spans)
    with _lock:
        _counts[0] += n
    return ExportTraceServiceResponse().SerializeToString()  # type: ignore[no-any-return]


def _logs(request: bytes, context: Any) -> bytes:
    parsed = ExportLogsServiceRequest.FromString(request)
    n = sum(len(s.log_records) for r in parsed.resource_logs for s in r.scope_logs)
    with _lock:
        _counts[1] += n
    return ExportLogsServiceResponse().SerializeToString()  # type: ignore[no-any-return]


def _metrics(request: bytes, context: Any) -> bytes:
    return ExportMetricsServiceResponse().SerializeToString()  # type: ignore[no-any-return]


def _count(request: bytes, context: Any) -> bytes:
    with _lock:
        return f"{_counts[0]} {_counts[1]}".encode()


def _handler(fn: Any) -> grpc.RpcMethodHandler:
    return grpc.unary_unary_rpc_method_handler(fn)


def main() -> None:
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=4),
        options=[("grpc.max_receive_message_length", 64 * 1024 * 1024)],
    )
    server.add_generic_rpc_handlers(
        [
            grpc.method_handlers_generic_handler(
                "opentelemetry.proto.collector.trace.v1.TraceService", {"Export": _handler(_traces)}
            ),
            grpc.method_handlers_generic_handler(
                "opentelemetry.proto.collector.logs.v1.LogsService", {"Export": _handler(_logs)}
            ),
            grpc.method_handlers_generic_handler(
                "opentelemetry.proto.collector.metrics.v1.MetricsService",
                {"Export": _handler(_metrics)},
            ),
            grpc.method_handlers_generic_handler("flowtel.bench.Sink", {"Count": _handler(_count)}),
        ]
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(port, flush=True)
    sys.stdin.read()  # runs until the benchmark closes our stdin (or exits)
    server.stop(0)


if __name__ == "__main__":
    main()
