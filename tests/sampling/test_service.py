"""A real uvicorn service at sample_rate=0.1 with 5 % failing requests, tail sampling on.

What must hold, seen from the OTLP receiver and the Sentry endpoint: every failing request has
its complete local trace, 10 % ± 3 % of the others do, every Sentry event links to an exported
trace, entry-level error counts equal the failing requests exactly, and the duration histogram
carries exemplars that point at exported spans.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterator

import pytest
from fastapi import FastAPI, HTTPException
from opentelemetry.sdk.trace.id_generator import IdGenerator

import flowtel
from flowtel import semconv
from flowtel.fastapi import instrument_fastapi
from tests.lifecycle._server import running_server
from tests.support.otlp_receiver import OtlpGrpcReceiver
from tests.support.polling import wait_until
from tests.support.sentry_server import SentryServer

REQUESTS = 400
FAILING = range(0, REQUESTS, 20)  # 5 %: 20 requests answer 500
NOT_FOUND = range(10, REQUESTS, 40)  # 10 answer 404: the client's error, not the server's
SPANS_PER_REQUEST = 4  # the server span and three nested @traced functions


class EvenIds(IdGenerator):
    """Trace ids whose sampled bits are spread evenly (a Weyl sequence), so the head rate's
    share of any run of requests is within a request or two of the rate: the test cannot flake
    on the luck of random ids. Everything else about sampling is the real code path."""

    def __init__(self) -> None:
        self._n = itertools.count(1)
        self._spans = itertools.count(1)

    def generate_trace_id(self) -> int:
        n = next(self._n)
        return (n << 64) | ((n * 0x9E3779B97F4A7C15) & ((1 << 64) - 1))

    def generate_span_id(self) -> int:
        return next(self._spans)


@pytest.fixture
def receiver() -> Iterator[OtlpGrpcReceiver]:
    with OtlpGrpcReceiver().start() as receiver:
        yield receiver


@pytest.fixture
def sentry() -> Iterator[SentryServer]:
    server = SentryServer().start()
    yield server
    server.stop()


def _app() -> FastAPI:
    @flowtel.traced(component="agent", operation="lookup")
    async def lookup(i: int) -> int | None:
        if i in FAILING:
            raise RuntimeError(f"backend failed for request {i}")
        return None if i in NOT_FOUND else i

    @flowtel.traced(component="agent", operation="plan")
    async def plan(i: int) -> int | None:
        return await lookup(i)

    @flowtel.traced(component="agent", operation="answer")
    async def answer(i: int) -> int | None:
        return await plan(i)

    app = FastAPI()

    @app.get("/work/{i}")
    async def work(i: int) -> dict[str, int]:
        try:
            value = await answer(i)
        except RuntimeError:
            raise HTTPException(status_code=500, detail="backend failed") from None
        if value is None:
            raise HTTPException(status_code=404, detail="not found")
        return {"value": value}

    return app


def test_failing_requests_keep_whole_traces_and_sentry_links_resolve(
    receiver: OtlpGrpcReceiver, sentry: SentryServer
) -> None:
    telemetry = flowtel.configure_telemetry(
        service_name="tail-service",
        exporter="otlp",
        otlp_endpoint=receiver.endpoint,
        otlp_protocol="grpc",
        sample_rate=0.1,
        sampling={"errors": True},
        sentry_dsn=sentry.dsn,
        batch_schedule_delay_s=0.05,
        logging=False,
        force=True,
    )
    try:
        telemetry.tracer_provider.id_generator = EvenIds()  # before any tracer is created
        app = instrument_fastapi(_app())
        statuses: dict[int, int] = {}
        with running_server(app) as client:
            for i in range(REQUESTS):
                statuses[i] = client.get(f"/work/{i}").status_code
        assert {i for i, s in statuses.items() if s == 500} == set(FAILING)
        assert {i for i, s in statuses.items() if s == 404} == set(NOT_FOUND)

        stats = flowtel.get_error_stats()
        assert (stats.entries.total, stats.entries.errors) == (REQUESTS, len(FAILING))
        assert stats.entries.by_operation[("http", "GET /work/{i}")].errors == len(FAILING)
        # Operation level: each failure fails three functions and the server span.
        assert stats.errors == 4 * len(FAILING)

        assert telemetry.tracer_provider.force_flush(10_000)
        assert telemetry.meter_provider.force_flush(10_000)
        events = sentry.wait_for_events(len(FAILING), timeout_s=20)
        traces: dict[str, list[str]] = defaultdict(list)
        request_of: dict[str, int] = {}

        def received() -> int:
            traces.clear()
            for s in receiver.spans():
                trace_id = s.span.trace_id.hex()
                traces[trace_id].append(s.name)
                if s.span.kind == 2:  # SERVER
                    path = s.attributes.get("url.path") or s.attributes.get("http.target")
                    request_of[trace_id] = int(str(path).rsplit("/", 1)[-1])
            return len(traces)

        wait_until(lambda: received() >= len(FAILING), what="failing traces at the receiver")
        kept = {request_of[t]: names for t, names in traces.items() if t in request_of}
        assert all(len(names) == SPANS_PER_REQUEST for names in kept.values()), kept
        assert set(FAILING) <= set(kept)  # 100 % of failing requests, complete
        others = REQUESTS - len(FAILING)
        kept_others = len(set(kept) - set(FAILING))
        assert abs(kept_others / others - 0.1) <= 0.03, kept_others

        assert len(events) == len(FAILING)
        for event in events:
            assert event["tags"]["trace_id"] in traces
            assert event["contexts"]["trace"]["trace_id"] == event["tags"]["trace_id"]

        entry_points = receiver.latest_points(semconv.METRIC_ENTRY_CALLS)
        failed = sum(p.value for p in entry_points if p.attributes["otel.status_code"] == "ERROR")
        assert failed == len(FAILING)

        durations = receiver.latest_points(semconv.METRIC_OPERATION_DURATION)
        exemplars = [e for p in durations for e in p.point.exemplars]
        assert exemplars, "the duration histogram carries exemplars"
        exported_spans = {(s.span.trace_id, s.span.span_id) for s in receiver.spans()}
        for exemplar in exemplars:
            assert (exemplar.trace_id, exemplar.span_id) in exported_spans
    finally:
        telemetry.shutdown()
