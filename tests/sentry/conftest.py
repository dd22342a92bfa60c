"""Fixtures for the Sentry bridge: a real ingestion server and a tracer provider wired to it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import Sampler
from opentelemetry.trace import Tracer

from flowtel import semconv
from flowtel.sentry import SentryBridge
from tests.support.sentry_server import SentryServer


@pytest.fixture(scope="session")
def _sentry_server_session() -> Iterator[SentryServer]:
    server = SentryServer().start()
    yield server
    server.stop()


@pytest.fixture
def sentry_server(_sentry_server_session: SentryServer) -> Iterator[SentryServer]:
    """A real Sentry envelope endpoint on loopback, empty and fault-free for this test."""
    _sentry_server_session.reset()
    yield _sentry_server_session
    _sentry_server_session.reset()


@dataclass
class BridgeRig:
    """A tracer provider with an in-memory exporter, metrics and a bridge to a Sentry DSN."""

    provider: TracerProvider
    exporter: InMemorySpanExporter
    metrics: InMemoryMetricReader
    bridge: SentryBridge

    @property
    def tracer(self) -> Tracer:
        return self.provider.get_tracer("tests.sentry")

    def flush(self) -> None:
        """Build queued events and push them to the server (both happen on worker threads)."""
        assert self.bridge.force_flush(5000)

    def wait_for_counts(
        self, done: Callable[[dict[tuple[str, str | None], int]], bool], timeout_s: float = 5.0
    ) -> dict[tuple[str, str | None], int]:
        """Poll ``flowtel.sentry.events`` until ``done(counts)``; fail at the deadline."""
        deadline = time.monotonic() + timeout_s
        while True:
            counts = self.sentry_counts()
            if done(counts):
                return counts
            if time.monotonic() > deadline:
                raise AssertionError(f"Sentry event counts never matched: {counts}")
            threading.Event().wait(0.01)  # poll interval, bounded by the deadline

    def span(self, name: str) -> ReadableSpan:
        [span] = [s for s in self.exporter.get_finished_spans() if s.name == name]
        return span

    def sentry_counts(self) -> dict[tuple[str, str | None], int]:
        """``flowtel.sentry.events`` points as {(outcome, reason): value}."""
        counts: dict[tuple[str, str | None], int] = {}
        data = self.metrics.get_metrics_data()
        for rm in data.resource_metrics if data else ():
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    if metric.name != semconv.METRIC_SENTRY_EVENTS:
                        continue
                    for point in metric.data.data_points:
                        attrs = point.attributes or {}
                        key = (
                            str(attrs[semconv.SENTRY_OUTCOME]),
                            str(attrs[semconv.SENTRY_REASON])
                            if semconv.SENTRY_REASON in attrs
                            else None,
                        )
                        counts[key] = int(point.value)  # type: ignore[union-attr]
        return counts


MakeRig = Callable[..., BridgeRig]


@pytest.fixture
def make_rig(sentry_server: SentryServer) -> Iterator[MakeRig]:
    """Build a :class:`BridgeRig`; sentry-sdk is global, so each rig re-inits it."""
    rigs: list[BridgeRig] = []

    def make(
        *,
        dsn: str | None = None,
        sampler: Sampler | None = None,
        send_default_pii: bool = False,
        sample_rate: float = 1.0,
        transport_queue_size: int = 100,
        shutdown_timeout_s: float = 2.0,
        resource: dict[str, Any] | None = None,
        trace_url_template: str | None = None,
    ) -> BridgeRig:
        reader = InMemoryMetricReader()
        meter_provider = MeterProvider(metric_readers=[reader])
        res = Resource.create(
            resource
            or {
                semconv.SERVICE_NAME: "checkout",
                semconv.SERVICE_VERSION: "1.4.2",
                semconv.DEPLOYMENT_ENVIRONMENT: "staging",
            }
        )
        provider = (
            TracerProvider(resource=res, sampler=sampler)
            if sampler
            else TracerProvider(resource=res)
        )
        exporter = InMemorySpanExporter()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        bridge = SentryBridge(
            meter_provider=meter_provider,
            send_default_pii=send_default_pii,
            shutdown_timeout_s=shutdown_timeout_s,
            trace_url_template=trace_url_template,
        )
        bridge.init_sentry(
            dsn or sentry_server.dsn,
            environment="staging",
            release="1.4.2",
            sample_rate=sample_rate,
            send_default_pii=send_default_pii,
            transport_queue_size=transport_queue_size,
        )
        provider.add_span_processor(bridge)
        rig = BridgeRig(provider, exporter, reader, bridge)
        rigs.append(rig)
        return rig

    yield make
    for rig in rigs:
        rig.provider.shutdown()
