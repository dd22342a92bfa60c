"""Real OTLP receivers for tests: gRPC and HTTP servers that decode opentelemetry-proto.

Why real servers: asserting on what actually crosses the wire (the encoded protobuf a collector
would receive) catches bugs that in-memory exporters hide: resource merging, attribute encoding,
header propagation, compression, retry behaviour. Both receivers bind 127.0.0.1 on a free port,
keep every accepted ``Export*ServiceRequest`` thread-safely and let a test wait for telemetry
with a deadline (a condition variable, never a fixed sleep).

Fault injection for reliability tests: :meth:`OtlpReceiver.unavailable` (gRPC ``UNAVAILABLE`` /
HTTP 503 for the next N requests, then recovery), :meth:`OtlpReceiver.fail_with` (any HTTP
status / gRPC code), :attr:`OtlpReceiver.delay_s` (slow collector), plus :class:`BlackHoleServer`
(accepts TCP, never answers), :class:`ResettingServer` (reads the request, then resets the
connection) and :func:`refused_endpoint` (a loopback port nobody listens on).

Typical use::

    receiver = OtlpGrpcReceiver().start()
    exporter = OTLPSpanExporter(endpoint=receiver.endpoint, insecure=True)
    ...
    span = receiver.wait_for_span("checkout")
    assert span.resource["service.name"] == "shop"
    assert span.attributes["order.id"] == 42
"""

from __future__ import annotations

import contextlib
import gzip
import socket
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Mapping
from concurrent import futures
from dataclasses import dataclass, field
from enum import StrEnum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple, TypeVar

import grpc
from google.protobuf import json_format
from google.protobuf.duration_pb2 import Duration
from google.protobuf.message import DecodeError, Message
from google.rpc.error_details_pb2 import RetryInfo
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from opentelemetry.proto.metrics.v1.metrics_pb2 import Metric
from opentelemetry.proto.trace.v1.trace_pb2 import Span

__all__ = [
    "BlackHoleServer",
    "FaultKind",
    "MetricPoint",
    "OtlpGrpcReceiver",
    "OtlpHttpReceiver",
    "OtlpReceiver",
    "ReceivedLog",
    "ReceivedRequest",
    "ReceivedSpan",
    "ResettingServer",
    "Signal",
    "any_value_to_python",
    "attributes_to_dict",
    "refused_endpoint",
]

_T = TypeVar("_T")
DEFAULT_TIMEOUT_S = 10.0
_RETRY_AFTER = "Retry-After"


