"""Live proof of the dashboards: a real Prometheus scrapes flowtel-instrumented processes.

Three targets of one job: this test process, which exposes ``/metrics`` in-process through the
``prometheus`` extra (``configure_telemetry(prometheus_port=0)``) and drives every flowtel
module for real (@traced operations with failures and record_error under in-process tail
sampling, a Lifecycle startup and shutdown with a failing and a hung non-critical check and a
hung shutdown hook, readiness checks, the Sentry bridge to a loopback Sentry endpoint,
retry/timeout/rate limiter/circuit breaker, and the export guard behind a bounded batch
processor exporting to a refused port); ``examples/agent_service.py`` under plain ``uvicorn``
(startup checks, lifecycle state, Kubernetes probes, readiness); and
``tests/stack/_console_service.py`` (console output dropped: its stdout is never read). A real
``prometheus`` binary (Debian package) scrapes both every second with the stack's alert rules
loaded; then every dashboard, datasource and flowtel alert query runs through Prometheus' HTTP
API and must return data. In CI (CI=true) a missing ``prometheus`` binary fails the test.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

import flowtel
from flowtel import semconv as sc
from flowtel._export._guard import LossReason, TelemetrySignal
from flowtel.errors import get_error_stats

from ..support.otlp_receiver import refused_endpoint
from ..support.sentry_server import SentryServer
from . import _stack as st
from ._scraped import ConsoleService, ExampleService, Prometheus
from ._traffic import ServiceTraffic

pytestmark = pytest.mark.integration

JOB = "agent-service"
DEADLINE_S = 60.0
POLL_S = 0.2
#: Grafana variables as the live run substitutes them (1 s scrapes: 15 s holds ~15 samples).
LIVE_VARIABLES = {"__rate_interval": "15s", "__range": "5m", "job": JOB, "__tags": f'job="{JOB}"'}

_METRICS = {m.name: m for m in sc.METRICS}


@pytest.fixture(scope="module")
def live(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Prometheus, ServiceTraffic, InMemoryMetricReader]]:
    binary = st.require_tool("prometheus")
    workdir = tmp_path_factory.mktemp("stack-live")
    memory = InMemoryMetricReader()
    sentry = SentryServer().start()
    telemetry = flowtel.configure_telemetry(
        service_name=JOB,
        exporter="none",
        prometheus_port=0,
        prometheus_host="127.0.0.1",
        metric_readers=[memory],
        sentry_dsn=sentry.dsn,
        logging=False,
        # in-process tail sampling: the traces the head rate did not pick are decided by rule
        # (errors kept, the rest dropped), which the "Tail sampling decisions" panel shows
        sampling={"head_rate": 0.5},
        force=True,
    )
    assert telemetry.prometheus_port
    example = ExampleService(workdir)
    console = ConsoleService(workdir)
    prom: Prometheus | None = None
    try:
        deadline = time.monotonic() + DEADLINE_S
        traffic = ServiceTraffic(telemetry.meter_provider)
        traffic.startup_and_shutdown()
        traffic.operations(150)
        traffic.sentry()
        traffic.resilience()
        guard = traffic.telemetry_loss(refused_endpoint())
        assert telemetry.force_flush(10)
        sentry.wait_for_events(1)
        assert guard.dropped(TelemetrySignal.TRACES, LossReason.QUEUE_FULL) > 0
        assert guard.failures(TelemetrySignal.TRACES) >= 1
        example.wait_started(deadline)
        example.drive()
        targets = [
            f"127.0.0.1:{port}"
            for port in (telemetry.prometheus_port, example.metrics_port, console.metrics_port)
        ]
        prom = Prometheus(binary, workdir, targets)
        prom.wait(
            "all scrape targets to be up",
            lambda: bool(prom and len(prom.query(f'up{{job="{JOB}"}} == 1')) == len(targets)),
            deadline,
        )
        # more traffic after the first scrape so rate()/increase() see the counters move
        traffic.operations(150)
        traffic.sentry()
        traffic.resilience()
        traffic.telemetry_loss(refused_endpoint())
        example.drive()
        yield prom, traffic, memory
    finally:
        if prom is not None:
            prom.stop()
        console.stop()
        example.stop()
        telemetry.shutdown()
        sentry.stop()


#: Without a collector there are no collector series, and no series of a metric that only an
#: OTLP pipeline carries (st.OTLP_ONLY_METRICS): test_pipeline_live.py runs those queries.
_NOT_SCRAPED = st.COLLECTOR_METRICS | (
    st.flowtel_series_names() - st.flowtel_series_names(scraped=True)
)
LIVE_QUERIES = [
    q for q in st.all_queries() if not (st.metric_names(st.substitute(q.expr)) & _NOT_SCRAPED)
]


class TestQueriesReturnData:
    @pytest.mark.parametrize("query", LIVE_QUERIES, ids=lambda q: q.where)
    def test_query_returns_data(self, live: tuple[Prometheus, Any, Any], query: st.Query) -> None:
        """Each dashboard, datasource and flowtel alert query returns at least one series."""
        prom = live[0]
        expr = st.substitute(query.expr, LIVE_VARIABLES)
        prom.wait(
            f"{query.where}: {expr}", lambda: bool(prom.query(expr)), time.monotonic() + DEADLINE_S
        )

    def test_every_flowtel_series_is_stored_under_its_semconv_name(
        self, live: tuple[Prometheus, Any, Any]
    ) -> None:
        """Prometheus stores exactly the series names prometheus_name() predicts."""
        prom = live[0]
        expected = st.flowtel_series_names(scraped=True)

        def stored() -> set[str]:
            rows = prom.query(f'count by (__name__) ({{__name__=~"flowtel_.*", job="{JOB}"}})')
            return {r["metric"]["__name__"] for r in rows}

        prom.wait("all flowtel series", lambda: stored() == expected, time.monotonic() + DEADLINE_S)

    def test_top_failing_operations_are_the_failing_ones(
        self, live: tuple[Prometheus, Any, Any]
    ) -> None:
        """The top-failing table lists exactly the operations get_error_stats() saw fail."""
        prom = live[0]
        [query] = [q for q in LIVE_QUERIES if "Top failing operations" in q.where]
        expr = st.substitute(query.expr, LIVE_VARIABLES)
        comp, op = sc.prometheus_label(sc.COMPONENT), sc.prometheus_label(sc.OPERATION)
        stats = get_error_stats(last_minutes=60)
        failing = {k for k, v in stats.by_operation.items() if v.errors or v.handled}
        assert ("agent", "plan") in failing and ("agent", "answer") not in failing

        def listed() -> set[tuple[str, str]]:
            return {(r["metric"][comp], r["metric"][op]) for r in prom.query(expr)}

        prom.wait(
            "top failing operations", lambda: listed() == failing, time.monotonic() + DEADLINE_S
        )

    def test_sentry_panel_shows_sent_and_dropped(self, live: tuple[Prometheus, Any, Any]) -> None:
        """The Sentry panel splits the bridge's events into sent and dropped duplicates."""
        prom = live[0]
        [query] = [q for q in LIVE_QUERIES if "Sentry events" in q.where]
        expr = st.substitute(query.expr, LIVE_VARIABLES)
        outcome, reason = (sc.prometheus_label(k) for k in (sc.SENTRY_OUTCOME, sc.SENTRY_REASON))

        def series() -> set[tuple[str, str]]:
            return {(r["metric"][outcome], r["metric"].get(reason, "")) for r in prom.query(expr)}

        prom.wait(
            "sent and dropped Sentry events",
            lambda: series() == {("sent", ""), ("dropped", "duplicate")},
            time.monotonic() + DEADLINE_S,
        )

    def test_emitted_units_match_semconv(self, live: tuple[Any, Any, InMemoryMetricReader]) -> None:
        """Every flowtel instrument was created with its semconv unit (names depend on it)."""
        data = live[2].get_metrics_data()
        assert data is not None
        seen = {
            m.name: m.unit
            for rm in data.resource_metrics
            for scope in rm.scope_metrics
            for m in scope.metrics
            if m.name in _METRICS
        }
        # probes are answered by the example service only, console output is dropped by the
        # console service only (their series are checked by name above); the doctor's point is
        # not emitted by a service at all (st.OTLP_ONLY_METRICS)
        others = {sc.METRIC_PROBE_CHECKS, sc.METRIC_CONSOLE_DROPPED, *st.OTLP_ONLY_METRICS}
        assert set(seen) == set(_METRICS) - others
        for name, unit in seen.items():
            assert unit == _METRICS[name].unit, name


