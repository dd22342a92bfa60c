"""The bundled stack's pipeline, run for real: service -> collector -> Prometheus 3 / trace and log sinks.

What runs (all on free loopback ports, all started and stopped by this module):

- ``otelcol-flowtel`` (``make collector``) with ``collector/otel-collector.yaml`` itself, and in
  the tail-sampling case with ``overlays/tail-sampling.yaml`` on top, exactly as compose passes
  them. Only the config's own ``OTELCOL_*`` environment variables change: listen addresses,
  backend endpoints and the tail-sampling ``decision_wait``. No test copy of the config exists.
- Prometheus, the release compose pins (built by ``make collector``), with compose's flags
  (``--web.enable-otlp-receiver``, exemplar storage) and ``collector/prometheus/prometheus.yaml``
  with its ``otlp:`` and ``storage:`` blocks unchanged; only what names compose hosts changes
  (scrape targets, the rules path) and the intervals shrink to 1 s.
- Tempo and Loki cannot run here: the project's OTLP receivers stand in for them, attached to the
  collector's ``otlp_grpc/tempo`` and ``otlp_http/loki`` exporters.
- ``examples/agent_service.py`` under plain ``uvicorn``, configured as compose configures it
  (OTLP/HTTP to the collector's :4318), plus ``tests/stack/_pipeline_driver.py``, a flowtel
  process exporting OTLP/gRPC that drives the modules the example does not reach (Sentry,
  rate limiter, telemetry loss, a Lifecycle with hung work, in-process tail sampling) and logs
  inside spans; ``tests/stack/_console_service.py``, console mode with a stdout nobody reads
  (its console drops, as OTLP metrics); and ``python -m flowtel doctor`` against the collector.
- Two faults, so that the failure panels and alerts have something to show: the Loki stand-in
  rejects two log batches, and a second instance of the same config, its memory_limiter limits
  set below any heap through ``OTELCOL_MEMORY_LIMIT_MIB``, refuses the spans sent to it.

Asserted: every dashboard panel query, datasource query and alert rule expression returns data
from Prometheus (the few that cannot yet are listed in KNOWN_GAPS with the reason); the rules load
and evaluate; log records reach the log sink with trace ids of exported spans; the collector's
own metrics feed the collector dashboard; no span is lost (the driver's spans, the collector's
accepted and sent counts and the trace sink agree); the duration histogram's exemplars reach
Prometheus and name spans the trace sink received; and with the tail-sampling overlay, error,
startup and shutdown traces survive while other traces are sampled. Without the built binaries
the tests skip locally and fail in CI (CI=true).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from flowtel import semconv as sc

from ..support.otlp_receiver import OtlpGrpcReceiver, OtlpHttpReceiver, Signal
from . import _stack as st
from ._processes import DEADLINE_S, JOB, Collector, Process, Prometheus3, wait
from ._services import (
    ConsoleService,
    Driver,
    ExampleService,
    refuse_one_span,
    run_doctor,
    start_services,
    trace_ids,
)

pytestmark = pytest.mark.integration


#: Grafana variables for the live run: 1 s exports and scrapes put ~15 samples in 15 s.
LIVE_VARIABLES = {"__rate_interval": "15s", "__range": "5m", "job": JOB, "__tags": f'job="{JOB}"'}

#: Queries that cannot return data in this run, and why: query -> (reason, whether the series it
#: selects exist). Each one still runs and must return nothing, so the list shrinks when the reason
#: goes away (the test then fails: remove the entry). All are failure or overload signals.
_FAILURE_ONLY = (
    "the collector creates this series at the first {what}; this run's {sink} never {fails}, so "
    "the no-loss assertions hold (the log-records panel and OtelCollectorExportFailing return "
    "data: the Loki stand-in rejects two batches)"
)
_QUEUE_FULL = (
    "the collector creates this series when an exporter's sending queue is full (1000 batches); "
    "the batch processor merges this run's traffic into a few requests, so no queue fills"
)
KNOWN_GAPS: dict[str, tuple[str, bool]] = {
    "otel-collector.json: Spans sent / failed / dropped [B]": (
        _FAILURE_ONLY.format(what="failed span export", sink="Tempo stand-in", fails="fails"),
        False,
    ),
    "otel-collector.json: Metric points sent / failed / dropped [B]": (
        _FAILURE_ONLY.format(what="failed metric export", sink="Prometheus", fails="rejects"),
        False,
    ),
    "otel-collector.json: Spans sent / failed / dropped [C]": (_QUEUE_FULL, False),
    "otel-collector.json: Metric points sent / failed / dropped [C]": (_QUEUE_FULL, False),
    "otel-collector.json: Log records sent / failed / dropped [C]": (_QUEUE_FULL, False),
    "alerts.yaml: OtelCollectorQueueNearlyFull": (
        "fires only when an exporter's queue is over 80% of its capacity; the batch processor "
        "merges this run's traffic into a few requests: queue size and capacity exist, the queue "
        "stays near empty",
        True,
    ),
}


# --------------------------------------------------------------------------------------------
# The base config: collector -> Prometheus 3, trace sink (Tempo), log sink (Loki)
# --------------------------------------------------------------------------------------------
@dataclass
class BaseRun:
    prometheus: Prometheus3
    collector: Collector
    traces: OtlpGrpcReceiver
    logs: OtlpHttpReceiver
    example: ExampleService
    driver: Driver
    report: dict[str, Any]
    #: wall-clock time when the fixture's traffic and faults were done
    done_at: float


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BaseRun]:
    st.built_binary("collector")
    st.built_binary("prometheus")
    deadline = time.monotonic() + DEADLINE_S
    workdir = tmp_path_factory.mktemp("pipeline-base")
    traces, logs = OtlpGrpcReceiver().start(), OtlpHttpReceiver().start()
    collector = Collector("otelcol-base", [st.COLLECTOR_CONFIG], workdir)
    # A second instance of the same config whose memory_limiter limits (set through the config's
    # own variables) are below any Go heap: it refuses every request, as an overloaded collector
    # does, which the refused-data panels and OtelCollectorRefusingData show.
    overloaded = Collector("otelcol-overloaded", [st.COLLECTOR_CONFIG], workdir)
    prometheus = Prometheus3(workdir, {"otel-collector:8888": [
        f"127.0.0.1:{collector.metrics_port}", f"127.0.0.1:{overloaded.metrics_port}"]})  # fmt: skip
    collector.backends = {
        "OTELCOL_TEMPO_ENDPOINT": f"127.0.0.1:{traces.port}",
        "OTELCOL_PROMETHEUS_ENDPOINT": f"{prometheus.base}/api/v1/otlp",
        "OTELCOL_LOKI_ENDPOINT": logs.endpoint,
    }
    overloaded.backends = {
        **collector.backends,
        "OTELCOL_MEMORY_LIMIT_MIB": "2",
        "OTELCOL_MEMORY_SPIKE_MIB": "1",
    }
    procs: list[Process] = [prometheus, collector, overloaded]
    try:
        prometheus.start()
        collector.start()
        overloaded.start()
        prometheus.wait_ready(deadline)
        collector.wait_healthy(deadline)
        overloaded.wait_healthy(deadline)
        example, driver, report = start_services(workdir, collector, deadline)
        procs += [example, driver]
        console = ConsoleService(workdir, collector)
        console.start()
        procs.append(console)
        # flowtel doctor's test point feeds the overview's doctor panel; its log record must be
        # at the sink before the Loki stand-in starts rejecting batches below
        run_doctor(collector)
        wait("the doctor's log record", lambda: DOCTOR_LOG in [r.body for r in logs.logs()],
             deadline, collector)  # fmt: skip
        # Once the driver's log records are in, the Loki stand-in rejects one log batch (HTTP
        # 400, not retryable): the collector counts a failed send, which the collector dashboard
        # and OtelCollectorExportFailing show. Then a second one once Prometheus holds that
        # series, so that its rate() is above 0 (a counter's first sample shows no increase).
        last = "ticket 3 needs a human"  # logged in each of the driver's two rounds
        wait("the driver's log records", lambda: [r.body for r in logs.logs()].count(last) == 2,
             deadline, collector)  # fmt: skip
        failed = 'otelcol_exporter_send_failed_log_records{job="otel-collector"}'
        for rejected in (1, 2):
            logs.fail_with(400, times=1, signal=Signal.LOGS)
            driver.request_log()
            wait(f"rejected log batch {rejected}", lambda n=rejected: logs.rejected(Signal.LOGS) == n,  # type: ignore[misc]
                 deadline, collector)  # fmt: skip
            wait("the failed log export in Prometheus", lambda: bool(prometheus.query(failed)),
                 deadline, prometheus, collector)  # fmt: skip
        # Two refused span batches at the overloaded instance, the second once Prometheus holds
        # the refused series (so that its rate() is above 0).
        refused = (
            f'otelcol_receiver_refused_spans{{instance="127.0.0.1:{overloaded.metrics_port}"}} > 0'
        )
        for _ in range(2):
            wait("a refused span batch", lambda: refuse_one_span(overloaded), deadline, overloaded)
            wait("the refused spans in Prometheus", lambda: bool(prometheus.query(refused)),
                 deadline, prometheus, overloaded)  # fmt: skip
        yield BaseRun(prometheus, collector, traces, logs, example, driver, report, time.time())
    finally:
        for p in reversed(procs):
            p.stop()
        traces.stop()
        logs.stop()


DOCTOR_LOG = "flowtel doctor test record"
QUERIES = st.all_queries()
LIVE_QUERIES = [q for q in QUERIES if q.where not in KNOWN_GAPS]


def report(query: st.Query, rows: list[dict[str, Any]]) -> None:
    """With FLOWTEL_STACK_REPORT=<file>, append each query's series count and its series with the
    largest value (NaN last) to it (the table in docs/stack.md comes from there)."""
    target = os.environ.get("FLOWTEL_STACK_REPORT")
    if not target:
        return

    def size(row: dict[str, Any]) -> float:
        value = float(row["value"][1])
        return value if value == value else float("-inf")  # NaN != NaN

    first = max(rows, key=size)
    labels = ",".join(f'{k}="{v}"' for k, v in sorted(first["metric"].items()) if k != "__name__")
    value = float(first["value"][1])
    with open(target, "a") as out:
        out.write(f"{query.where}\t{len(rows)}\t{{{labels}}}\t{value:.4g}\n")


def report_exemplar(series: dict[str, str], exemplar: dict[str, Any]) -> None:
    """With FLOWTEL_STACK_REPORT, append one exemplar (for docs/stack.md)."""
    target = os.environ.get("FLOWTEL_STACK_REPORT")
    if not target:
        return
    keep = ("flowtel_component", "flowtel_operation", "le")
    labels = ",".join(f'{k}="{series[k]}"' for k in keep if k in series)
    with open(target, "a") as out:
        out.write(
            f"exemplar\t{{{labels}}}\ttrace_id={exemplar['labels']['trace_id']} "
            f"span_id={exemplar['labels']['span_id']} value={float(exemplar['value']):.4g}\n"
        )


class TestPrometheus:
    def test_config_is_the_stacks(self, base: BaseRun) -> None:
        """Only the backends that cannot run here (Tempo, Loki) lose their scrape job."""
        assert base.prometheus.dropped_jobs == ["tempo", "loki"]

    @pytest.mark.parametrize("query", LIVE_QUERIES, ids=lambda q: q.where)
    def test_query_returns_data(self, base: BaseRun, query: st.Query) -> None:
        """Each dashboard panel, variable, datasource and alert rule expression returns data."""
        prom = base.prometheus
        expr = st.substitute(query.expr, LIVE_VARIABLES)
        wait(f"{query.where}: {expr}", lambda: bool(prom.query(expr)), time.monotonic() + 30,
             prom, base.collector)  # fmt: skip
        report(query, prom.query(expr))

    @pytest.mark.parametrize("where", sorted(KNOWN_GAPS))
    def test_known_gap(self, base: BaseRun, where: str) -> None:
        """A known gap still returns nothing; for an alert, every series it selects exists."""
        [query] = [q for q in QUERIES if q.where == where]
        reason, series_exist = KNOWN_GAPS[where]
        prom = base.prometheus
        if series_exist:
            for name in sorted(st.metric_names(query.expr)):
                wait(f"{where}: series {name}", lambda n=name: bool(prom.query(n)),  # type: ignore[misc]
                     time.monotonic() + 30, prom)  # fmt: skip
        # every collector has been scraped after the run's traffic and faults were done
        scraped = f'min(timestamp(up{{job="otel-collector"}})) > {base.done_at + 1}'
        wait("a scrape after the run", lambda: bool(prom.query(scraped)), time.monotonic() + 30,
             prom)  # fmt: skip
        assert prom.query(st.substitute(query.expr, LIVE_VARIABLES)) == [], (
            f"{where} returns data now: remove it from KNOWN_GAPS ({reason})"
        )

    def test_every_query_is_covered(self) -> None:
        assert set(KNOWN_GAPS) <= {q.where for q in QUERIES}
        assert len(LIVE_QUERIES) + len(KNOWN_GAPS) == len(QUERIES)

    def test_rules_load_and_evaluate(self, base: BaseRun) -> None:
        """Prometheus loads alerts.yaml and every rule evaluates without error."""
        prom = base.prometheus
        expected = {q.where.split(": ")[1] for q in st.alert_queries()}

        def healthy() -> bool:
            rules = [r for g in prom.get("/api/v1/rules")["data"]["groups"] for r in g["rules"]]
            return {r["name"] for r in rules} == expected and all(
                r["health"] == "ok" and r.get("lastEvaluation", "").startswith("2") for r in rules
            )

        wait("rule evaluation", healthy, time.monotonic() + 30, prom)

    def test_latency_exemplars_reach_prometheus(self, base: BaseRun) -> None:
        """The latency panels' exemplars: Prometheus returns exemplars for the duration
        histogram, each with the trace and span id of a span the trace sink received, so the
        Grafana link (exemplarTraceIdDestinations -> Tempo) opens a stored trace."""
        prom = base.prometheus
        name = sc.prometheus_name(sc.metric(sc.METRIC_OPERATION_DURATION)) + "_bucket"
        query = f'{name}{{job="{JOB}"}}'

        def exemplars() -> list[tuple[dict[str, str], dict[str, Any]]]:
            now = time.time()
            body = prom.get("/api/v1/query_exemplars", query=query, start=str(now - 300),
                            end=str(now))  # fmt: skip
            assert body["status"] == "success", body
            return [(series["seriesLabels"], e) for series in body["data"]
                    for e in series["exemplars"]]  # fmt: skip

        wait("exemplars of the duration histogram", lambda: bool(exemplars()),
             time.monotonic() + 30, prom, base.collector)  # fmt: skip
        found = exemplars()
        assert all({"trace_id", "span_id"} <= e["labels"].keys() for _, e in found), found[:3]
        received = {(s.span.trace_id.hex(), s.span.span_id.hex()) for s in base.traces.spans()}
        linked = {(e["labels"]["trace_id"], e["labels"]["span_id"]) for _, e in found}

        def all_received() -> bool:
            received.update(
                (s.span.trace_id.hex(), s.span.span_id.hex()) for s in base.traces.spans()
            )
            missing = linked - received
            where = [
                (series.get("flowtel_component"), series.get("flowtel_operation"))
                for series, e in found
                if (e["labels"]["trace_id"], e["labels"]["span_id"]) in missing
            ]
            assert not missing, f"{len(missing)} of {len(linked)} not received: {where}"
            return True

        wait("the exemplars' spans at the trace sink", all_received, time.monotonic() + 30,
             base.collector)  # fmt: skip
        # the exemplar's value is the duration of the span it points at, in its bucket
        series, first = max(found, key=lambda f: float(f[1]["value"]))
        assert float(first["value"]) <= float(series["le"]) or series["le"] == "+Inf"
        report_exemplar(series, first)


class TestTracesAndLogs:
    def test_no_span_is_lost(self, base: BaseRun) -> None:
        """Every span the driver exported reached the trace sink, and the collector's receiver
        accepted, its Tempo exporter sent and the sink received the same number of spans."""
        sent = {(s["trace_id"], s["span_id"]) for s in base.report["spans"]}
        assert len(sent) > 300
        instance = base.report["instance"]

        def driver_spans() -> set[tuple[str, str]]:
            return {
                (s.span.trace_id.hex(), s.span.span_id.hex())
                for s in base.traces.spans()
                if s.resource.get("service.instance.id") == instance
            }

        wait("the driver's spans at the trace sink", lambda: driver_spans() == sent,
             time.monotonic() + 30, base.collector)  # fmt: skip

        def counts() -> tuple[float, float, int]:
            col = base.collector
            return (
                col.total("otelcol_receiver_accepted_spans"),
                col.total("otelcol_exporter_sent_spans", exporter="otlp_grpc/tempo"),
                len(base.traces.spans()),
            )

        def agree() -> bool:
            accepted, exported, received = counts()
            return accepted == exported == received > len(sent)

        wait("accepted = sent = received", agree, time.monotonic() + 30, base.collector)
        assert base.collector.total("otelcol_exporter_send_failed_spans") == 0
        assert base.collector.total("otelcol_receiver_refused_spans") == 0

    def test_logs_carry_trace_ids_of_exported_spans(self, base: BaseRun) -> None:
        """Log records reach the Loki stand-in; those logged inside a span carry its trace id,
        and every such trace id is one of the spans the Tempo stand-in received."""

        def correlated() -> list[str]:
            return [r.record.trace_id.hex() for r in base.logs.logs() if any(r.record.trace_id)]

        wait("trace-correlated log records", lambda: len(correlated()) >= 8,
             time.monotonic() + 30, base.collector)  # fmt: skip
        logged = set(correlated())
        wait("their traces at the trace sink", lambda: logged <= trace_ids(base.traces.spans()),
             time.monotonic() + 30, base.collector)  # fmt: skip
        bodies = {r.body for r in base.logs.logs()}
        assert {"ticket 0 needs a human", "ticket 1 needs a human"} <= bodies
        assert base.logs.rejected(Signal.LOGS) == 2  # the rejected batches (see the fixture)

    def test_collector_metrics_match_what_the_sinks_saw(self, base: BaseRun) -> None:
        """The collector dashboard's series, as Prometheus scraped them, agree with the sinks:
        accepted spans per receiver add up to what the trace sink holds."""
        prom = base.prometheus

        def scraped_accepted() -> float:
            rows = prom.query('sum(otelcol_receiver_accepted_spans{job="otel-collector"})')
            return float(rows[0]["value"][1]) if rows else -1.0

        wait("scraped accepted spans = spans at the sink",
             lambda: scraped_accepted() == len(base.traces.spans()),
             time.monotonic() + 30, prom, base.collector)  # fmt: skip
        receivers = {r["metric"]["transport"] for r in
                     prom.query('otelcol_receiver_accepted_spans{job="otel-collector"}')}  # fmt: skip
        assert receivers == {"grpc", "http"}  # the driver (gRPC) and the example (HTTP)