# ------------------------------------------------------------------------------------------
# Decoding helpers
# ------------------------------------------------------------------------------------------
def any_value_to_python(value: AnyValue) -> Any:
    """Decode an OTLP ``AnyValue`` into the matching Python value (``None`` when empty)."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [any_value_to_python(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return attributes_to_dict(value.kvlist_value.values)
    return getattr(value, kind)


def attributes_to_dict(attributes: Iterable[KeyValue]) -> dict[str, Any]:
    """Decode repeated ``KeyValue`` attributes into a plain dict."""
    return {kv.key: any_value_to_python(kv.value) for kv in attributes}


class Signal(StrEnum):
    """The three OTLP signals, valued as their HTTP path suffix."""

    TRACES = "traces"
    METRICS = "metrics"
    LOGS = "logs"


class ReceivedRequest(NamedTuple):
    """One accepted export request: which signal, how it came, its headers and the message."""

    signal: Signal
    transport: str  # "grpc" or "http"
    headers: dict[str, str]
    message: Message


class ReceivedSpan(NamedTuple):
    """A span flattened out of its request, with its resource and scope."""

    resource: dict[str, Any]
    scope: str
    span: Span

    @property
    def name(self) -> str:
        """The span name."""
        return self.span.name

    @property
    def attributes(self) -> dict[str, Any]:
        """The span attributes decoded into Python values."""
        return attributes_to_dict(self.span.attributes)

    @property
    def events(self) -> list[tuple[str, dict[str, Any]]]:
        """The span events as ``(name, attributes)`` pairs."""
        return [(e.name, attributes_to_dict(e.attributes)) for e in self.span.events]


class MetricPoint(NamedTuple):
    """One data point of a metric, with decoded attributes and a convenient ``value``.

    ``value`` is the number for sums and gauges, and the count for histograms (the full point,
    with ``sum`` and ``bucket_counts``, is in ``point``).
    """

    resource: dict[str, Any]
    scope: str
    metric: Metric
    point: Any
    attributes: dict[str, Any]
    value: float | int


class ReceivedLog(NamedTuple):
    """A log record flattened out of its request."""

    resource: dict[str, Any]
    scope: str
    record: LogRecord

    @property
    def body(self) -> Any:
        """The log body decoded into a Python value."""
        return any_value_to_python(self.record.body)

    @property
    def attributes(self) -> dict[str, Any]:
        """The log attributes decoded into Python values."""
        return attributes_to_dict(self.record.attributes)


def _point_value(metric: Metric, point: Any) -> float | int:
    if metric.WhichOneof("data") in ("histogram", "exponential_histogram", "summary"):
        return int(point.count)
    return point.as_int if point.WhichOneof("value") == "as_int" else point.as_double


def _points_of(metric: Metric) -> Iterable[Any]:
    kind = metric.WhichOneof("data")
    return [] if kind is None else getattr(metric, kind).data_points


# ------------------------------------------------------------------------------------------
# Faults
# ------------------------------------------------------------------------------------------
class FaultKind(StrEnum):
    """What the receiver does with the next requests."""

    NORMAL = "normal"
    UNAVAILABLE = "unavailable"
    STATUS = "status"


_HTTP_TO_GRPC: dict[int, grpc.StatusCode] = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.UNIMPLEMENTED,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
    500: grpc.StatusCode.INTERNAL,
    502: grpc.StatusCode.UNAVAILABLE,
    503: grpc.StatusCode.UNAVAILABLE,
    504: grpc.StatusCode.DEADLINE_EXCEEDED,
}


@dataclass
class _Fault:
    kind: FaultKind = FaultKind.NORMAL
    remaining: int | None = None  # None: until reset
    http_status: int = 200
    grpc_code: grpc.StatusCode = grpc.StatusCode.OK
    headers: dict[str, str] = field(default_factory=dict)
    signal: Signal | None = None  # None: every signal


class _Verdict(NamedTuple):
    http_status: int
    grpc_code: grpc.StatusCode
    headers: dict[str, str]


# ------------------------------------------------------------------------------------------
# Common store + fault control
# ------------------------------------------------------------------------------------------
class OtlpReceiver:
    """State and assertions shared by the gRPC and HTTP receivers.

    Thread-safety: server threads call :meth:`_accept`; tests call the query and ``wait_for_*``
    methods from any thread. Everything goes through one condition variable.
    """

    transport = "abstract"

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._requests: list[ReceivedRequest] = []
        self._attempts: dict[Signal, int] = dict.fromkeys(Signal, 0)
        self._rejected: dict[Signal, int] = dict.fromkeys(Signal, 0)
        self._fault = _Fault()
        self._delay_s = 0.0
        self._stopping = threading.Event()
        self.port = 0

    # -- lifecycle ------------------------------------------------------------------------
    @property
    def endpoint(self) -> str:
        """Base URL an OTLP exporter should be pointed at, e.g. ``http://127.0.0.1:4317``."""
        return f"http://127.0.0.1:{self.port}"

    def start(self: _T) -> _T:  # pragma: no cover - overridden
        raise NotImplementedError

    def stop(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def __enter__(self: _T) -> _T:
        return self.start()  # type: ignore[attr-defined, no-any-return]

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- fault control --------------------------------------------------------------------
    def reset(self) -> None:
        """Back to normal behaviour with no delay (does not clear received data)."""
        with self._cond:
            self._fault = _Fault()
            self._delay_s = 0.0

    def unavailable(self, times: int | None = None, retry_after_s: int | None = 0) -> None:
        """Answer gRPC ``UNAVAILABLE`` / HTTP 503 to the next ``times`` requests (None: forever).

        Args:
            times: how many requests fail before the receiver recovers; None: until reset.
            retry_after_s: back-off hint sent with each failure (HTTP ``Retry-After``, gRPC
                ``google.rpc.RetryInfo``) so exporters retry quickly in tests; None sends none
                and exporters fall back to their own exponential back-off (1 s, 2 s, ...).
        """
        headers = {} if retry_after_s is None else {_RETRY_AFTER: str(retry_after_s)}
        with self._cond:
            self._fault = _Fault(
                FaultKind.UNAVAILABLE, times, 503, grpc.StatusCode.UNAVAILABLE, headers
            )

    def fail_with(
        self,
        status: int | grpc.StatusCode,
        times: int | None = None,
        headers: Mapping[str, str] | None = None,
        signal: Signal | None = None,
    ) -> None:
        """Answer the next ``times`` requests with an HTTP status or a gRPC code (None: forever).

        An HTTP status given to the gRPC receiver is mapped to the closest gRPC code (500 ->
        INTERNAL, 413/429 -> RESOURCE_EXHAUSTED, 503 -> UNAVAILABLE) and vice versa 500.
        With ``signal``, only requests of that signal fail (and count against ``times``).
        """
        if isinstance(status, grpc.StatusCode):
            code, http_status = status, 500
        else:
            code, http_status = _HTTP_TO_GRPC.get(status, grpc.StatusCode.UNKNOWN), status
        with self._cond:
            self._fault = _Fault(
                FaultKind.STATUS, times, http_status, code, dict(headers or {}), signal
            )

    @property
    def delay_s(self) -> float:
        """Seconds every request waits before being answered (a slow collector)."""
        return self._delay_s

    @delay_s.setter
    def delay_s(self, value: float) -> None:
        with self._cond:
            self._delay_s = value

    def _verdict(self, signal: Signal) -> _Verdict | None:
        """Count an attempt and decide; None means accept."""
        with self._cond:
            self._attempts[signal] += 1
            fault = self._fault
            if fault.kind is FaultKind.NORMAL or fault.signal not in (None, signal):
                self._cond.notify_all()
                return None
            if fault.remaining is not None:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._fault = _Fault()
            self._rejected[signal] += 1
            self._cond.notify_all()
            return _Verdict(fault.http_status, fault.grpc_code, dict(fault.headers))

    def _wait_delay(self) -> None:
        delay = self._delay_s
        if delay > 0:
            self._stopping.wait(delay)

    def _accept(self, request: ReceivedRequest) -> None:
        with self._cond:
            self._requests.append(request)
            self._cond.notify_all()

    # -- queries --------------------------------------------------------------------------
    def clear(self) -> None:
        """Forget every received request and counter (fault mode is kept; see :meth:`reset`)."""
        with self._cond:
            self._requests.clear()
            self._attempts = dict.fromkeys(Signal, 0)
            self._rejected = dict.fromkeys(Signal, 0)

    def requests(self, signal: Signal | None = None) -> list[ReceivedRequest]:
        """Accepted requests, oldest first, optionally of one signal."""
        with self._cond:
            return [r for r in self._requests if signal is None or r.signal is signal]

    def headers(self, signal: Signal | None = None) -> list[dict[str, str]]:
        """Headers (gRPC metadata) of each accepted request, keys lower-cased."""
        return [r.headers for r in self.requests(signal)]

    def attempts(self, signal: Signal | None = None) -> int:
        """Requests that reached the receiver, accepted or rejected by a fault."""
        with self._cond:
            return sum(v for k, v in self._attempts.items() if signal is None or k is signal)

    def rejected(self, signal: Signal | None = None) -> int:
        """Requests answered with an injected fault."""
        with self._cond:
            return sum(v for k, v in self._rejected.items() if signal is None or k is signal)

    def spans(self) -> list[ReceivedSpan]:
        """Every received span, flattened, in arrival order."""
        out: list[ReceivedSpan] = []
        for req in self.requests(Signal.TRACES):
            for rs in req.message.resource_spans:  # type: ignore[attr-defined]
                resource = attributes_to_dict(rs.resource.attributes)
                for ss in rs.scope_spans:
                    out.extend(ReceivedSpan(resource, ss.scope.name, s) for s in ss.spans)
        return out

    def spans_by_name(self, name: str) -> list[ReceivedSpan]:
        """Every received span called ``name``."""
        return [s for s in self.spans() if s.span.name == name]

    def span_by_name(self, name: str) -> ReceivedSpan:
        """The single received span called ``name``; AssertionError if none or several."""
        found = self.spans_by_name(name)
        if len(found) != 1:
            seen = sorted({s.span.name for s in self.spans()})
            raise AssertionError(f"expected one span {name!r}, found {len(found)}; seen: {seen}")
        return found[0]

    def metrics(self) -> list[Metric]:
        """Every received metric message (one per metric per export), in arrival order."""
        out: list[Metric] = []
        for req in self.requests(Signal.METRICS):
            for rm in req.message.resource_metrics:  # type: ignore[attr-defined]
                for sm in rm.scope_metrics:
                    out.extend(sm.metrics)
        return out

    def metric_names(self) -> set[str]:
        """Names of every metric received so far."""
        return {m.name for m in self.metrics()}

    def metric_points(self, name: str) -> list[MetricPoint]:
        """Every data point received for metric ``name``, in arrival order.

        Cumulative exporters resend each point on every export, so the *last* point for a given
        attribute set is the current value; :meth:`latest_points` gives just those.
        """
        out: list[MetricPoint] = []
        for req in self.requests(Signal.METRICS):
            for rm in req.message.resource_metrics:  # type: ignore[attr-defined]
                resource = attributes_to_dict(rm.resource.attributes)
                for sm in rm.scope_metrics:
                    for metric in sm.metrics:
                        if metric.name != name:
                            continue
                        for p in _points_of(metric):
                            attrs = attributes_to_dict(p.attributes)
                            out.append(
                                MetricPoint(
                                    resource,
                                    sm.scope.name,
                                    metric,
                                    p,
                                    attrs,
                                    _point_value(metric, p),
                                )
                            )
        return out

    def latest_points(self, name: str) -> list[MetricPoint]:
        """The newest point of metric ``name`` for each distinct attribute set."""
        latest: dict[tuple[tuple[str, str], ...], MetricPoint] = {}
        for p in self.metric_points(name):
            latest[tuple(sorted((k, repr(v)) for k, v in p.attributes.items()))] = p
        return list(latest.values())

    def logs(self) -> list[ReceivedLog]:
        """Every received log record, flattened, in arrival order."""
        out: list[ReceivedLog] = []
        for req in self.requests(Signal.LOGS):
            for rl in req.message.resource_logs:  # type: ignore[attr-defined]
                resource = attributes_to_dict(rl.resource.attributes)
                for sl in rl.scope_logs:
                    out.extend(ReceivedLog(resource, sl.scope.name, r) for r in sl.log_records)
        return out

    # -- waiting --------------------------------------------------------------------------
    def _wait(
        self,
        fetch: Callable[[], list[_T]],
        until: int | Callable[[list[_T]], bool],
        timeout_s: float,
        what: str,
    ) -> list[_T]:
        test: Callable[[list[_T]], bool]
        if isinstance(until, int):
            count = until
            test = lambda items: len(items) >= count  # noqa: E731
        else:
            test = until
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                items = fetch()
                if test(items):
                    return items
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"{self.transport} receiver: {what} condition not met within {timeout_s}s; "
                        f"have {len(items)} ({self._describe()})"
                    )
                self._cond.wait(remaining)

    def _describe(self) -> str:
        names = sorted({s.span.name for s in self.spans()})[:20]
        return (
            f"attempts={dict((k.value, v) for k, v in self._attempts.items())}, "
            f"span names={names}, metrics={sorted(self.metric_names())[:20]}"
        )

    def wait_for_spans(
        self,
        until: int | Callable[[list[ReceivedSpan]], bool] = 1,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> list[ReceivedSpan]:
        """Block until ``until`` spans arrived (or ``until(spans)`` is true); return all spans.

        Raises:
            TimeoutError: the condition was not met within ``timeout_s``.
        """
        return self._wait(self.spans, until, timeout_s, "spans")

    def wait_for_span(self, name: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> ReceivedSpan:
        """Block until a span called ``name`` arrived and return the first one."""
        spans = self._wait(lambda: self.spans_by_name(name), 1, timeout_s, f"span {name!r}")
        return spans[0]

    def wait_for_metric(
        self,
        name: str,
        until: Callable[[list[MetricPoint]], bool] | int = 1,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> list[MetricPoint]:
        """Block until metric ``name`` has ``until`` points (or ``until(points)``); return them."""
        return self._wait(lambda: self.metric_points(name), until, timeout_s, f"metric {name!r}")

    def wait_for_logs(
        self,
        until: int | Callable[[list[ReceivedLog]], bool] = 1,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> list[ReceivedLog]:
        """Block until ``until`` log records arrived (or ``until(logs)`` is true); return all."""
        return self._wait(self.logs, until, timeout_s, "logs")

    def wait_for_attempts(
        self, count: int, signal: Signal | None = None, timeout_s: float = DEFAULT_TIMEOUT_S
    ) -> int:
        """Block until ``count`` requests (accepted or rejected) reached the receiver."""
        got = self._wait(lambda: [None] * self.attempts(signal), count, timeout_s, "attempts")
        return len(got)


# ------------------------------------------------------------------------------------------
# gRPC
# ------------------------------------------------------------------------------------------
_RESPONSES: dict[Signal, Callable[[], Message]] = {
    Signal.TRACES: trace_service_pb2.ExportTraceServiceResponse,
    Signal.METRICS: metrics_service_pb2.ExportMetricsServiceResponse,
    Signal.LOGS: logs_service_pb2.ExportLogsServiceResponse,
}
_REQUESTS: dict[Signal, Callable[[], Message]] = {
    Signal.TRACES: trace_service_pb2.ExportTraceServiceRequest,
    Signal.METRICS: metrics_service_pb2.ExportMetricsServiceRequest,
    Signal.LOGS: logs_service_pb2.ExportLogsServiceRequest,
}


def _grpc_handler(receiver: OtlpGrpcReceiver, signal: Signal) -> Callable[[Message, Any], Message]:
    def export(request: Message, context: grpc.ServicerContext) -> Message:
        receiver._wait_delay()
        verdict = receiver._verdict(signal)
        if verdict is not None:
            retry_after = verdict.headers.get(_RETRY_AFTER)
            if retry_after is not None:
                info = RetryInfo(retry_delay=Duration(seconds=int(retry_after)))
                context.set_trailing_metadata(
                    (("google.rpc.retryinfo-bin", info.SerializeToString()),)
                )
            context.abort(verdict.grpc_code, f"injected fault: {verdict.grpc_code.name}")
        headers = {
            k.lower(): v if isinstance(v, str) else repr(v)
            for k, v in context.invocation_metadata()
        }
        receiver._accept(ReceivedRequest(signal, "grpc", headers, request))
        return _RESPONSES[signal]()

    return export


class _TraceServicer(trace_service_pb2_grpc.TraceServiceServicer):  # type: ignore[misc]
    def __init__(self, receiver: OtlpGrpcReceiver) -> None:
        self.Export = _grpc_handler(receiver, Signal.TRACES)


class _MetricsServicer(metrics_service_pb2_grpc.MetricsServiceServicer):  # type: ignore[misc]
    def __init__(self, receiver: OtlpGrpcReceiver) -> None:
        self.Export = _grpc_handler(receiver, Signal.METRICS)


class _LogsServicer(logs_service_pb2_grpc.LogsServiceServicer):  # type: ignore[misc]
    def __init__(self, receiver: OtlpGrpcReceiver) -> None:
        self.Export = _grpc_handler(receiver, Signal.LOGS)


class OtlpGrpcReceiver(OtlpReceiver):
    """An OTLP/gRPC collector on 127.0.0.1 implementing the trace, metrics and logs services."""

    transport = "grpc"

    def __init__(self, max_workers: int = 8) -> None:
        super().__init__()
        self._max_workers = max_workers
        self._server: grpc.Server | None = None

    def start(self) -> OtlpGrpcReceiver:
        """Bind a free loopback port and serve in background threads."""
        server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=self._max_workers),
            options=[("grpc.max_receive_message_length", 64 * 1024 * 1024)],
        )
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_TraceServicer(self), server)
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(
            _MetricsServicer(self), server
        )
        logs_service_pb2_grpc.add_LogsServiceServicer_to_server(_LogsServicer(self), server)
        self.port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        self._server = server
        self._stopping.clear()
        return self

    def stop(self) -> None:
        """Stop serving; in-flight (delayed) requests are cancelled."""
        self._stopping.set()
        if self._server is not None:
            self._server.stop(grace=None).wait(5)
            self._server = None


# ------------------------------------------------------------------------------------------
# HTTP
# ------------------------------------------------------------------------------------------
_PATHS: dict[str, Signal] = {f"/v1/{s.value}": s for s in Signal}
_PROTOBUF = "application/x-protobuf"
_JSON = "application/json"


class _OtlpHttpHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _OtlpHttpServer
    timeout = 10  # idle keep-alive connections close instead of pinning a thread forever

    def log_message(self, format: str, *args: Any) -> None:
        """Silence per-request logging."""

    def _reply(
        self, status: int, body: bytes, content_type: str, headers: Mapping[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            body = b"".join(chunks)
        else:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        encoding = self.headers.get("Content-Encoding", "").lower()
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding == "deflate":
            body = zlib.decompress(body)
        return body

    def do_POST(self) -> None:
        receiver = self.server.receiver
        signal = _PATHS.get(self.path.split("?")[0])
        body = self._read_body()
        if signal is None:
            self._reply(404, b"not found", "text/plain")
            return
        receiver._wait_delay()
        verdict = receiver._verdict(signal)
        if verdict is not None:
            self._reply(verdict.http_status, b"injected fault", "text/plain", verdict.headers)
            return
        ctype = self.headers.get("Content-Type", _PROTOBUF).split(";")[0].strip().lower()
        message = _REQUESTS[signal]()
        try:
            if ctype == _JSON:
                json_format.Parse(body, message)
            else:
                message.ParseFromString(body)
        except (DecodeError, json_format.ParseError) as exc:
            self._reply(400, str(exc).encode(), "text/plain")
            return
        headers = {k.lower(): v for k, v in self.headers.items()}
        receiver._accept(ReceivedRequest(signal, "http", headers, message))
        response = _RESPONSES[signal]()
        if ctype == _JSON:
            self._reply(200, json_format.MessageToJson(response).encode(), _JSON)
        else:
            self._reply(200, response.SerializeToString(), _PROTOBUF)


class _OtlpHttpServer(ThreadingHTTPServer):
    daemon_threads = True
    receiver: OtlpHttpReceiver


class OtlpHttpReceiver(OtlpReceiver):
    """An OTLP/HTTP collector on 127.0.0.1: POST /v1/traces, /v1/metrics, /v1/logs.

    Accepts ``application/x-protobuf`` and ``application/json`` bodies, gzip or deflate encoded,
    and answers the matching ``Export*ServiceResponse`` in the request's content type.
    """

    transport = "http"

    def __init__(self) -> None:
        super().__init__()
        self._server: _OtlpHttpServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> OtlpHttpReceiver:
        """Bind a free loopback port and serve in a background thread."""
        server = _OtlpHttpServer(("127.0.0.1", 0), _OtlpHttpHandler)
        server.receiver = self
        self.port = server.server_address[1]
        self._stopping.clear()
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"otlp-http-receiver-{self.port}",
            daemon=True,
        )
        self._thread.start()
        self._server = server
        return self

    def stop(self) -> None:
        """Stop serving and close the listening socket."""
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def url(self, signal: Signal) -> str:
        """Full URL for one signal, e.g. ``http://127.0.0.1:PORT/v1/traces``."""
        return f"{self.endpoint}/v1/{signal.value}"


# ------------------------------------------------------------------------------------------
# Raw TCP misbehaviour
# ------------------------------------------------------------------------------------------
class _RawTcpServer:
    """Accepts TCP connections on 127.0.0.1 and hands each to :meth:`_handle`."""

    def __init__(self) -> None:
        self._sock = socket.create_server(("127.0.0.1", 0), backlog=64)
        self._sock.settimeout(0.05)
        self.port: int = self._sock.getsockname()[1]
        self._conns: list[socket.socket] = []
        self._lock = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.connections = 0

    @property
    def endpoint(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    def start(self: _T) -> _T:
        """Accept connections in a background thread."""
        srv: _RawTcpServer = self  # type: ignore[assignment]
        srv._thread = threading.Thread(target=srv._loop, daemon=True, name="raw-tcp-server")
        srv._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.connections += 1
                self._conns.append(conn)
                self._lock.notify_all()
            self._handle(conn)

    def wait_for_connections(self, count: int, timeout_s: float = 10.0) -> bool:
        """Block until ``count`` connections were accepted; False on timeout."""
        with self._lock:
            return self._lock.wait_for(lambda: self.connections >= count, timeout_s)

    def _handle(self, conn: socket.socket) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def stop(self) -> None:
        """Close the listener and every accepted connection."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self._sock.close()
        with self._lock:
            for conn in self._conns:
                with contextlib.suppress(OSError):
                    conn.close()
            self._conns.clear()

    def __enter__(self: _T) -> _T:
        return self.start()  # type: ignore[attr-defined, no-any-return]

    def __exit__(self, *exc: object) -> None:
        self.stop()


class BlackHoleServer(_RawTcpServer):
    """Accepts TCP connections and never reads or answers: the worst collector there is."""

    def _handle(self, conn: socket.socket) -> None:
        """Keep the connection open and silent until :meth:`stop`."""


class ResettingServer(_RawTcpServer):
    """Reads the first bytes a client sends, then resets the connection (TCP RST)."""

    def _handle(self, conn: socket.socket) -> None:
        threading.Thread(target=self._reset, args=(conn,), daemon=True).start()

    def _reset(self, conn: socket.socket) -> None:
        conn.settimeout(2.0)
        with contextlib.suppress(OSError):
            conn.recv(65536)
        try:
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()
        except OSError:
            pass


def refused_endpoint() -> str:
    """``http://127.0.0.1:PORT`` for a loopback port that was free a moment ago (refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
