"""The Prometheus alert rules of the flowtel stack (``collector/prometheus/alerts.yaml``).

Why a module: alerts are a Prometheus rules file, not a dashboard; they share only the PromQL
building blocks with the dashboards.
"""

from __future__ import annotations

from dashboard_json import Json
from semconv_promql import COMPONENT, STATUS, label, metric, rate

from flowtel import semconv as sc

#: Error-rate alert threshold and the minimum calls in the window before it may fire.
ERROR_RATE_THRESHOLD = 0.05
ERROR_RATE_MIN_CALLS = 20


def alerts() -> Json:
    calls = sc.METRIC_ENTRY_CALLS  # entries: one per request, job or message
    by = f"job, {COMPONENT}"
    failed = metric(calls) + "{" + STATUS + '="ERROR"}'
    error_ratio = (
        f"sum by ({by}) ({rate(failed, '5m')})\n  / sum by ({by}) ({rate(metric(calls), '5m')})"
    )
    high_error_rate = (
        f"(\n  {error_ratio}\n) > {ERROR_RATE_THRESHOLD}\n"
        f"and on ({by})\n"
        f"sum by ({by}) (increase({metric(calls)}[5m])) >= {ERROR_RATE_MIN_CALLS}"
    )
    dropped = metric(sc.METRIC_TELEMETRY_DROPPED)
    signal = label(sc.TELEMETRY_SIGNAL)

    def refused_or_failed(kind: str) -> str:
        return "\nor\n".join(
            f"sum by (job, instance, {role}) (rate(otelcol_{role}_{kind}_{s}[5m])) > 0"
            for role, s in (
                ("receiver" if kind == "refused" else "exporter", s)
                for s in ("spans", "metric_points", "log_records")
            )
        )

    return {
        "groups": [
            {
                "name": "flowtel",
                "rules": [
                    {
                        "alert": "FlowtelHighErrorRate",
                        "expr": high_error_rate,
                        "for": "5m",
                        "labels": {"severity": "warning"},
                        "annotations": {
                            "summary": "{{ $labels.job }}/{{ $labels."
                            + COMPONENT
                            + " }}: error rate above "
                            + f"{ERROR_RATE_THRESHOLD:.0%}",
                            "description": "{{ $value | humanizePercentage }} of requests "
                            f"failed over 5m (at least {ERROR_RATE_MIN_CALLS} calls). "
                            "Open the flowtel overview dashboard, 'Errors by type'.",
                        },
                    },
                    {
                        "alert": "FlowtelTelemetryDropped",
                        "expr": f"sum by (job, {signal}) (increase({dropped}[10m])) > 0",
                        "for": "10m",
                        "labels": {"severity": "warning"},
                        "annotations": {
                            "summary": "{{ $labels.job }} is losing {{ $labels."
                            + signal
                            + " }} before export",
                            "description": "{{ $value }} items dropped in 10m; check the "
                            "collector's health and the service's export queue.",
                        },
                    },
                ],
            },
            {
                "name": "otel-collector",
                "rules": [
                    {
                        "alert": "OtelCollectorRefusingData",
                        "expr": refused_or_failed("refused"),
                        "for": "5m",
                        "labels": {"severity": "critical"},
                        "annotations": {
                            "summary": "Collector {{ $labels.instance }} refuses data on "
                            "{{ $labels.receiver }}",
                            "description": "Receivers refuse telemetry (memory_limiter or a "
                            "failing pipeline); senders retry, then drop.",
                        },
                    },
                    {
                        "alert": "OtelCollectorExportFailing",
                        "expr": refused_or_failed("send_failed"),
                        "for": "5m",
                        "labels": {"severity": "warning"},
                        "annotations": {
                            "summary": "Collector {{ $labels.instance }} fails to export via "
                            "{{ $labels.exporter }}",
                            "description": "A backend (Tempo, Prometheus or Loki) rejects or "
                            "is unreachable.",
                        },
                    },
                    {
                        "alert": "OtelCollectorQueueNearlyFull",
                        "expr": "max by (job, instance, exporter) (otelcol_exporter_queue_size"
                        " / otelcol_exporter_queue_capacity) > 0.8",
                        "for": "5m",
                        "labels": {"severity": "warning"},
                        "annotations": {
                            "summary": "Collector {{ $labels.instance }} queue of "
                            "{{ $labels.exporter }} above 80%",
                            "description": "Data will be dropped when the queue is full.",
                        },
                    },
                ],
            },
        ]
    }
