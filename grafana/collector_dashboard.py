"""The "OpenTelemetry Collector" dashboard: receivers, processors and exporters of the collector.

Why a module: it is built from the collector's own ``otelcol_*`` series, not from flowtel's
semconv, and shares only the panel building blocks with the overview.
"""

from __future__ import annotations

from dashboard_json import Json, Layout, dashboard, panel, target


def collector() -> Json:
    lay = Layout()
    signals = (
        ("spans", "Spans"),
        ("metric_points", "Metric points"),
        ("log_records", "Log records"),
    )
    lay.row("Receivers")
    for suffix, title in signals:
        lay.add(
            panel(
                "timeseries",
                f"{title} accepted / refused",
                f"{title} per second pushed into the pipeline vs refused (refusals mean the "
                "memory_limiter or a downstream error pushed back).",
                [
                    target(
                        f"sum by (receiver) (rate(otelcol_receiver_accepted_{suffix}"
                        f"[$__rate_interval]))",
                        "accepted {{receiver}}",
                        "A",
                    ),
                    target(
                        f"sum by (receiver) (rate(otelcol_receiver_refused_{suffix}"
                        f"[$__rate_interval]))",
                        "refused {{receiver}}",
                        "B",
                    ),
                ],
                unit="ops",
            ),
            w=8,
        )
    lay.row("Processors")
    lay.add(
        panel(
            "timeseries",
            "Items dropped by processors",
            "Items in minus items out per processor (tail sampling drops on purpose).",
            [
                target(
                    "sum by (processor) (rate(otelcol_processor_incoming_items[$__rate_interval]))"
                    " - sum by (processor) (rate(otelcol_processor_outgoing_items"
                    "[$__rate_interval]))",
                    "{{processor}}",
                )
            ],
            unit="ops",
        ),
        w=12,
    )
    lay.add(
        panel(
            "timeseries",
            "Collector memory",
            "Resident memory of each collector (memory_limiter: 400 MiB limit, 100 MiB spike).",
            [target("max by (instance) (otelcol_process_memory_rss)", "{{instance}}")],
            unit="bytes",
        ),
        w=12,
    )
    lay.row("Exporters")
    for suffix, title in signals:
        lay.add(
            panel(
                "timeseries",
                f"{title} sent / failed / dropped",
                f"{title} per second sent, failed to send, and dropped because the queue was full.",
                [
                    target(
                        f"sum by (exporter) (rate(otelcol_exporter_sent_{suffix}"
                        f"[$__rate_interval]))",
                        "sent {{exporter}}",
                        "A",
                    ),
                    target(
                        f"sum by (exporter) (rate(otelcol_exporter_send_failed_{suffix}"
                        f"[$__rate_interval]))",
                        "failed {{exporter}}",
                        "B",
                    ),
                    target(
                        f"sum by (exporter) (rate(otelcol_exporter_enqueue_failed_{suffix}"
                        f"[$__rate_interval]))",
                        "dropped {{exporter}}",
                        "C",
                    ),
                ],
                unit="ops",
            ),
            w=8,
        )
    lay.add(
        panel(
            "timeseries",
            "Exporter queue size",
            "Batches waiting in each exporter's sending queue, against its capacity.",
            [
                target("max by (exporter) (otelcol_exporter_queue_size)", "size {{exporter}}", "A"),
                target(
                    "max by (exporter) (otelcol_exporter_queue_capacity)",
                    "capacity {{exporter}}",
                    "B",
                ),
            ],
        ),
        w=24,
    )
    return dashboard("flowtel-otel-collector", "OpenTelemetry Collector", lay.panels, [])
