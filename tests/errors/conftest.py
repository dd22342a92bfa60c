"""Fixtures for flowtel.errors: real SDK providers with an in-memory exporter and reader."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

import flowtel


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
    """flowtel configured with an in-memory span exporter and metric reader."""

    telemetry: flowtel.Telemetry
    spans: InMemorySpanExporter
    metrics: InMemoryMetricReader

    @property
    def tracer_provider(self) -> TracerProvider:
        return self.telemetry.tracer_provider


@pytest.fixture
def make_pipeline() -> Iterator[Callable[..., Pipeline]]:
    """Configure flowtel (force=True) per call; every pipeline is shut down after the test."""
    made: list[Pipeline] = []

    def make(metric_readers: Sequence[MetricReader] = (), **options: Any) -> Pipeline:
        spans = InMemorySpanExporter()
        reader = InMemoryMetricReader()
        telemetry = flowtel.configure_telemetry(
            service_name="errors-tests",
            exporter="none",
            span_exporters=[spans],
            metric_readers=[reader, *metric_readers],
            logging=False,
            force=True,
            **options,
        )
        made.append(Pipeline(telemetry, spans, reader))
        return made[-1]

    yield make
    for pipeline in made:
        pipeline.telemetry.shutdown()


@pytest.fixture
def pipeline(make_pipeline: Callable[..., Pipeline]) -> Pipeline:
    """flowtel with default settings: no sampling, error tracking on."""
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
