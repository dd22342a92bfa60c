"""The "flowtel overview" dashboard: its variables, its row order and its Operations row.

Why a module: the overview is the one dashboard built from flowtel's own metrics; this module
assembles it, and each further row lives in an ``overview_*`` module of its own.
"""

from __future__ import annotations

from dashboard_json import PROMETHEUS, Json, Layout, dashboard, panel, target
from overview_delivery import sentry_row, telemetry_loss_row
from overview_lifecycle import lifecycle_row
from overview_resilience import resilience_row
from semconv_promql import (
    COMPONENT,
    ERROR_TYPE,
    JOB,
    OP_FILTER,
    OPERATION,
    STATUS,
    label,
    metric,
    quantile,
    rate,
    sel,
)

from flowtel import semconv as sc


def variables() -> list[Json]:
    calls = metric(sc.METRIC_OPERATION_CALLS)

    def var(name: str, query: str, label_text: str) -> Json:
        return {
            "name": name,
            "label": label_text,
            "type": "query",
            "datasource": PROMETHEUS,
            "query": {"query": query, "refId": f"var-{name}"},
            "definition": query,
            "refresh": 2,
            "includeAll": True,
            "multi": True,
            "allValue": ".*",
            "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
            "sort": 1,
        }

    return [
        var("job", f"label_values({calls}, job)", "Service"),
        var("component", f"label_values({calls}{{{JOB}}}, {COMPONENT})", "Component"),
    ]


def overview() -> Json:
    lay = Layout()
    operations_row(lay)
    lifecycle_row(lay)
    sentry_row(lay)
    resilience_row(lay)
    telemetry_loss_row(lay)
    return dashboard("flowtel-overview", "flowtel overview", lay.panels, variables())


def operations_row(lay: Layout) -> None:
    """Rates, errors, sampling and latency of flowtel operations."""
    calls = sc.METRIC_OPERATION_CALLS
    errors = sc.METRIC_ERRORS
    duration = sc.METRIC_OPERATION_DURATION

    lay.row("Operations")
    lay.add(
        panel(
            "timeseries",
            "Operation rate",
            "Finished operations per second by component and operation (counted before sampling).",
            [
                target(
                    f"sum by ({COMPONENT}, {OPERATION}) ({rate(sel(calls, matchers=OP_FILTER))})",
                    f"{{{{{COMPONENT}}}}} / {{{{{OPERATION}}}}}",
                )
            ],
            unit="ops",
        ),
        w=8,
    )
    error_calls = f'{OP_FILTER}, {STATUS}="ERROR"'
    entries = sc.METRIC_ENTRY_CALLS  # the service's rate: requests/jobs, not spans
    lay.add(
        panel(
            "timeseries",
            "Error rate",
            "Share of entries (requests, jobs, messages) that failed, per component; one count "
            "per request whatever the depth of the error, and an HTTP 4xx is not a server error.",
            [
                target(
                    f"sum by ({COMPONENT}) ({rate(sel(entries, matchers=error_calls))})"
                    f" / sum by ({COMPONENT}) ({rate(sel(entries, matchers=OP_FILTER))})",
                    f"{{{{{COMPONENT}}}}}",
                )
            ],
            unit="percentunit",
        ),
        w=8,
    )
    lay.add(
        panel(
            "timeseries",
            "In-process error ratio",
            "flowtel's own sliding-window error ratio per component (exact, in-process).",
            [
                target(
                    f"max by ({COMPONENT}, {label(sc.ERROR_RATE_WINDOW)}) "
                    f"({sel(sc.METRIC_ERROR_RATE, matchers=OP_FILTER)})",
                    f"{{{{{COMPONENT}}}}} ({{{{{label(sc.ERROR_RATE_WINDOW)}}}}})",
                )
            ],
            unit="percentunit",
        ),
        w=8,
    )
    decision, reason = label(sc.SAMPLING_DECISION), label(sc.SAMPLING_REASON)
    lay.add(
        panel(
            "timeseries",
            "Tail sampling decisions",
            "Local traces kept or dropped by in-process tail sampling (sampling=...), by reason; "
            "empty when only head sampling is configured.",
            [
                target(
                    f"sum by ({decision}, {reason}) ({rate(sel(sc.METRIC_SAMPLING_TRACES))})",
                    f"{{{{{decision}}}}} ({{{{{reason}}}}})",
                )
            ],
            unit="ops",
        ),
        w=8,
    )
    lay.add(
        panel(
            "timeseries",
            "Errors by type",
            "Errors per second by component, operation and error.type (failed operations and "
            "record_error calls).",
            [
                target(
                    f"sum by ({COMPONENT}, {OPERATION}, {ERROR_TYPE}) "
                    f"({rate(sel(errors, matchers=OP_FILTER))})",
                    f"{{{{{ERROR_TYPE}}}}} in {{{{{COMPONENT}}}}} / {{{{{OPERATION}}}}}",
                )
            ],
            unit="ops",
        ),
        w=12,
    )
    lay.add(
        panel(
            "table",
            "Top failing operations",
            "The ten operations with the most errors over the dashboard's time range.",
            [
                target(
                    f"topk(10, sum by ({COMPONENT}, {OPERATION}) "
                    f"(increase({sel(errors, matchers=OP_FILTER)}[$__range])))",
                    format="table",
                    instant=True,
                    range=False,
                )
            ],
            showHeader=True,
        ),
        w=12,
    )
    lay.add(
        panel(
            "timeseries",
            "Latency p50 / p95 / p99",
            "Operation duration quantiles from the duration histogram; dots are exemplars linking "
            "to traces in Tempo.",
            [
                target(
                    quantile(q, duration, matchers=OP_FILTER),
                    f"p{int(q * 100)}",
                    ref,
                    exemplar=True,
                )
                for q, ref in ((0.5, "A"), (0.95, "B"), (0.99, "C"))
            ],
            unit="s",
        ),
        w=12,
    )
    lay.add(
        panel(
            "timeseries",
            "p95 latency by operation",
            "95th percentile duration per component and operation.",
            [
                target(
                    quantile(0.95, duration, f"{COMPONENT}, {OPERATION}", OP_FILTER),
                    f"{{{{{COMPONENT}}}}} / {{{{{OPERATION}}}}}",
                    exemplar=True,
                )
            ],
            unit="s",
        ),
        w=12,
    )
