"""Fixtures for flowtel.errors: real SDK providers with an in-memory exporter and reader."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from opentelemetry.context import Context
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import (
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace import Link, SpanKind, Status, StatusCode
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

from flowtel import errors


class RecordOnlySampler(Sampler):
    """Turns the wrapped sampler's DROP into RECORD_ONLY, as the core does with count_unsampled."""

    def __init__(self, inner: Sampler) -> None:
        self._inner = inner

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        result = self._inner.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )
        if result.decision is Decision.DROP:
            return SamplingResult(Decision.RECORD_ONLY, attributes, result.trace_state)
        return result

    def get_description(self) -> str:
        return f"RecordOnly{{{self._inner.get_description()}}}"


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self, now: float = 10_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Pipeline:
    """Real tracer and meter providers with in-memory export, plus what install() needs."""

    settings: SimpleNamespace
    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    spans: InMemorySpanExporter
    metrics: InMemoryMetricReader
    processor: errors.ErrorRateProcessor | None = None
    callbacks: list[Callable[[], object]] = field(default_factory=list)

    def add_shutdown_callback(self, fn: Callable[[], object]) -> None:
        self.callbacks.append(fn)

    def shutdown(self) -> None:
        for fn in self.callbacks:
            fn()
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()


def _sampler(sample_rate: float | None, count_unsampled: bool) -> Sampler | None:
    if sample_rate is None:
        return None
    ratio = ParentBased(TraceIdRatioBased(sample_rate))
    return RecordOnlySampler(ratio) if count_unsampled else ratio


@pytest.fixture
def make_pipeline() -> Iterator[Callable[..., Pipeline]]:
    """Build and install pipelines; every one is shut down (and deactivated) after the test."""
    made: list[Pipeline] = []

    def make(
        *,
        sample_rate: float | None = None,
        count_unsampled: bool = True,
        error_window_minutes: float | None = 60,
        error_max_keys: int = 1000,
        metric_readers: Sequence[MetricReader] = (),
    ) -> Pipeline:
        spans = InMemorySpanExporter()
        reader = InMemoryMetricReader()
        tracer_provider = TracerProvider(sampler=_sampler(sample_rate, count_unsampled))
        tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
        meter_provider = MeterProvider(metric_readers=[reader, *metric_readers])
        settings = SimpleNamespace(
            error_window_minutes=error_window_minutes, error_max_keys=error_max_keys
        )
        pipeline = Pipeline(settings, tracer_provider, meter_provider, spans, reader)
        pipeline.processor = errors.install(pipeline)
        made.append(pipeline)
        return pipeline

    yield make
    for pipeline in made:
        pipeline.shutdown()


@pytest.fixture
def pipeline(make_pipeline: Callable[..., Pipeline]) -> Pipeline:
    """An installed pipeline with default settings and no sampling."""
    return make_pipeline()


def metric_points(reader: InMemoryMetricReader, name: str) -> dict[frozenset[Any], Any]:
    """Latest point value per attribute set: sum value, histogram count or gauge value."""
    data = reader.get_metrics_data()
    out: dict[frozenset[Any], Any] = {}
    if data is None:
        return out
    for resource_metrics in data.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                if metric.name != name:
                    continue
                for point in metric.data.data_points:
                    value = getattr(point, "value", None)
                    if value is None:
                        value = point.count
                    out[frozenset((point.attributes or {}).items())] = value
    return out


BILLING = ("billing", "charge")
SEARCH = ("search", "query")
DECLINED = "billing.CardDeclined"


def run_workload(tracer_provider: TracerProvider) -> None:
    """1,000 operations, 50 failures of two types across two components.

    billing/charge: 700 calls named by flowtel attributes, 30 failures typed by ``error.type``,
    successes with status OK. search/query: 300 calls named only by scope and span name,
    20 failures typed by their exception event (``TimeoutError``), successes with status UNSET.
    """
    billing = tracer_provider.get_tracer("app.billing")
    search = tracer_provider.get_tracer("search")
    for i in range(700):
        span = billing.start_span(
            "POST /charge",
            attributes={"flowtel.component": BILLING[0], "flowtel.operation": BILLING[1]},
        )
        if i % 70 == 3 or i % 70 == 40 or i % 70 == 66:  # 30 of 700
            span.set_attribute("error.type", DECLINED)
            span.set_status(Status(StatusCode.ERROR, "card declined"))
        else:
            span.set_status(Status(StatusCode.OK))
        span.end()
    for i in range(300):
        span = search.start_span("query")
        if i % 15 == 7:  # 20 of 300
            span.record_exception(TimeoutError("backend slow"))
            span.set_status(Status(StatusCode.ERROR))
        span.end()
