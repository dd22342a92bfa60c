"""Shared helpers for the stack tests: file locations, query extraction, promtool access.

Why shared: the static test checks every PromQL expression the stack ships; the live test runs
the very same expressions against a real Prometheus. Both must see the same list.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest
import yaml

from flowtel import semconv as sc

ROOT = Path(__file__).resolve().parents[2]
COLLECTOR_DIR = ROOT / "collector"
COLLECTOR_CONFIG = COLLECTOR_DIR / "otel-collector.yaml"
TAIL_SAMPLING_OVERLAY = COLLECTOR_DIR / "overlays" / "tail-sampling.yaml"
COMPOSE = COLLECTOR_DIR / "docker-compose.yaml"
COMPOSE_TAIL_SAMPLING = COLLECTOR_DIR / "docker-compose.tail-sampling.yaml"
PROMETHEUS_CONFIG = COLLECTOR_DIR / "prometheus" / "prometheus.yaml"
ALERTS = COLLECTOR_DIR / "prometheus" / "alerts.yaml"
TEMPO_CONFIG = COLLECTOR_DIR / "tempo" / "tempo.yaml"
LOKI_CONFIG = COLLECTOR_DIR / "loki" / "loki.yaml"
GRAFANA_DIR = ROOT / "grafana"
DATASOURCES_DIR = GRAFANA_DIR / "provisioning" / "datasources"
DASHBOARD_PROVIDERS_DIR = GRAFANA_DIR / "provisioning" / "dashboards"
DASHBOARDS_DIR = GRAFANA_DIR / "dashboards"
DOCKERFILE = ROOT / "examples" / "Dockerfile"
OVERLAYS_DIR = COLLECTOR_DIR / "overlays"
BUILDER_MANIFEST = COLLECTOR_DIR / "builder-config.yaml"
BUILD_SCRIPT = COLLECTOR_DIR / "build.sh"
KUBERNETES_DIR = ROOT / "examples" / "kubernetes"

#: Series the pinned collector (0.161.0) exposes on :8888 with without_units/without_type_suffix,
#: taken from its receiverhelper, exporterhelper, processorhelper and service metadata.
COLLECTOR_SIGNALS = ("spans", "metric_points", "log_records")
COLLECTOR_METRICS = frozenset(
    [
        f"otelcol_receiver_{k}_{s}"
        for k in ("accepted", "refused", "failed")
        for s in COLLECTOR_SIGNALS
    ]
    + [
        f"otelcol_exporter_{k}_{s}"
        for k in ("sent", "send_failed", "enqueue_failed")
        for s in COLLECTOR_SIGNALS
    ]
    + [
        "otelcol_exporter_queue_size",
        "otelcol_exporter_queue_capacity",
        "otelcol_processor_incoming_items",
        "otelcol_processor_outgoing_items",
        "otelcol_process_memory_rss",
        "otelcol_process_uptime",
        "otelcol_process_cpu_seconds",
    ]
)


#: flowtel metrics that reach Prometheus only through an OTLP pipeline, never on a service's own
#: ``/metrics`` page: ``flowtel doctor`` sends its test point to the OTLP endpoint it checks.
OTLP_ONLY_METRICS = frozenset([sc.METRIC_DOCTOR])


def flowtel_series_names(*, scraped: bool = False) -> frozenset[str]:
    """Every series name flowtel's metrics produce in Prometheus (``scraped``: those a service's
    ``/metrics`` page can carry, without :data:`OTLP_ONLY_METRICS`)."""
    names: set[str] = set()
    for m in sc.METRICS:
        if scraped and m.name in OTLP_ONLY_METRICS:
            continue
        base = sc.prometheus_name(m)
        if m.instrument is sc.Instrument.HISTOGRAM:
            names.update(base + s for s in ("_bucket", "_sum", "_count"))
        else:
            names.add(base)
    return frozenset(names)


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def fail_or_skip(message: str) -> None:
    """A missing service or binary: FAIL in CI (CI=true), skip locally."""
    if in_ci():
        pytest.fail(message)
    pytest.skip(message)


def built_binary(target: Literal["collector", "prometheus"]) -> Path:
    """A binary that ``make collector`` (collector/build.sh) built into its hash-keyed cache.

    The path comes from ``build.sh --path``, so the test and the build agree on the cache key.
    Missing: skip locally, FAIL in CI (where ``make test`` builds it before pytest).
    """
    done = subprocess.run(
        [str(BUILD_SCRIPT), "--path", target],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    path = Path(done.stdout.strip())
    if done.returncode != 0 or not path.is_file():
        fail_or_skip(
            f"{target} binary not built ({done.stderr.strip() or path}): run `make collector`"
        )
    return path


# --------------------------------------------------------------------------------------------
# Collector configs: ${env:VAR:-default} references, overlays, compose combinations
# --------------------------------------------------------------------------------------------
ENV_REF = re.compile(r"\$\{env:(?P<name>[A-Za-z_]\w*)(?::-(?P<default>[^}]*))?\}")


def env_refs(obj: Any) -> dict[str, str | None]:
    """Every ``${env:VAR:-default}`` in a parsed config: variable -> default (None if none)."""
    found: dict[str, str | None] = {}
    if isinstance(obj, dict):
        for v in obj.values():
            found.update(env_refs(v))
    elif isinstance(obj, list):
        for v in obj:
            found.update(env_refs(v))
    elif isinstance(obj, str):
        for m in ENV_REF.finditer(obj):
            found[m["name"]] = m["default"]
    return found


def expand_env(obj: Any, env: Mapping[str, str] | None = None) -> Any:
    """Resolve ``${env:VAR:-default}`` as the collector's env provider does: from ``env`` (the
    compose defaults when empty), a whole-value reference typed as YAML (``8888`` -> int)."""
    env = env or {}
    if isinstance(obj, dict):
        return {k: expand_env(v, env) for k, v in obj.items()}
    if isinstance(obj, list):
        return [expand_env(v, env) for v in obj]
    if not isinstance(obj, str):
        return obj

    def value(m: re.Match[str]) -> str:
        got = env.get(m["name"], m["default"])
        assert got is not None, f"${{env:{m['name']}}} has no default and is not set"
        return got

    whole = ENV_REF.fullmatch(obj)
    if whole:
        return yaml.safe_load(value(whole))
    return ENV_REF.sub(value, obj)


def deep_merge(base: Any, overlay: Any) -> Any:
    """The collector's config merge: maps merge key by key, everything else is replaced."""
    if isinstance(base, dict) and isinstance(overlay, dict):
        out = dict(base)
        for k, v in overlay.items():
            out[k] = deep_merge(base[k], v) if k in base else v
        return out
    return overlay


