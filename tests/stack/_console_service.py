"""A flowtel service in console mode whose stdout nobody reads, for the stack's live tests.

Run as ``python -m tests.stack._console_service`` from the repository root with stdout and stdin
as pipes. It configures ``exporter="console"`` (the development mode: spans and log records are
printed, nothing is exported) and logs faster than a stuck terminal takes it: the pipe fills,
then the console writer's bounded queue, and from then on every line is dropped and counted on
``flowtel.console.dropped`` (reason ``queue_full``), which the overview's *Console output
dropped* panel shows. Its metrics leave the process the two ways a user can choose:
``FLOWTEL_PROMETHEUS_PORT`` (scraped) or, with ``OTEL_EXPORTER_OTLP_ENDPOINT`` set, an OTLP
metric reader handed to ``configure_telemetry(metric_readers=...)``. It logs outside any span:
a span would put an exemplar on ``flowtel.operation.duration`` pointing at a trace that console
mode never exports.

It keeps logging (about 200 records a second, all dropped) until stdin is closed, then shuts its
telemetry down (the console gives up on what is still queued, counted as ``shutdown_timeout``)
and exits.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from typing import Any

import flowtel

#: Log records in the first burst: more than a 64 KiB pipe and the writer's 4,096-line queue hold.
BURST = 6000
TICK_S = 0.05
PER_TICK = 10


_log = logging.getLogger("flowtel.stack.console")


def tick(i: int) -> None:
    """One console line: a log record, which console mode prints (no span, so no exemplar that
    would point at a trace this process never exports)."""
    _log.warning("console line %d", i)


def main() -> int:
    readers: list[Any] = []
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

        readers.append(PeriodicExportingMetricReader(OTLPMetricExporter()))  # OTEL_* env
    telemetry = flowtel.configure_telemetry(
        service_name="agent-service", exporter="console", metric_readers=readers
    )
    for i in range(BURST):
        tick(i)
    stop = threading.Event()

    def keep_printing() -> None:
        while not stop.wait(TICK_S):  # paced by the stop event's timeout: ends at once on stop
            for i in range(PER_TICK):
                tick(i)

    printer = threading.Thread(target=keep_printing, name="console-service", daemon=True)
    printer.start()
    print("console service started", file=sys.stderr, flush=True)
    sys.stdin.read()  # until the test closes stdin
    stop.set()
    printer.join(timeout=5)
    telemetry.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
