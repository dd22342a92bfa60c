"""The overview's "Sentry" and "Telemetry loss" rows: does the service's telemetry get out.

Why a module: both rows watch delivery (Sentry events, spans, metric points, log records, console
lines, doctor test points) rather than the service's own work.
"""

from __future__ import annotations

from dashboard_json import Layout, panel, target
from semconv_promql import label, rate, sel

from flowtel import semconv as sc


def sentry_row(lay: Layout) -> None:
    """Sentry events sent or dropped."""
    lay.row("Sentry")
    sentry_outcome = label(sc.SENTRY_OUTCOME)
    sentry_reason = label(sc.SENTRY_REASON)
    lay.add(
        panel(
            "timeseries",
            "Sentry events sent / dropped",
            "Events handed to the Sentry transport or dropped, with the drop reason.",
            [
                target(
                    f"sum by ({sentry_outcome}, {sentry_reason}) "
                    f"({rate(sel(sc.METRIC_SENTRY_EVENTS))})",
                    f"{{{{{sentry_outcome}}}}} {{{{{sentry_reason}}}}}",
                )
            ],
            unit="ops",
        ),
        w=24,
    )


def telemetry_loss_row(lay: Layout) -> None:
    """Telemetry dropped or failing to export, console drops and doctor test points."""
    lay.row("Telemetry loss")
    signal = label(sc.TELEMETRY_SIGNAL)
    reason = label(sc.TELEMETRY_REASON)
    lay.add(
        panel(
            "timeseries",
            "Telemetry dropped",
            "Spans, metric points and log records lost inside the service before export.",
            [
                target(
                    f"sum by ({signal}, {reason}) ({rate(sel(sc.METRIC_TELEMETRY_DROPPED))})",
                    f"{{{{{signal}}}}} {{{{{reason}}}}}",
                )
            ],
            unit="ops",
        ),
        w=12,
    )
    lay.add(
        panel(
            "timeseries",
            "Export failures",
            "Export batches that failed, by signal and reason.",
            [
                target(
                    f"sum by ({signal}, {reason}) "
                    f"({rate(sel(sc.METRIC_TELEMETRY_EXPORT_FAILURES))})",
                    f"{{{{{signal}}}}} {{{{{reason}}}}}",
                )
            ],
            unit="ops",
        ),
        w=12,
    )
    lay.add(
        panel(
            "timeseries",
            "Console output dropped",
            "Console lines (exporter=console) dropped because the terminal or pipe did not keep "
            "up, or were still queued at shutdown.",
            [
                target(
                    f"sum by ({reason}) ({rate(sel(sc.METRIC_CONSOLE_DROPPED))})",
                    f"{{{{{reason}}}}}",
                )
            ],
            unit="ops",
        ),
        w=12,
    )
    lay.add(
        panel(
            "stat",
            "flowtel doctor test points",
            "Test points that `flowtel doctor` sent through the OTLP pipeline and that reached "
            "Prometheus in the time range, per service: proof that the path from a service's "
            "host to the dashboards works. Each run is one series (its own instance) with value 1.",
            [
                target(
                    f"sum by (job) (last_over_time({sel(sc.METRIC_DOCTOR)}[$__range]))",
                    "{{job}}",
                )
            ],
        ),
        w=12,
    )