def collector_config(*paths: Path, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The effective config of ``--config=p1 --config=p2 ...``, env references resolved."""
    merged: dict[str, Any] = {}
    for path in paths:
        merged = deep_merge(merged, load_yaml(path))
    resolved: dict[str, Any] = expand_env(merged, env)
    return resolved


def _compose_collector_files(compose_files: list[Path]) -> list[Path]:
    """Repo paths of the --config files the collector service's command loads."""
    command: list[str] = []
    mounts: dict[str, Path] = {}
    for path in compose_files:
        svc = load_yaml(path)["services"].get("otel-collector", {})
        command = svc.get("command", command)  # compose replaces command
        for vol in svc.get("volumes", []):
            source, target = vol.split(":")[:2]
            mounts[target] = (path.parent / source).resolve()
    files: list[Path] = []
    for arg in command:
        assert arg.startswith("--config="), arg
        inside = arg.removeprefix("--config=")
        for target, source in mounts.items():
            if inside == target or inside.startswith(target.rstrip("/") + "/"):
                files.append(
                    source / inside[len(target) :].lstrip("/") if source.is_dir() else source
                )
                break
        else:
            raise AssertionError(f"{arg}: not mounted from the repository")
    return files


def compose_collector_variants() -> dict[str, list[Path]]:
    """Each compose file combination -> the collector config files it runs, in --config order.

    The base file alone, and the base file with each override (docker-compose.*.yaml).
    """
    overrides = sorted(COLLECTOR_DIR.glob("docker-compose.*.yaml"))
    combos = [[COMPOSE], *([COMPOSE, o] for o in overrides)]
    return {" + ".join(p.name for p in c): _compose_collector_files(c) for c in combos}


def require_tool(name: str) -> str:
    """Path of a binary the test needs: skip locally when missing, FAIL in CI (CI=true)."""
    found = shutil.which(name) or next((p for p in (f"/usr/bin/{name}",) if Path(p).exists()), None)
    if found:
        return found
    message = f"{name} not found; install Debian's 'prometheus' (apt-get install -y prometheus)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


# --------------------------------------------------------------------------------------------
# Every PromQL expression the stack ships
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Query:
    """One PromQL expression and where it lives (for messages)."""

    where: str
    expr: str
    #: True for alert expressions: they return data only while the alert condition holds.
    alert: bool = False


def dashboards() -> dict[str, dict[str, Any]]:
    return {p.name: json.loads(p.read_text()) for p in sorted(DASHBOARDS_DIR.glob("*.json"))}


def iter_panels(panels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for p in panels:
        out.append(p)
        out.extend(iter_panels(p.get("panels", [])))
    return out


_LABEL_VALUES = re.compile(r"^label_values\((?P<selector>.+),\s*(?P<label>\w+)\)$")


def dashboard_queries(name: str, board: dict[str, Any]) -> list[Query]:
    """PromQL of every Prometheus target and every label_values() variable selector."""
    queries: list[Query] = []
    for panel in iter_panels(board["panels"]):
        for t in panel.get("targets", []):
            ds = t.get("datasource") or panel.get("datasource") or {}
            if ds.get("type") == "prometheus":
                queries.append(Query(f"{name}: {panel['title']} [{t['refId']}]", t["expr"]))
    for var in board.get("templating", {}).get("list", []):
        if var.get("type") == "query":
            m = _LABEL_VALUES.match(var["definition"])
            assert m, f"{name}: variable {var['name']} is not label_values(selector, label)"
            queries.append(Query(f"{name}: variable ${var['name']}", m["selector"]))
    return queries


def alert_queries() -> list[Query]:
    rules = load_yaml(ALERTS)
    return [
        Query(f"alerts.yaml: {r.get('alert') or r.get('record')}", r["expr"], alert="alert" in r)
        for g in rules["groups"]
        for r in g["rules"]
    ]


def datasource_queries() -> list[Query]:
    out: list[Query] = []
    for path in sorted(DATASOURCES_DIR.glob("*.yaml")):
        for ds in load_yaml(path)["datasources"]:
            for q in ds.get("jsonData", {}).get("tracesToMetrics", {}).get("queries", []):
                out.append(
                    Query(f"{path.name}: {ds['name']} tracesToMetrics '{q['name']}'", q["query"])
                )
    return out


def all_queries() -> list[Query]:
    out = [q for name, b in dashboards().items() for q in dashboard_queries(name, b)]
    return out + alert_queries() + datasource_queries()


#: Grafana variables and their stand-ins, for promtool and for the live Prometheus.
GRAFANA_DEFAULTS = {
    "__rate_interval": "1m",
    "__interval": "15s",
    "__range": "5m",
    "job": ".*",
    "component": ".*",
    "__tags": 'job="agent-service"',
}


def substitute(expr: str, values: dict[str, str] | None = None) -> str:
    """Replace Grafana variables (``$x``, ``${x}``, provisioning's ``$$x``) with concrete text."""
    values = {**GRAFANA_DEFAULTS, **(values or {})}

    def repl(m: re.Match[str]) -> str:
        name = m["braced"] or m["bare"]
        if name not in values:
            raise KeyError(f"unknown Grafana variable ${name} in {expr!r}")
        return values[name]

    out = re.sub(r"\$\$?(?:\{(?P<braced>\w+)\}|(?P<bare>\w+))", repl, expr)
    assert "$" not in out, out
    return out


# --------------------------------------------------------------------------------------------
# Metric and label names inside PromQL
# --------------------------------------------------------------------------------------------
_KEYWORDS = frozenset(
    [
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
        "limitk",
        "limit_ratio",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "and",
        "or",
        "unless",
        "bool",
        "offset",
        "atan2",
        "inf",
        "nan",
    ]
)
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")


def metric_names(expr: str) -> set[str]:
    """Metric names an expression selects (identifiers that are not functions or keywords)."""
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', expr)
    text = _GROUPING.sub(" ", text)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    names: set[str] = set()
    for m in re.finditer(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?", text):
        ident, call = m.group(1), m.group(2)
        if call or ident.lower() in _KEYWORDS:
            continue
        names.add(ident)
    return names


def label_names(expr: str) -> set[str]:
    """Label names used in matchers and grouping clauses."""
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', expr)
    labels: set[str] = set()
    for m in _GROUPING.finditer(text):
        labels.update(x.strip() for x in m.group(2).split(",") if x.strip())
    for m in re.finditer(r"\{([^}]*)\}", text):
        for matcher in m.group(1).split(","):
            key = re.match(r"\s*([a-zA-Z_]\w*)\s*(=~|!~|!=|=)", matcher)
            if key:
                labels.add(key.group(1))
    return labels
