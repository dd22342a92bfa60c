"""Generate the Grafana dashboards and the Prometheus alert rules of the flowtel stack.

Why generated: every flowtel query must use the exact series names flowtel emits. Building the
queries from :mod:`flowtel.semconv` (``prometheus_name``/``prometheus_label``) makes a renamed
metric change the dashboards instead of silently emptying a panel; ``tests/stack`` checks the
committed files equal this script's output and runs every query against a real Prometheus.

Run from the repository root after changing semconv or a query::

    PYTHONPATH=src python grafana/generate.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

from flowtel import semconv as sc

ROOT = Path(__file__).resolve().parent.parent
OVERVIEW_PATH = ROOT / "grafana" / "dashboards" / "flowtel-overview.json"
COLLECTOR_PATH = ROOT / "grafana" / "dashboards" / "otel-collector.json"
ALERTS_PATH = ROOT / "collector" / "prometheus" / "alerts.yaml"

PROMETHEUS = {"type": "prometheus", "uid": "prometheus"}
TEMPO = {"type": "tempo", "uid": "tempo"}

#: Error-rate alert threshold and the minimum calls in the window before it may fire.
ERROR_RATE_THRESHOLD = 0.05
ERROR_RATE_MIN_CALLS = 20

_BY_NAME = {m.name: m for m in sc.METRICS}

Json = dict[str, Any]


def metric(name: str, suffix: str = "") -> str:
    """The Prometheus series name of the flowtel metric ``name`` (plus a histogram suffix)."""
    return sc.prometheus_name(_BY_NAME[name]) + suffix


def label(key: str) -> str:
    """The Prometheus label of the flowtel attribute ``key``."""
    return sc.prometheus_label(key)


COMPONENT = label(sc.COMPONENT)
OPERATION = label(sc.OPERATION)
STATUS = label(sc.OTEL_STATUS_CODE)
ERROR_TYPE = label(sc.ERROR_TYPE)

JOB = 'job=~"$job"'
OP_FILTER = f'{JOB}, {COMPONENT}=~"$component"'


def sel(name: str, suffix: str = "", matchers: str = JOB) -> str:
    """``series{matchers}`` for a flowtel metric."""
    return f"{metric(name, suffix)}{{{matchers}}}"


def rate(series: str, window: str = "$__rate_interval") -> str:
    return f"rate({series}[{window}])"


def quantile(q: float, name: str, by: str = "", matchers: str = JOB) -> str:
    groups = ", ".join(["le", *([by] if by else [])])
    bucket = rate(sel(name, "_bucket", matchers))
    return f"histogram_quantile({q}, sum by ({groups}) ({bucket}))"


def last_value(name: str, by: str, matchers: str = JOB) -> str:
    """Mean of a histogram per group; for one-shot measurements (startup) that is the value."""
    return f"max by ({by}) ({sel(name, '_sum', matchers)} / {sel(name, '_count', matchers)})"


# --------------------------------------------------------------------------------------------
# Panels
# --------------------------------------------------------------------------------------------
class Layout:
    """Places panels left to right in rows of 24 grid units."""

    def __init__(self) -> None:
        self.panels: list[Json] = []
        self._x = 0
        self._y = 0
        self._row_h = 0
        self._id = 0

    def _next_id(self) -> int:
        self._id += 1
        return self._id

    def row(self, title: str) -> None:
        self._newline()
        self.panels.append(
            {
                "type": "row",
                "id": self._next_id(),
                "title": title,
                "collapsed": False,
                "gridPos": {"h": 1, "w": 24, "x": 0, "y": self._y},
                "panels": [],
            }
        )
        self._y += 1

    def add(self, panel: Json, w: int = 12, h: int = 8) -> None:
        if self._x + w > 24:
            self._newline()
        panel["id"] = self._next_id()
        panel["gridPos"] = {"h": h, "w": w, "x": self._x, "y": self._y}
        self.panels.append(panel)
        self._x += w
        self._row_h = max(self._row_h, h)

    def _newline(self) -> None:
        if self._x:
            self._y += self._row_h
        self._x = 0
        self._row_h = 0


def target(expr: str, legend: str = "", ref: str = "A", **extra: Any) -> Json:
    t: Json = {"datasource": PROMETHEUS, "expr": expr, "refId": ref, "range": True}
    t["legendFormat"] = legend or "__auto"
    t.update(extra)
    return t


def panel(
    kind: str,
    title: str,
    description: str,
    targets: list[Json],
    unit: str = "short",
    **options: Any,
) -> Json:
    p: Json = {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": PROMETHEUS,
        "targets": targets,
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": options,
    }
    return p


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

    lay.row("Startup and lifecycle")
    lay.add(
        panel(
            "stat",
            "Startup duration",
            "Total startup time per instance (the critical path of the startup checks).",
            [
                target(
                    last_value(sc.METRIC_STARTUP_DURATION, "job, instance"), "{{job}} {{instance}}"
                )
            ],
            unit="s",
        ),
        w=6,
    )
    check = label(sc.STARTUP_CHECK)
    outcome = label(sc.STARTUP_OUTCOME)
    lay.add(
        panel(
            "bargauge",
            "Startup check durations",
            "Duration of each startup check (all attempts) and its outcome; the per-check timeline "
            "is the flowtel.startup trace below.",
            [
                target(
                    last_value(sc.METRIC_STARTUP_CHECK_DURATION, f"{check}, {outcome}"),
                    f"{{{{{check}}}}} ({{{{{outcome}}}}})",
                )
            ],
            unit="s",
            orientation="horizontal",
            displayMode="gradient",
        ),
        w=9,
    )
    state = label(sc.LIFECYCLE_STATE)
    lay.add(
        panel(
            "state-timeline",
            "Lifecycle state",
            "1 marks the current lifecycle state (STARTING, READY, DEGRADED, DRAINING, STOPPED, "
            "FAILED).",
            [target(f"max by ({state}) ({sel(sc.METRIC_LIFECYCLE_STATE)})", f"{{{{{state}}}}}")],
        ),
        w=9,
    )
    probe = label(sc.PROBE)
    probe_outcome = label(sc.PROBE_OUTCOME)
    lay.add(
        panel(
            "timeseries",
            "Probe results",
            "Kubernetes probe answers per second by probe and outcome (pass/fail).",
            [
                target(
                    f"sum by ({probe}, {probe_outcome}) ({rate(sel(sc.METRIC_PROBE_CHECKS))})",
                    f"{{{{{probe}}}}} {{{{{probe_outcome}}}}}",
                )
            ],
            unit="reqps",
        ),
        w=8,
    )
    ready = label(sc.READINESS_CHECK)
    lay.add(
        panel(
            "state-timeline",
            "Readiness checks",
            "1 while a background readiness check passes, 0 while it fails (worst instance).",
            [
                target(
                    f"min by ({ready}) ({sel(sc.METRIC_READINESS_CHECK_STATUS)})",
                    f"{{{{{ready}}}}}",
                )
            ],
        ),
        w=8,
    )
    lay.add(
        panel(
            "stat",
            "Shutdown duration",
            "Last graceful shutdown (drain, hooks, flush) per outcome.",
            [
                target(
                    last_value(sc.METRIC_SHUTDOWN_DURATION, label(sc.SHUTDOWN_OUTCOME)),
                    f"{{{{{label(sc.SHUTDOWN_OUTCOME)}}}}}",
                )
            ],
            unit="s",
        ),
        w=8,
    )
    work, work_name = label(sc.LIFECYCLE_WORK), label(sc.LIFECYCLE_WORK_NAME)
    abandoned = label(sc.LIFECYCLE_ABANDONED)
    lay.add(
        panel(
            "table",
            "Lifecycle timeouts",
            "Startup checks, readiness checks, shutdown hooks and flushes that overran their "
            "timeout_s, as counted by each instance seen in the time range (abandoned: still "
            "running when left behind). max_over_time, not increase(): a timeout usually happens "
            "once per start or stop, and a counter's first sample shows no increase.",
            [
                target(
                    f"sum by ({work}, {work_name}, {abandoned}) "
                    f"(max_over_time({sel(sc.METRIC_LIFECYCLE_TIMEOUTS)}[$__range]))",
                    format="table",
                    instant=True,
                    range=False,
                )
            ],
            showHeader=True,
        ),
        w=24,
        h=6,
    )
    traces = panel(
        "table",
        "Startup traces",
        "flowtel.startup traces in Tempo: open one to see every check attempt on a timeline.",
        [
            {
                "datasource": TEMPO,
                "refId": "A",
                "queryType": "traceql",
                "limit": 20,
                "query": f'{{ name = "{sc.SPAN_STARTUP}" }}',
                "tableType": "traces",
            }
        ],
    )
    traces["datasource"] = TEMPO
    lay.add(traces, w=24)

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

    lay.row("Resilience")
    event = label(sc.RESILIENCE_EVENT)
    strategy = label(sc.RESILIENCE_STRATEGY)
    res_outcome = label(sc.RESILIENCE_OUTCOME)
    name = label(sc.RESILIENCE_NAME)
    lay.add(
        panel(
            "timeseries",
            "Resilience events",
            "Retries, timeouts, breaker transitions, rejections and limiter waits per second.",
            [
                target(
                    f"sum by ({event}, {strategy}, {OPERATION}) "
                    f"({rate(sel(sc.METRIC_RESILIENCE_EVENTS))})",
                    f"{{{{{event}}}}} ({{{{{strategy}}}}}) {{{{{OPERATION}}}}}",
                )
            ],
            unit="ops",
        ),
        w=12,
    )
    lay.add(
        panel(
            "timeseries",
            "Call outcomes",
            "Calls through resilience strategies by outcome (success_after_retry, ...).",
            [
                target(
                    f"sum by ({res_outcome}, {strategy}) ({rate(sel(sc.METRIC_RESILIENCE_CALLS))})",
                    f"{{{{{res_outcome}}}}} ({{{{{strategy}}}}})",
                )
            ],
            unit="ops",
        ),
        w=12,
    )
    lay.add(
        panel(
            "timeseries",
            "Attempt duration p95",
            "95th percentile duration of each attempt made by retry, per operation.",
            [
                target(
                    quantile(0.95, sc.METRIC_RESILIENCE_ATTEMPT_DURATION, OPERATION),
                    f"{{{{{OPERATION}}}}}",
                )
            ],
            unit="s",
        ),
        w=8,
    )
    lay.add(
        panel(
            "timeseries",
            "Rate limiter wait p95",
            "95th percentile time callers waited on each rate limiter.",
            [target(quantile(0.95, sc.METRIC_RATE_LIMITER_WAIT, name), f"{{{{{name}}}}}")],
            unit="s",
        ),
        w=8,
    )
    lay.add(
        panel(
            "timeseries",
            "Rate limiter permits and rate",
            "Permits available now (lowest instance) and the current permit rate per second, "
            "which an adaptive limiter lowers on throttling and recovers gradually.",
            [
                target(
                    f"min by ({name}) ({sel(sc.METRIC_RATE_LIMITER_PERMITS)})",
                    f"{{{{{name}}}}} permits",
                    "A",
                ),
                target(
                    f"min by ({name}) ({sel(sc.METRIC_RATE_LIMITER_RATE)})",
                    f"{{{{{name}}}}} permits/s",
                    "B",
                ),
            ],
        ),
        w=8,
    )
    circuit = label(sc.CIRCUIT_STATE)
    lay.add(
        panel(
            "state-timeline",
            "Circuit breaker state",
            "1 marks each breaker's current state (closed, open, half_open).",
            [
                target(
                    f"max by ({name}, {circuit}) ({sel(sc.METRIC_CIRCUIT_STATE)})",
                    f"{{{{{name}}}}} {{{{{circuit}}}}}",
                )
            ],
        ),
        w=12,
    )
    lay.add(
        panel(
            "timeseries",
            "Circuit breaker failure / slow-call ratio",
            "Failure and slow-call ratio in each breaker's window (worst instance).",
            [
                target(
                    f"max by ({name}) ({sel(sc.METRIC_CIRCUIT_FAILURE_RATE)})",
                    f"{{{{{name}}}}} failures",
                    "A",
                ),
                target(
                    f"max by ({name}) ({sel(sc.METRIC_CIRCUIT_SLOW_CALL_RATE)})",
                    f"{{{{{name}}}}} slow calls",
                    "B",
                ),
            ],
            unit="percentunit",
        ),
        w=12,
    )

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
    return dashboard("flowtel-overview", "flowtel overview", lay.panels, variables())


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


def dashboard(uid: str, title: str, panels: list[Json], templating: list[Json]) -> Json:
    return {
        "uid": uid,
        "title": title,
        "tags": ["flowtel", "opentelemetry"],
        "timezone": "browser",
        "editable": False,
        "graphTooltip": 1,
        "refresh": "30s",
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": "now-1h", "to": "now"},
        "templating": {"list": templating},
        "annotations": {"list": []},
        "links": [],
        "panels": panels,
    }


# --------------------------------------------------------------------------------------------
# Alert rules (Prometheus rules file)
# --------------------------------------------------------------------------------------------
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


class _LiteralDumper(yaml.SafeDumper):
    """Writes multi-line strings (PromQL) as YAML block literals so the file stays readable."""


def _str_representer(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_LiteralDumper.add_representer(str, _str_representer)


def render() -> dict[Path, str]:
    """Every generated file and its exact content."""
    header = (
        "# Generated by grafana/generate.py from flowtel.semconv; do not edit by hand.\n"
        "# Alert rules for the flowtel stack (loaded by Prometheus via rule_files).\n"
    )
    return {
        OVERVIEW_PATH: json.dumps(overview(), indent=2) + "\n",
        COLLECTOR_PATH: json.dumps(collector(), indent=2) + "\n",
        ALERTS_PATH: header
        + yaml.dump(alerts(), Dumper=_LiteralDumper, sort_keys=False, width=100),
    }


def main() -> int:
    for path, text in render().items():
        path.write_text(text)
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
