"""The overview's "Startup and lifecycle" row: startup, probes, readiness, shutdown, timeouts.

Why a module: the lifecycle panels are a concept of their own (and a third of the overview), so
they sit apart from the request-level panels.
"""

from __future__ import annotations

from dashboard_json import TEMPO, Layout, panel, target
from semconv_promql import label, last_value, rate, sel

from flowtel import semconv as sc


def lifecycle_row(lay: Layout) -> None:
    """Startup checks, lifecycle state, probes, readiness, shutdown and their timeouts."""
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