class TestAlertRules:
    def test_rules_load_and_evaluate(self, live: tuple[Prometheus, Any, Any]) -> None:
        """Prometheus loads alerts.yaml and every rule evaluates without error."""
        prom = live[0]

        def healthy() -> bool:
            rules = [r for g in prom.get("/api/v1/rules")["data"]["groups"] for r in g["rules"]]
            names = {r["name"] for r in rules}
            if names != {q.where.split(": ")[1] for q in st.alert_queries()}:
                return False
            return all(
                r["health"] == "ok" and r.get("lastEvaluation", "").startswith("2") for r in rules
            )

        prom.wait("rule evaluation", healthy, time.monotonic() + DEADLINE_S)

    def test_error_rate_alert_goes_pending(self, live: tuple[Prometheus, Any, Any]) -> None:
        """With over 5% failed operations FlowtelHighErrorRate becomes pending for the component."""
        prom = live[0]
        comp = sc.prometheus_label(sc.COMPONENT)

        def pending() -> set[str]:
            alerts = prom.get("/api/v1/alerts")["data"]["alerts"]
            return {
                a["labels"][comp]
                for a in alerts
                if a["labels"]["alertname"] == "FlowtelHighErrorRate"
                and a["state"] in {"pending", "firing"}
            }

        per_component: dict[str, list[int]] = {}
        for (component, _), v in get_error_stats(last_minutes=60).by_operation.items():
            totals = per_component.setdefault(component, [0, 0])
            totals[0] += v.total
            totals[1] += v.errors
        expected = {
            c
            for c, (total, errors) in per_component.items()
            if total >= 20 and errors / total > 0.05
        }
        assert expected == {"agent", "retriever"}
        prom.wait(
            "FlowtelHighErrorRate pending",
            lambda: pending() == expected,
            time.monotonic() + DEADLINE_S,
        )
