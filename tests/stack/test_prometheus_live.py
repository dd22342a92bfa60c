"""Live proof of the dashboards: a real Prometheus scrapes flowtel-instrumented processes.

Two targets of one job: this test process, which exposes ``/metrics`` in-process through the
``prometheus`` extra (``configure_telemetry(prometheus_port=0)``) and drives every flowtel
module for real (@traced operations with failures and record_error, a Lifecycle startup and
shutdown with a failing non-critical check, readiness checks, the Sentry bridge to a loopback
Sentry endpoint, retry/timeout/rate limiter/circuit breaker, and the export guard behind a
bounded batch processor exporting to a refused port); and ``examples/agent_service.py`` under
plain ``uvicorn`` (startup checks, lifecycle state, Kubernetes probes, readiness). A real
``prometheus`` binary (Debian package) scrapes both every second with the stack's alert rules
loaded; then every dashboard, datasource and flowtel alert query runs through Prometheus' HTTP
API and must return data. In CI (CI=true) a missing ``prometheus`` binary fails the test.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider

import flowtel
from flowtel import resilience
from flowtel import semconv as sc
from flowtel._export._batch import BoundedBatchSpanProcessor
from flowtel._export._guard import ExportGuard, LossReason, TelemetrySignal
from flowtel.errors import get_error_stats, record_error
from flowtel.lifecycle import Lifecycle, ReadinessMonitor, StartupOrchestrator

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
    """Drives every flowtel module in this process so each metric the dashboards use is emitted.

    All of it is real flowtel: @traced operations counted by the ErrorRateProcessor, the Sentry
    bridge, the resilience strategies, a Lifecycle with a StartupOrchestrator, and the export
    guard behind a bounded batch processor. Probes and readiness come from the example service
    (see :class:`ExampleService`).
    """

    def __init__(self, provider: MeterProvider) -> None:
        self._provider = provider
        self.guard = ExportGuard(export_timeout_s=5.0)
        self.guard.instrument(provider.get_meter("flowtel.stack-test"))
        self._upstream = FlakyUpstream(provider)

    # errors module: @traced operations with failures counted by the ErrorRateProcessor that
    # configure_telemetry installs, plus a handled error through record_error()
    def operations(self, rounds: int) -> None:
        for i in range(rounds):
            fail = i % 5 == 0
            with contextlib.suppress(TimeoutError, ValueError):
                [plan, answer, search][i % 3](i if fail else -1)
        try:
            raise ConnectionResetError("retriever connection reset, retried by the caller")
        except ConnectionResetError as exc:
            record_error(exc, component="retriever", operation="search")

    # lifecycle module: a startup with a failing non-critical check (DEGRADED), then a shutdown
    def startup_and_shutdown(self) -> None:
        orchestrator = StartupOrchestrator(meter_provider=self._provider)
        orchestrator.add(lambda: {"tables": 12}, name="database", timeout_s=5)
        orchestrator.add(lambda: None, name="cache", depends_on=["database"], timeout_s=5)
        orchestrator.add(_llm_unreachable, name="llm_provider", critical=False, timeout_s=5)
        lifecycle = Lifecycle(
            orchestrator, drain_s=0, meter_provider=self._provider, flush=lambda _t: True
        )

        readiness = ReadinessMonitor(meter_provider=self._provider)
        readiness.add(lambda: True, name="database", interval_s=60)
        readiness.add(lambda: False, name="llm_api", interval_s=60)

        async def run() -> None:
            report = await lifecycle.start()
            assert report.state.value == "DEGRADED", report
            readiness.start()  # first run of every check happens at once
            deadline = time.monotonic() + DEADLINE_S
            while any(v.ok is None for v in readiness.statuses().values()):
                assert time.monotonic() < deadline, "readiness checks never ran"
                await asyncio.sleep(POLL_S)  # polling interval, bounded by the deadline
            await readiness.stop()
            await lifecycle.shutdown()

        asyncio.run(run())

    # sentry module: configure_telemetry(sentry_dsn=...) bridges span exceptions to a Sentry
    # endpoint on loopback; one exception through three spans is 1 sent + 2 duplicates
    def sentry(self) -> None:
        with contextlib.suppress(StockError):
            checkout("sku-1")

    # resilience module: retry, timeout, rate limiter and circuit breaker on one provider
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


def _llm_unreachable() -> None:
    raise ConnectionError("llm provider unreachable")


class ExampleService:
    """examples/agent_service.py under plain ``uvicorn``, exposing ``/metrics`` on a second port.

    It brings the real startup checks, lifecycle state, Kubernetes probes and background
    readiness check; Prometheus scrapes it as a second instance of the same job.
    """

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.metrics_port = free_port()
        env = {
            **os.environ,
            "PYTHONPATH": f"{st.ROOT / 'src'}{os.pathsep}{st.ROOT}",
            "FLOWTEL_EXPORTER": "none",
            "FLOWTEL_PROMETHEUS_PORT": str(self.metrics_port),
            "FLOWTEL_PROMETHEUS_HOST": "127.0.0.1",
            "AGENT_LLM_DOWN": "1",  # a non-critical startup check fails: DEGRADED
            "AGENT_VECTOR_CONNECT_S": "0.05",
            "AGENT_DRAIN_S": "0",
        }
        self.logfile = workdir / "agent_service.log"
        self._log = self.logfile.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "examples.agent_service:app",
             "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=st.ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=5)

    def wait_started(self, deadline: float) -> None:
        """Poll /startup until it answers 200 (503 while the startup checks run)."""
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"example exited: {self.logfile.read_text()[-2000:]}")
            with contextlib.suppress(httpx.TransportError):
                if self.client.get("/startup").status_code == 200:
                    return
            time.sleep(POLL_S)  # polling interval while the service starts, not a fixed wait
        raise AssertionError(f"example never started: {self.logfile.read_text()[-2000:]}")

    def drive(self) -> None:
        """Probe every endpoint and ask a few questions."""
        for path in ("/alive", "/ready", "/health", "/startup"):
            self.client.get(path)
        for question in ("what is flowtel", "how do probes work"):
            assert self.client.post("/ask", params={"question": question}).status_code == 200

    def stop(self) -> None:
        self.client.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()


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

    def __init__(self, binary: str, workdir: Path, targets: list[str]) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(st.ALERTS)],
            "scrape_configs": [
                {"job_name": JOB, "static_configs": [{"targets": targets}]},
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
        force=True,
    )
    assert telemetry.prometheus_port
    example = ExampleService(workdir)
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
        targets = [f"127.0.0.1:{telemetry.prometheus_port}", f"127.0.0.1:{example.metrics_port}"]
        prom = Prometheus(binary, workdir, targets)
        prom.wait(
            "both scrape targets to be up",
            lambda: bool(prom and len(prom.query(f'up{{job="{JOB}"}} == 1')) == 2),
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
        example.stop()
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
        # probes are answered by the example service only; its series are checked by name above
        assert set(seen) == set(_METRICS) - {sc.METRIC_PROBE_CHECKS}
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
