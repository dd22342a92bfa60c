"""docs/sentry.md example: a failing call through nested spans becomes one linked Sentry event.

Runs offline from a plain install (``pip install 'flowtel[sentry]'``): a tiny Sentry ingestion
endpoint on 127.0.0.1 (stdlib ``http.server``) stands in for sentry.io and prints what it
received. Run it from anywhere: ``python sentry_quickstart.py``.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import logging
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, NumberDataPoint
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import flowtel
from flowtel import semconv

log = logging.getLogger("shop")
log.addHandler(logging.NullHandler())  # keep the demo's output to what Sentry received
log.propagate = False


@flowtel.traced(component="payments", operation="charge", record_args=["amount"])
def charge(amount: int) -> None:
    raise PermissionError(f"card declined: amount={amount} api_key=sk_live_4eC39HqLyjWDarjtT1zdp")


@flowtel.traced(component="checkout", operation="place_order")
def place_order(amount: int) -> None:
    try:
        charge(amount)
    except PermissionError:
        log.exception("charge failed")  # sentry-sdk's logging integration: no second event
        raise


def _decode(body: bytes, encoding: str) -> bytes:
    """sentry-sdk compresses with brotli when the ``brotli`` module is installed, else gzip."""
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding == "deflate":
        return zlib.decompress(body)
    if encoding == "br":
        import brotli  # only reachable when sentry-sdk found it installed

        return bytes(brotli.decompress(body))
    return body


def _events(envelope: bytes) -> list[dict[str, Any]]:
    """The ``event`` items of a Sentry envelope: a header line, then item header/payload pairs."""
    events = []
    _, _, rest = envelope.partition(b"\n")  # the envelope's own header
    while rest.strip():
        header_line, _, rest = rest.partition(b"\n")
        if not header_line.strip():
            continue
        header = json.loads(header_line)
        if "length" in header:  # a length-framed payload may contain newlines
            payload, rest = rest[: header["length"]], rest[header["length"] + 1 :]
        else:
            payload, _, rest = rest.partition(b"\n")
        if header.get("type") == "event":
            events.append(json.loads(payload))
    return events


class SentryEndpoint(ThreadingHTTPServer):
    """Accepts ``POST /api/<project>/envelope/`` on a free loopback port; keeps the events."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.received = threading.Condition()
        super().__init__(("127.0.0.1", 0), _Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def dsn(self) -> str:
        return f"http://public@127.0.0.1:{self.server_address[1]}/1"

    def wait_for_events(self, count: int, timeout_s: float = 10.0) -> list[dict[str, Any]]:
        with self.received:
            self.received.wait_for(lambda: len(self.events) >= count, timeout=timeout_s)
            return list(self.events)


class _Handler(BaseHTTPRequestHandler):
    server: SentryEndpoint

    def log_message(self, format: str, *args: Any) -> None:  # keep the output to the events
        return

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        events = _events(_decode(body, self.headers.get("Content-Encoding", "").strip().lower()))
        with self.server.received:
            self.server.events.extend(events)
            self.server.received.notify_all()
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")


def main() -> None:
    sentry = SentryEndpoint()
    spans = InMemorySpanExporter()
    metrics = InMemoryMetricReader()
    telemetry = flowtel.configure_telemetry(
        service_name="shop",
        service_version="1.4.2",
        environment="staging",
        exporter="none",
        span_exporters=[spans],
        metric_readers=[metrics],
        logging=False,
        sentry_dsn=sentry.dsn,  # in production: your project's DSN, or set SENTRY_DSN
    )
    with contextlib.suppress(PermissionError):
        place_order(42)
    telemetry.force_flush()  # builds and sends queued Sentry events
    data = metrics.get_metrics_data()
    telemetry.shutdown()

    events = sentry.wait_for_events(1)
    print(f"Sentry events received: {len(events)}")
    event = events[0]
    value = event["exception"]["values"][-1]
    print(
        json.dumps(
            {
                "exception": {
                    "type": value["type"],
                    "value": value["value"],
                    "mechanism": value["mechanism"],
                    "frames (innermost last)": [
                        f"{f['module']}.{f['function']}:{f['lineno']}"
                        for f in value["stacktrace"]["frames"]
                    ][-2:],
                },
                "tags": event["tags"],
                "contexts.trace": event["contexts"]["trace"],
                "contexts.otel.attributes": event["contexts"]["otel"]["attributes"],
                "environment": event["environment"],
                "release": event["release"],
            },
            indent=2,
        )
    )
    print("exported spans:")
    for span in spans.get_finished_spans():
        print(
            f"  {span.name:<28} trace_id={trace.format_trace_id(span.context.trace_id)} "
            f"span_id={trace.format_span_id(span.context.span_id)}"
        )
    print(f"{semconv.METRIC_SENTRY_EVENTS}:")
    for rm in data.resource_metrics if data else ():
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                if metric.name == semconv.METRIC_SENTRY_EVENTS:
                    points = [p for p in metric.data.data_points if isinstance(p, NumberDataPoint)]
                    # sorted: the capture and transport threads record in either order
                    for point in sorted(points, key=lambda p: sorted((p.attributes or {}).items())):
                        print(f"  {dict(point.attributes or {})} {point.value}")
    sentry.shutdown()


if __name__ == "__main__":
    main()
