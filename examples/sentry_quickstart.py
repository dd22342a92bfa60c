"""docs/sentry.md example: a failing call through nested spans becomes one linked Sentry event.

Runs offline: a local Sentry ingestion endpoint (the one flowtel's tests use) stands in for
sentry.io. Run from the repository root: ``python examples/sentry_quickstart.py``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from opentelemetry import trace
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from tests.support.sentry_server import SentryServer

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


def main() -> None:
    server = SentryServer().start()
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
        sentry_dsn=server.dsn,  # in production: your project's DSN, or set SENTRY_DSN
    )
    with contextlib.suppress(PermissionError):
        place_order(42)
    telemetry.force_flush()  # builds and sends queued Sentry events
    data = metrics.get_metrics_data()
    telemetry.shutdown()

    events = server.wait_for_events(1)
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
                    for point in metric.data.data_points:
                        print(f"  {dict(point.attributes or {})} {point.value}")
    server.stop()


if __name__ == "__main__":
    main()
