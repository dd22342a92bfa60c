"""The overview's "Resilience" row: retries, rate limiters and circuit breakers.

Why a module: the resilience strategies have their own metrics and panels, apart from the
operation-level panels of the overview.
"""

from __future__ import annotations

from dashboard_json import Layout, panel, target
from semconv_promql import OPERATION, label, quantile, rate, sel

from flowtel import semconv as sc


def resilience_row(lay: Layout) -> None:
    """Resilience events and outcomes, attempt durations, rate limiters and circuit breakers."""
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
