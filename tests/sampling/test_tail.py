"""Tail sampling through configure_telemetry(sampling=...): whole local traces kept or dropped."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from opentelemetry import context as context_api
from opentelemetry import trace
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

import flowtel
from flowtel import semconv
from flowtel.exceptions import ConfigurationError
from flowtel.tracing import Sampling
from flowtel.tracing._tail import TailSamplingProcessor


class Rig:
    def __init__(self, **options: Any) -> None:
        self.spans = InMemorySpanExporter()
        self.metrics = InMemoryMetricReader()
        self.telemetry = flowtel.configure_telemetry(
            service_name="tail-tests",
            exporter="none",
            span_exporters=[self.spans],
            metric_readers=[self.metrics],
            logging=False,
            force=True,
            **options,
        )
        self.tracer = self.telemetry.tracer_provider.get_tracer("tests.sampling")

    def trace_ids(self) -> set[int]:
        return {s.context.trace_id for s in self.spans.get_finished_spans()}

    def decisions(self) -> dict[tuple[str, str], int]:
        data = self.metrics.get_metrics_data()
        out: dict[tuple[str, str], int] = {}
        for rm in data.resource_metrics if data else ():
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    if metric.name == semconv.METRIC_SAMPLING_TRACES:
                        for p in metric.data.data_points:
                            a = p.attributes or {}
                            key = (
                                str(a[semconv.SAMPLING_DECISION]),
                                str(a[semconv.SAMPLING_REASON]),
                            )
                            out[key] = int(p.value)
        return out

    def request(self, *, fail: bool = False, children: int = 3) -> int:
        """A root with nested children; the innermost fails when asked. Returns the trace id."""
        root = self.tracer.start_span("root", kind=trace.SpanKind.SERVER)
        token = context_api.attach(trace.set_span_in_context(root))
        try:
            spans = []
            for depth in range(children):
                child = self.tracer.start_span(f"child{depth}")
                spans.append(child)
                context_api.attach(trace.set_span_in_context(child))
            for depth, child in enumerate(reversed(spans)):
                if fail and depth == 0:
                    child.set_status(Status(StatusCode.ERROR))
                child.end()
        finally:
            context_api.detach(token)
        root.end()
        return root.get_span_context().trace_id


@pytest.fixture
def make_rig() -> Iterator[Callable[..., Rig]]:
    made: list[Rig] = []

    def make(**options: Any) -> Rig:
        made.append(Rig(**options))
        return made[-1]

    yield make
    for rig in made:
        rig.telemetry.shutdown()


class TestRules:
    def test_failing_traces_are_kept_whole_and_others_dropped(
        self, make_rig: Callable[..., Rig]
    ) -> None:
        """Head rate 0: every trace with an error is exported with all its spans; none else."""
        rig = make_rig(sampling={"head_rate": 0.0})
        failing = {rig.request(fail=True) for _ in range(5)}
        for _ in range(20):
            rig.request()
        assert rig.trace_ids() == failing
        assert len(rig.spans.get_finished_spans()) == 5 * 4
        assert all(s.context.trace_flags.sampled for s in rig.spans.get_finished_spans())
        assert rig.decisions() == {("kept", "error"): 5, ("dropped", "head"): 20}

    def test_error_statistics_stay_exact(self, make_rig: Callable[..., Rig]) -> None:
        """Dropped traces are still counted: entries once per trace, operations per span."""
        rig = make_rig(sampling={"head_rate": 0.0})
        for i in range(20):
            rig.request(fail=i % 4 == 0)
        stats = flowtel.get_error_stats()
        assert (stats.entries.total, stats.entries.errors) == (20, 0)  # the root never failed
        assert (stats.total, stats.errors) == (80, 5)

    def test_slow_roots_are_kept(self, make_rig: Callable[..., Rig]) -> None:
        """A root at or over slow_root_s keeps its trace; a faster one does not."""
        rig = make_rig(sampling=Sampling(head_rate=0.0, slow_root_s=2.0))
        kept = set()
        for duration_s in (0.5, 1.99, 2.0, 30.0):
            root = rig.tracer.start_span("job", start_time=1_000_000_000)
            root.end(end_time=1_000_000_000 + int(duration_s * 1e9))
            if duration_s >= 2.0:
                kept.add(root.get_span_context().trace_id)
        assert rig.trace_ids() == kept and len(kept) == 2

    def test_keep_trace_keeps_the_current_trace(self, make_rig: Callable[..., Rig]) -> None:
        """flowtel.keep_trace() inside a trace exports it whole; without a span it says False."""
        rig = make_rig(sampling={"head_rate": 0.0, "errors": False})
        assert flowtel.keep_trace() is False
        with rig.tracer.start_as_current_span("vip") as root, rig.tracer.start_as_current_span("s"):
            assert flowtel.keep_trace() is True
        rig.request(fail=True)  # the error rule is off: dropped
        assert rig.trace_ids() == {root.get_span_context().trace_id}
        assert len(rig.spans.get_finished_spans()) == 2

    def test_sampled_upstream_parent_is_always_kept(self, make_rig: Callable[..., Rig]) -> None:
        """A W3C traceparent with the sampled flag keeps the local trace; flag 00 is undecided."""
        rig = make_rig(sampling={"head_rate": 0.0})
        propagator = TraceContextTextMapPropagator()
        for flags, trace_hex in (("01", "a" * 32), ("00", "b" * 32)):
            carrier = {"traceparent": f"00-{trace_hex}-{'c' * 16}-{flags}"}
            token = context_api.attach(propagator.extract(carrier))
            try:
                rig.request()
            finally:
                context_api.detach(token)
        assert rig.trace_ids() == {int("a" * 32, 16)}
        assert len(rig.spans.get_finished_spans()) == 4

    def test_span_ending_after_its_root_follows_the_decision(
        self, make_rig: Callable[..., Rig]
    ) -> None:
        """A background span that outlives its root is exported with a kept trace only."""
        rig = make_rig(sampling={"head_rate": 0.0})
        late = {}
        for fail in (True, False):
            root = rig.tracer.start_span("root")
            ctx = trace.set_span_in_context(root)
            late[fail] = rig.tracer.start_span("background", context=ctx)
            if fail:
                root.set_status(Status(StatusCode.ERROR))
            root.end()
        for span in late.values():
            span.end()
        names = sorted(s.name for s in rig.spans.get_finished_spans())
        assert names == ["background", "root"]


class TestBounds:
    def test_overflow_decides_the_oldest_by_head_rate_and_counts_it(
        self, make_rig: Callable[..., Rig]
    ) -> None:
        """At max_traces the oldest undecided trace is dropped (counted), and a trace whose
        error was already seen is exported; the buffer never exceeds its caps."""
        rig = make_rig(sampling={"head_rate": 0.0, "max_traces": 2})
        roots = [rig.tracer.start_span(f"root{i}") for i in range(4)]
        children = [
            rig.tracer.start_span("child", context=trace.set_span_in_context(r)) for r in roots
        ]
        children[1].set_status(Status(StatusCode.ERROR))
        for child in children:
            child.end()  # 4 traces open: the two oldest are decided now
        for root in roots:
            root.end()
        exported = sorted((s.name, s.context.trace_id) for s in rig.spans.get_finished_spans())
        trace1 = roots[1].get_span_context().trace_id
        # trace 1 (error seen) exported its child at overflow and its root when it ended.
        assert [n for n, t in exported if t == trace1] == ["child", "root1"]
        assert {t for _, t in exported} == {trace1}
        assert rig.decisions() == {
            ("dropped", "overflow"): 1,
            ("kept", "error"): 1,
            ("dropped", "head"): 2,
        }

    def test_root_that_never_ends_is_flushed_after_the_timeout(self) -> None:
        """A trace whose root has not ended by root_timeout_s is decided with what was seen."""
        now = [0.0]
        exporter = InMemorySpanExporter()
        tail = TailSamplingProcessor(
            Sampling(head_rate=0.0, root_timeout_s=30), clock=lambda: now[0]
        )
        tail.add_exporter(SimpleSpanProcessor(exporter))
        provider = TracerProvider(sampler=_record_only())
        provider.add_span_processor(tail)
        tracer = provider.get_tracer("t")
        stuck = tracer.start_span("stuck-root")
        failed = tracer.start_span("child", context=trace.set_span_in_context(stuck))
        failed.set_status(Status(StatusCode.ERROR))
        failed.end()
        assert exporter.get_finished_spans() == ()
        now[0] = 31.0
        assert tail.force_flush(1000)
        assert [s.name for s in exporter.get_finished_spans()] == ["child"]
        assert tail.decisions == {("kept", "error"): 1}
        provider.shutdown()


def _record_only() -> Any:
    from flowtel.tracing._provider import RatioSampler

    return RatioSampler(0.0, record_unsampled=True)


class TestConfiguration:
    @pytest.mark.parametrize(
        ("options", "option"),
        [
            ({"sampling": {"bogus": 1}}, "sampling.bogus"),
            ({"sampling": {"head_rate": 2}}, "sampling.head_rate"),
            ({"sampling": {"head_rate": 0.5}, "sample_rate": 0.1}, "sampling.head_rate"),
            ({"sampling": {"max_spans": 0}}, "sampling.max_spans"),
            ({"sampling": "errors=maybe"}, "sampling.errors"),
            ({"sampling": 0.1}, "sampling"),
            ({"sampling": {}, "count_unsampled": False}, "count_unsampled"),
            ({"error_window_minutes": 7 * 24 * 60 + 1}, "error_window_minutes"),
        ],
    )
    def test_bad_values_fail_at_configure(self, options: dict[str, Any], option: str) -> None:
        """A bad sampling value fails configure_telemetry with the option's name."""
        with pytest.raises(ConfigurationError) as err:
            flowtel.configure_telemetry(exporter="none", force=True, **options)
        assert err.value.option == option

    def test_environment_variable_and_sample_rate(
        self, make_rig: Callable[..., Rig], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """FLOWTEL_SAMPLING configures it; head_rate defaults to sample_rate."""
        monkeypatch.setenv("FLOWTEL_SAMPLING", "slow_root_s=1.5,max_traces=10")
        rig = make_rig(sample_rate=0.25)
        assert rig.telemetry.settings.sampling == Sampling(
            head_rate=0.25, slow_root_s=1.5, max_traces=10
        )
