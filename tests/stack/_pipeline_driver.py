"""A flowtel-instrumented process for the live pipeline test, exporting OTLP to the collector.

Run as ``python -m tests.stack._pipeline_driver`` from the repository root with
``OTEL_EXPORTER_OTLP_ENDPOINT`` (and the other OTEL_*/FLOWTEL_* variables) pointing at the
collector. It drives every flowtel module the overview dashboard shows and that the example
service does not reach (the same :class:`ServiceTraffic` as the scrape test: @traced operations
with failures and record_error, a Lifecycle startup/shutdown with a failing and a hung
non-critical check and a hung shutdown hook, readiness, the Sentry bridge to a Sentry endpoint on
loopback, retry/timeout/rate limiter/circuit breaker, counted telemetry loss) plus
trace-correlated log records, in two rounds with a metric export after each so that rate() sees
the counters move. In-process tail sampling is on (``FLOWTEL_SAMPLING``, set by the test): the
spans reported are the ones flowtel exported, the kept traces.

Then it prints one JSON line: ``service.instance.id`` and every span it exported (trace id, span
id, name, status), so the test can compare what was sent with what the trace sink received, and
keeps running (metrics keep being exported on their interval) until stdin is closed; each line
``log`` on stdin makes it export one more log record.
"""

from __future__ import annotations

import json
import logging
import sys

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

import flowtel

from ..support.otlp_receiver import refused_endpoint
from ..support.sentry_server import SentryServer
from ._traffic import ServiceTraffic

_log = logging.getLogger("flowtel.stack.driver")


@flowtel.traced(component="agent", operation="triage")
def triage(ticket: int) -> None:
    """Logs inside a span: the log record carries this span's trace and span id, and the trace
    is kept whatever the head rate decided (keep_trace), so the logged trace id can be opened."""
    assert flowtel.keep_trace(), "tail sampling (FLOWTEL_SAMPLING) could not keep the trace"
    _log.warning("ticket %d needs a human", ticket)
    if ticket % 2:
        raise PermissionError(f"ticket {ticket} is restricted")


def main() -> int:
    sentry = SentryServer().start()
    spans = InMemorySpanExporter()
    telemetry = flowtel.configure_telemetry(
        service_name="agent-service",
        exporter="otlp",
        sentry_dsn=sentry.dsn,
        span_exporters=[spans],
    )
    traffic = ServiceTraffic(telemetry.meter_provider)
    traffic.startup_and_shutdown()
    for _ in range(2):
        traffic.operations(200)  # 400 in all: over 300 exported with 80% head sampling
        traffic.sentry()
        traffic.resilience()
        traffic.telemetry_loss(refused_endpoint())
        for ticket in range(4):
            try:
                triage(ticket)
            except PermissionError:
                _log.exception("triage failed")  # outside the span: no trace context
        assert telemetry.force_flush(10), "flush to the collector timed out"
    sentry.wait_for_events(1)
    report = {
        "instance": telemetry.resource.attributes["service.instance.id"],
        "spans": [
            {
                "trace_id": f"{s.context.trace_id:032x}",
                "span_id": f"{s.context.span_id:016x}",
                "name": s.name,
                "error": s.status.status_code is StatusCode.ERROR,
            }
            for s in spans.get_finished_spans()
        ],
    }
    print(json.dumps(report), flush=True)
    # Metrics keep being exported on their interval until the test closes stdin; a line "log"
    # asks for one more log record, exported at once.
    for line in sys.stdin:
        if line.strip() == "log":
            _log.warning("log record requested by the test")
            telemetry.force_flush(10)
    telemetry.shutdown()
    sentry.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
