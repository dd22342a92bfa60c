"""The tail-sampling overlay, live: which traces survive (see test_pipeline_live.py for what
runs).

A collector runs collector/otel-collector.yaml with overlays/tail-sampling.yaml on top, as
the compose override passes them; the example service and the driver send to it; the trace
sink stands in for Tempo. Error, startup and shutdown traces must arrive whole, while plain
traces are sampled.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from flowtel import semconv as sc

from ..support.otlp_receiver import OtlpGrpcReceiver, OtlpHttpReceiver
from . import _stack as st
from ._processes import DEADLINE_S, JOB, Collector, Process, wait
from ._services import start_services

pytestmark = pytest.mark.integration


# --------------------------------------------------------------------------------------------
# The tail-sampling overlay: which traces survive
# --------------------------------------------------------------------------------------------
@dataclass
class TailRun:
    traces: OtlpGrpcReceiver
    report: dict[str, Any]
    example_instance: str


@pytest.fixture(scope="module")
def tail(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TailRun]:
    st.built_binary("collector")
    deadline = time.monotonic() + DEADLINE_S
    workdir = tmp_path_factory.mktemp("pipeline-tail")
    traces, other = OtlpGrpcReceiver().start(), OtlpHttpReceiver().start()
    collector = Collector(
        "otelcol-tail-sampling", [st.COLLECTOR_CONFIG, st.TAIL_SAMPLING_OVERLAY], workdir
    )
    collector.backends = {
        "OTELCOL_TEMPO_ENDPOINT": f"127.0.0.1:{traces.port}",
        "OTELCOL_PROMETHEUS_ENDPOINT": other.endpoint,  # metrics and logs are not looked at here
        "OTELCOL_LOKI_ENDPOINT": other.endpoint,
        "OTELCOL_DECISION_WAIT": "1s",  # compose: 10s
    }
    procs: list[Process] = [collector]
    try:
        collector.start()
        collector.wait_healthy(deadline)
        example, driver, report = start_services(workdir, collector, deadline)
        procs += [driver]
        # SIGTERM: the example drains (AGENT_DRAIN_S=0.2), runs its hooks and exports its
        # flowtel.shutdown trace before it exits 0
        assert example.stop() == 0, example.tail()
        spans = traces.wait_for_spans(
            lambda got: any(s.name == sc.SPAN_SHUTDOWN and s.resource.get("service.name") == JOB
                            and s.resource.get("service.instance.id") != report["instance"]
                            for s in got),
            timeout_s=max(1.0, deadline - time.monotonic()),
        )  # fmt: skip
        [instance] = {
            s.resource["service.instance.id"]
            for s in spans
            if s.name == sc.SPAN_SHUTDOWN
            and s.resource["service.instance.id"] != report["instance"]
        }
        yield TailRun(traces, report, instance)
    finally:
        for p in reversed(procs):
            p.stop()
        traces.stop()
        other.stop()


class TestTailSampling:
    def _driver_traces(self, run: TailRun) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {}
        for s in run.report["spans"]:
            out.setdefault(s["trace_id"], []).append(s)
        return out

    def _received(self, run: TailRun) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for s in run.traces.spans():
            out.setdefault(s.span.trace_id.hex(), set()).add(s.span.span_id.hex())
        return out

    def _must_survive(self, run: TailRun, keep: Callable[[list[dict[str, Any]]], bool]) -> None:
        wanted = {t: {s["span_id"] for s in spans}
                  for t, spans in self._driver_traces(run).items() if keep(spans)}  # fmt: skip
        assert wanted

        def complete() -> bool:
            got = self._received(run)
            return all(ids <= got.get(t, set()) for t, ids in wanted.items())

        wait("whole traces at the sink", complete, time.monotonic() + 30)

    def test_error_traces_survive(self, tail: TailRun) -> None:
        """Every trace with an ERROR span arrives whole."""
        self._must_survive(tail, lambda spans: any(s["error"] for s in spans))

    def test_startup_and_shutdown_traces_survive(self, tail: TailRun) -> None:
        """flowtel.startup and flowtel.shutdown traces arrive whole (the driver's Lifecycle),
        and the example service's startup and SIGTERM shutdown traces arrive too."""
        lifecycle = {sc.SPAN_STARTUP, sc.SPAN_SHUTDOWN}
        self._must_survive(tail, lambda spans: any(s["name"] in lifecycle for s in spans))

        def example_lifecycle() -> set[str]:
            return {s.name for s in tail.traces.spans()
                    if s.resource.get("service.instance.id") == tail.example_instance
                    and s.name in lifecycle}  # fmt: skip

        wait("the example's startup and shutdown spans", lambda: example_lifecycle() == lifecycle,
             time.monotonic() + 30)  # fmt: skip

    def test_other_traces_are_sampled(self, tail: TailRun) -> None:
        """The overlay does sample: of the driver's plain, successful traces only a share
        (10% policy) arrives."""
        lifecycle = {sc.SPAN_STARTUP, sc.SPAN_SHUTDOWN}
        plain = [t for t, spans in self._driver_traces(tail).items()
                 if not any(s["error"] or s["name"] in lifecycle for s in spans)]  # fmt: skip
        assert len(plain) > 100
        self._must_survive(tail, lambda spans: any(s["error"] for s in spans))  # decisions made
        kept = [t for t in plain if t in self._received(tail)]
        assert len(kept) < len(plain) / 2, (len(kept), len(plain))
