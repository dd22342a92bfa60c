"""PromQL building blocks named from :mod:`flowtel.semconv`, shared by dashboards and alerts.

Why a module: every query must use the exact series and label names flowtel emits; deriving them
here (``prometheus_name``/``prometheus_label``) in one place makes a renamed metric change every
query that uses it.
"""

from __future__ import annotations

from flowtel import semconv as sc

_BY_NAME = {m.name: m for m in sc.METRICS}


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
