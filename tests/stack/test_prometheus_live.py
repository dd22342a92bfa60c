"""Live proof of the dashboards: a real Prometheus scrapes a flowtel-instrumented process.

The test process is the instrumented service: it exposes ``/metrics`` in-process through the
``prometheus`` extra (opentelemetry-exporter-prometheus + prometheus_client) on a loopback port,
drives operations with failures, a startup, probes, Sentry, resilience and telemetry-loss traffic,
and a real ``prometheus`` binary (Debian package) scrapes it every second with the stack's alert
rules loaded. Then every dashboard, datasource and alert query runs through Prometheus' HTTP API
and must return data. In CI (CI=true) a missing ``prometheus`` binary fails the test.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.metrics import CallbackOptions, Meter, MeterProvider, Observation
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider

import flowtel
from flowtel import resilience
from flowtel import semconv as sc
from flowtel._batch_processor import BoundedBatchSpanProcessor
from flowtel._export_guard import ExportGuard, LossReason, TelemetrySignal
from flowtel.errors import get_error_stats, record_error

from ..support.otlp_receiver import refused_endpoint
from ..support.sentry_server import SentryServer
from . import _stack as st

pytestmark = pytest.mark.integration

JOB = "agent-service"
DEADLINE_S = 60.0
POLL_S = 0.2
#: Grafana variables as the live run substitutes them (1 s scrapes: 15 s holds ~15 samples).
LIVE_VARIABLES = {"__rate_interval": "15s", "__range": "5m", "job": JOB, "__tags": f'job="{JOB}"'}

_METRICS = {m.name: m for m in sc.METRICS}
#: Metrics this test emits through the real flowtel module rather than by hand.
_REAL_MODULE_METRICS = {
    sc.METRIC_OPERATION_CALLS,
    sc.METRIC_OPERATION_DURATION,
    sc.METRIC_ERRORS,
    sc.METRIC_ERROR_RATE,
    sc.METRIC_SENTRY_EVENTS,
    sc.METRIC_TELEMETRY_DROPPED,
    sc.METRIC_TELEMETRY_EXPORT_FAILURES,
    sc.METRIC_RESILIENCE_EVENTS,
    sc.METRIC_RESILIENCE_CALLS,
    sc.METRIC_RESILIENCE_ATTEMPT_DURATION,
    sc.METRIC_RATE_LIMITER_WAIT,
    sc.METRIC_RATE_LIMITER_PERMITS,
    sc.METRIC_RATE_LIMITER_RATE,
    sc.METRIC_CIRCUIT_STATE,
    sc.METRIC_CIRCUIT_FAILURE_RATE,
    sc.METRIC_CIRCUIT_SLOW_CALL_RATE,
}


@flowtel.traced(component="agent", operation="plan")
def plan(fail: int) -> str:
    if fail >= 0:
        raise (TimeoutError if fail % 2 else ValueError)(f"planning step {fail} failed")
    return "plan"


@flowtel.traced(component="agent", operation="answer")
def answer(fail: int) -> str:
    return "answer"


@flowtel.traced(component="retriever", operation="search")
def search(fail: int) -> list[str]:
    if fail >= 0:
        raise (TimeoutError if fail % 2 else ValueError)(f"search {fail} failed")
    return ["doc"]


class StockError(Exception):
    """Raised by the traced functions that feed the Sentry bridge."""


@flowtel.traced(component="shop", operation="reserve")
def reserve(sku: str) -> None:
    raise StockError(f"out of stock: {sku}")


@flowtel.traced(component="shop", operation="place_order")
def place_order(sku: str) -> None:
    reserve(sku)


@flowtel.traced(component="shop", operation="checkout")
def checkout(sku: str) -> None:
    place_order(sku)


class UpstreamError(ConnectionError):
    """What the simulated upstream raises."""


class FlakyUpstream:
    """Calls a simulated upstream through flowtel.resilience on virtual time (test mode).

    One round produces every resilience metric: a plain success, a success after a retry, a
    failure after retries, a timeout, a limiter wait, and a breaker that opens and then rejects.
    """

    def __init__(self, provider: MeterProvider) -> None:
        self.clock = resilience.VirtualClock()
        kw: dict[str, Any] = {"clock": self.clock, "meter_provider": provider}
        self.retry = resilience.retry(3, backoff_s=0.05, name="llm.complete", **kw)
        self.once = resilience.retry(2, backoff_s=0.05, name="llm.embed", **kw)
        self.limiter = resilience.rate_limit(1.0, burst=1, name="llm", **kw)
        self.breaker = resilience.circuit_breaker(
            "llm",
            window=resilience.CountWindow(4),
            minimum_calls=4,
            open_for_s=600.0,
            slow_call_duration_s=5.0,
            **kw,
        )
        self.timeout = resilience.timeout(0.01, name="llm.stream", meter_provider=provider)
        self._failures_left = 0

    def _flaky(self) -> str:
        if self._failures_left > 0:
            self._failures_left -= 1
            raise UpstreamError("upstream reset the connection")
        return "ok"

    def _down(self) -> str:
        raise UpstreamError("upstream unavailable")

    async def _hang(self) -> None:
        await asyncio.Event().wait()  # never set: only the timeout ends it

    def round(self) -> None:
        self.retry(self._flaky)()  # success
        self._failures_left = 1
        self.retry(self._flaky)()  # success_after_retry
        with contextlib.suppress(UpstreamError):
            self.once(self._down)()  # failed_after_retry
        with contextlib.suppress(TimeoutError):
            asyncio.run(self.timeout(self._hang)())  # timeout
        for _ in range(2):  # the second call waits ~1 virtual second for a permit
            self.limiter(self._flaky)()
        for _ in range(5):  # four failures open the breaker; the fifth call is rejected
            with contextlib.suppress(UpstreamError, resilience.CircuitOpenError):
                self.breaker(self._down)()


# --------------------------------------------------------------------------------------------
# The instrumented service
# --------------------------------------------------------------------------------------------
class ServiceTraffic:
    """Emits every flowtel metric with its semconv name, unit and attributes.

    Until the errors, lifecycle, Sentry and resilience modules land on main, this drives the
    instruments directly (one block per module, each marked below); the lead swaps each block
    for the real module so the same queries then prove the modules' output.
    """

    def __init__(self, meter: Meter, provider: MeterProvider) -> None:
        self._meter = meter
        self._counters = {
            m.name: meter.create_counter(m.name, unit=m.unit, description=m.description)
            for m in sc.METRICS
            if m.instrument is sc.Instrument.COUNTER and m.name not in _REAL_MODULE_METRICS
        }
        self._histograms = {
            m.name: meter.create_histogram(
                m.name,
                unit=m.unit,
                description=m.description,
                explicit_bucket_boundaries_advisory=list(sc.DURATION_BUCKETS_S),
            )
            for m in sc.METRICS
            if m.instrument is sc.Instrument.HISTOGRAM and m.name not in _REAL_MODULE_METRICS
        }
        self._gauges: dict[str, list[tuple[float, dict[str, str]]]] = {}
        for m in sc.METRICS:
            if m.instrument is sc.Instrument.GAUGE and m.name not in _REAL_MODULE_METRICS:
                self._gauges[m.name] = []
                meter.create_observable_gauge(
                    m.name, [self._observer(m.name)], unit=m.unit, description=m.description
                )
        self.guard = ExportGuard(export_timeout_s=5.0)
        self.guard.instrument(meter)
        self._upstream = FlakyUpstream(provider)

    def _observer(self, name: str) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def observe(_: CallbackOptions) -> Iterator[Observation]:
            for value, attrs in list(self._gauges[name]):
                yield Observation(value, attrs)

        return observe

    def _add(self, name: str, attrs: dict[str, Any], n: int = 1) -> None:
        self._counters[name].add(n, attrs)

    # errors module (real): @traced operations with failures counted by the ErrorRateProcessor
    # that configure_telemetry installs, plus a handled error through record_error()
    def operations(self, rounds: int) -> None:
        for i in range(rounds):
            fail = i % 5 == 0
            with contextlib.suppress(TimeoutError, ValueError):
                [plan, answer, search][i % 3](i if fail else -1)
        try:
            raise ConnectionResetError("retriever connection reset, retried by the caller")
        except ConnectionResetError as exc:
            record_error(exc, component="retriever", operation="search")

    # lifecycle module: startup orchestrator, lifecycle state, probes, readiness, shutdown
    def startup_and_lifecycle(self) -> None:
        hist = self._histograms
        hist[sc.METRIC_STARTUP_DURATION].record(1.25, {sc.LIFECYCLE_STATE: "DEGRADED"})
        for check, seconds, outcome in (
            ("database", 0.4, "success"),
            ("cache", 0.2, "success"),
            ("vector_store", 0.85, "failed"),
        ):
            hist[sc.METRIC_STARTUP_CHECK_DURATION].record(
                seconds, {sc.STARTUP_CHECK: check, sc.STARTUP_OUTCOME: outcome}
            )
        states = ("STARTING", "READY", "DEGRADED", "DRAINING", "STOPPED", "FAILED")
        self._gauges[sc.METRIC_LIFECYCLE_STATE] = [
            (1.0 if s == "DEGRADED" else 0.0, {sc.LIFECYCLE_STATE: s}) for s in states
        ]
        for probe, outcome in (
            ("startup", "fail"),
            ("startup", "pass"),
            ("ready", "pass"),
            ("alive", "pass"),
            ("health", "pass"),
        ):
            self._add(sc.METRIC_PROBE_CHECKS, {sc.PROBE: probe, sc.PROBE_OUTCOME: outcome})
        self._gauges[sc.METRIC_READINESS_CHECK_STATUS] = [
            (1.0, {sc.READINESS_CHECK: "database"}),
            (0.0, {sc.READINESS_CHECK: "llm_api"}),
        ]
        hist[sc.METRIC_SHUTDOWN_DURATION].record(0.6, {sc.SHUTDOWN_OUTCOME: "success"})

    # sentry module (real): configure_telemetry(sentry_dsn=...) bridges span exceptions to a
    # Sentry endpoint on loopback; one exception through three spans is 1 sent + 2 duplicates
    def sentry(self) -> None:
        with contextlib.suppress(StockError):
            checkout("sku-1")

    # resilience module (real): retry, timeout, rate limiter and circuit breaker on one provider
    def resilience(self) -> None:
        self._upstream.round()

    # core: telemetry lost before export, counted by the real ExportGuard behind a real
    # bounded batch processor whose OTLP exporter points at a refused loopback port
    def telemetry_loss(self, endpoint: str) -> ExportGuard:
        guard = self.guard
        exporter = OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces", timeout=1)
        processor = BoundedBatchSpanProcessor(
            exporter, guard, max_queue_size=4, max_export_batch_size=4, schedule_delay_s=60.0
        )
        provider = TracerProvider()
        provider.add_span_processor(processor)
        tracer = provider.get_tracer("flowtel.stack-test")
        for _ in range(1000):  # far beyond the 4-span queue: most are dropped as queue_full
            tracer.start_span("work").end()
        provider.force_flush(timeout_millis=10_000)  # export to the refused port fails
        provider.shutdown()
        return guard


# --------------------------------------------------------------------------------------------
# Prometheus
# --------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Prometheus:
    """A real Prometheus on a loopback port with temp config and storage."""

    def __init__(self, binary: str, workdir: Path, target: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(st.ALERTS)],
            "scrape_configs": [
                {"job_name": JOB, "static_configs": [{"targets": [target]}]},
            ],
        }
        cfg = workdir / "prometheus.yaml"
        cfg.write_text(yaml.safe_dump(config))
        self.log = (workdir / "prometheus.log").open("w")
        self.proc = subprocess.Popen(
            [
                binary,
                f"--config.file={cfg}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.logfile = workdir / "prometheus.log"

    def get(self, path: str, **params: str) -> Any:
        url = f"{self.base}{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=5) as resp:
            return json.loads(resp.read())

    def query(self, expr: str) -> list[dict[str, Any]]:
        body = self.get("/api/v1/query", query=expr)
        assert body["status"] == "success", body
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def wait(self, what: str, check: Callable[[], bool], deadline: float) -> None:
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"prometheus exited: {self.logfile.read_text()[-2000:]}")
            try:
                if check():
                    return
            except OSError:
                pass
            time.sleep(POLL_S)  # polling interval while waiting on Prometheus, not a fixed wait
        raise AssertionError(f"timed out waiting for {what}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.log.close()


@pytest.fixture(scope="module")
def live(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Prometheus, ServiceTraffic, InMemoryMetricReader]]:
    binary = st.require_tool("prometheus")
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
        force=True,
    )
    assert telemetry.prometheus_port
    prom: Prometheus | None = None
    try:
        traffic = ServiceTraffic(
            telemetry.meter_provider.get_meter("flowtel.stack-test"), telemetry.meter_provider
        )
        traffic.startup_and_lifecycle()
        traffic.operations(150)
        traffic.sentry()
        traffic.resilience()
        guard = traffic.telemetry_loss(refused_endpoint())
        assert telemetry.force_flush(10)
        sentry.wait_for_events(1)
        assert guard.dropped(TelemetrySignal.TRACES, LossReason.QUEUE_FULL) > 0
        assert guard.failures(TelemetrySignal.TRACES) >= 1
        target = f"127.0.0.1:{telemetry.prometheus_port}"
        prom = Prometheus(binary, tmp_path_factory.mktemp("prometheus"), target)
        deadline = time.monotonic() + DEADLINE_S
        prom.wait(
            "the scrape target to be up",
            lambda: bool(prom and prom.query(f'up{{job="{JOB}"}} == 1')),
            deadline,
        )
        # more traffic after the first scrape so rate()/increase() see the counters move
        traffic.operations(150)
        traffic.sentry()
        traffic.resilience()
        traffic.telemetry_loss(refused_endpoint())
        yield prom, traffic, memory
    finally:
        if prom is not None:
            prom.stop()
        telemetry.shutdown()
        sentry.stop()


LIVE_QUERIES = [
    q
    for q in st.all_queries()
    if not (st.metric_names(st.substitute(q.expr)) <= st.COLLECTOR_METRICS)
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
        expected = st.flowtel_series_names()

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
        assert set(seen) == set(_METRICS)
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
