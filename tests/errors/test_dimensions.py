"""Who was affected: error statistics and metrics split by ``error_dimensions``.

Everything goes through ``configure_telemetry(error_dimensions=...)`` and what a user reads:
``get_error_stats()``, the metrics an in-memory reader collects, the OTLP metrics a real
receiver decodes, and a real uvicorn service whose ``http.route`` the FastAPI instrumentation
sets.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fastapi import FastAPI, HTTPException
from opentelemetry.trace import SpanKind, Status, StatusCode

import flowtel
from flowtel import errors, semconv
from flowtel.exceptions import ConfigurationError
from flowtel.fastapi import instrument_fastapi
from tests.errors.conftest import Pipeline
from tests.lifecycle._server import running_server
from tests.support.otlp_receiver import OtlpGrpcReceiver, OtlpHttpReceiver

TENANTS = ("acme", "globex", "initech")


def _points(pipeline: Pipeline, name: str) -> list[tuple[dict[str, Any], Any]]:
    """(attributes, value or count) of every point of metric ``name`` in one collection."""
    data = pipeline.metrics.get_metrics_data()
    out = []
    for rm in data.resource_metrics if data is not None else ():
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                if metric.name == name:
                    for p in metric.data.data_points:
                        value = getattr(p, "value", None)
                        out.append((dict(p.attributes or {}), p.count if value is None else value))
    return out


def _requests(pipeline: Pipeline | flowtel.Telemetry, n: int = 30) -> None:
    """``n`` SERVER requests round robin over TENANTS; every acme request fails two levels deep.

    The child spans carry no tenant (only the request does); the grandchild raises.
    """
    tracer = pipeline.tracer_provider.get_tracer("shop")
    for i in range(n):
        tenant = TENANTS[i % len(TENANTS)]
        attributes = {"tenant": tenant, "http.route": "/orders/{id}"}
        with (
            contextlib.suppress(RuntimeError),
            tracer.start_as_current_span(
                "GET /orders/{id}", kind=SpanKind.SERVER, attributes=attributes
            ),
            tracer.start_as_current_span("plan"),
            tracer.start_as_current_span("lookup"),
        ):
            if tenant == "acme":
                raise RuntimeError("backend down")


class TestConfiguration:
    @pytest.mark.parametrize(
        "value",
        [
            ("a", "b", "c", "d", "e", "f"),  # more than five
            ("tenant", "tenant"),  # repeated
            ("ten ant",),  # not an attribute key
            ("",),
            ("error.type",),  # the metrics set it themselves
            ("flowtel.component",),
            (5,),
            5,
        ],
    )
    def test_bad_dimensions_fail_at_configure(
        self, make_pipeline: Callable[..., Pipeline], value: object
    ) -> None:
        """A bad error_dimensions fails configure_telemetry(), naming the option."""
        with pytest.raises(ConfigurationError) as err:
            make_pipeline(error_dimensions=value)
        assert err.value.option == "error_dimensions"
        assert "attribute keys" in err.value.accepted

    def test_environment_comma_list(
        self, make_pipeline: Callable[..., Pipeline], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """FLOWTEL_ERROR_DIMENSIONS is a comma list; a bad one names the variable."""
        monkeypatch.setenv("FLOWTEL_ERROR_DIMENSIONS", " tenant , http.route ")
        pipeline = make_pipeline()
        assert pipeline.telemetry.settings.error_dimensions == ("tenant", "http.route")
        _requests(pipeline, 3)
        assert set(errors.get_error_stats().entries.by_dimension) == {"tenant", "http.route"}
        monkeypatch.setenv("FLOWTEL_ERROR_DIMENSIONS", "tenant,bad key")
        with pytest.raises(ConfigurationError) as err:
            make_pipeline()
        assert err.value.option == "FLOWTEL_ERROR_DIMENSIONS"


class TestStatistics:
    def test_entries_split_by_tenant(self, make_pipeline: Callable[..., Pipeline]) -> None:
        """Each request counts once under its tenant, whatever the depth of its failure."""
        pipeline = make_pipeline(error_dimensions=("tenant", "http.route"))
        _requests(pipeline)
        stats = errors.get_error_stats()
        by_tenant = stats.entries.by_dimension["tenant"]
        assert {t: (s.total, s.errors) for t, s in by_tenant.items()} == {
            "acme": (10, 10),
            "globex": (10, 0),
            "initech": (10, 0),
        }
        assert next(iter(by_tenant)) == "acme"  # most failing first
        assert by_tenant["acme"].error_rate == 1.0
        route = stats.entries.by_dimension["http.route"]["/orders/{id}"]
        assert (route.total, route.errors) == (30, 10)

    def test_operations_split_by_their_own_attributes(
        self, make_pipeline: Callable[..., Pipeline]
    ) -> None:
        """An operation is split by the attributes its own span carries; None counts the rest."""
        pipeline = make_pipeline(error_dimensions=("tenant",))
        _requests(pipeline)
        by_tenant = errors.get_error_stats().by_dimension["tenant"]
        assert {t: (s.total, s.errors) for t, s in by_tenant.items()} == {
            None: (60, 20),  # plan and lookup: no tenant attribute, 10 + 10 failed
            "acme": (10, 10),
            "globex": (10, 0),
            "initech": (10, 0),
        }
        assert errors.get_error_stats().operations.by_dimension == (
            errors.get_error_stats().by_dimension
        )

    def test_without_dimensions_nothing_is_split(self, pipeline: Pipeline) -> None:
        """The default: no by_dimension, no extra metric attributes."""
        _requests(pipeline)
        stats = errors.get_error_stats()
        assert not stats.by_dimension and not stats.entries.by_dimension
        for attributes, _ in _points(pipeline, semconv.METRIC_ENTRY_CALLS):
            assert "tenant" not in attributes

    def test_filtered_query_has_no_split(self, make_pipeline: Callable[..., Pipeline]) -> None:
        """by_dimension is service-wide: a query for one component leaves it empty."""
        pipeline = make_pipeline(error_dimensions=("tenant",))
        _requests(pipeline)
        assert not errors.get_error_stats(component="shop").entries.by_dimension

    def test_values_are_capped_and_counted(
        self, make_pipeline: Callable[..., Pipeline], caplog: pytest.LogCaptureFixture
    ) -> None:
        """Beyond 100 values, new ones count under _other (nothing lost); one warning."""
        pipeline = make_pipeline(error_dimensions=("user.id",))
        tracer = pipeline.tracer_provider.get_tracer("shop")
        with caplog.at_level(logging.WARNING, logger="flowtel.errors"):
            for user in range(130):
                tracer.start_span("GET /me", attributes={"user.id": user}).end()
        by_user = errors.get_error_stats().entries.by_dimension["user.id"]
        assert len(by_user) == 101
        assert by_user[semconv.OVERFLOW_KEY].total == 30
        assert sum(s.total for s in by_user.values()) == 130
        assert by_user["7"].total == 1  # non-string values are counted by their text
        warnings = [r for r in caplog.records if "user.id" in r.getMessage()]
        assert len(warnings) == 1
        labels = {a.get("user.id") for a, _ in _points(pipeline, semconv.METRIC_ENTRY_CALLS)}
        assert len(labels) == 101 and semconv.OVERFLOW_KEY in labels

    def test_metric_series_are_capped_by_error_max_keys(
        self, make_pipeline: Callable[..., Pipeline]
    ) -> None:
        """Series per (operation, values) stop at error_max_keys; the rest count as _other."""
        pipeline = make_pipeline(error_dimensions=("tenant",), error_max_keys=4)
        tracer = pipeline.tracer_provider.get_tracer("shop")
        for i in range(60):
            tracer.start_span("GET /x", attributes={"tenant": f"t{i % 10}"}).end()
        calls: dict[Any, int] = {}
        for attributes, value in _points(pipeline, semconv.METRIC_ENTRY_CALLS):
            calls[attributes["tenant"]] = calls.get(attributes["tenant"], 0) + value
        assert calls == {"t0": 6, "t1": 6, "t2": 6, "t3": 6, semconv.OVERFLOW_KEY: 36}
        by_tenant = errors.get_error_stats().entries.by_dimension["tenant"]
        assert len(by_tenant) == 10  # the statistics keep their own cap (100 values)

    def test_values_are_scrubbed(self, make_pipeline: Callable[..., Pipeline]) -> None:
        """A secret in a dimension value reaches neither the statistics nor the metrics."""
        secret = "sk_live_4eC39HqLyjWDarjtT1zdp7dc"
        pipeline = make_pipeline(error_dimensions=("tenant",))
        tracer = pipeline.tracer_provider.get_tracer("shop")
        span = tracer.start_span("GET /x", attributes={"tenant": f"acme {secret}"})
        span.set_status(Status(StatusCode.ERROR))
        span.end()
        (value,) = errors.get_error_stats().entries.by_dimension["tenant"]
        assert value is not None and value.startswith("acme") and secret not in value
        for name in (semconv.METRIC_ENTRY_CALLS, semconv.METRIC_ERRORS):
            (attributes, _), *_ = _points(pipeline, name)
            assert attributes["tenant"] == value


class TestMetrics:
    def test_calls_errors_and_durations_carry_the_dimensions(
        self, make_pipeline: Callable[..., Pipeline]
    ) -> None:
        """Entry and operation calls, errors and durations are split by the values, exactly."""
        pipeline = make_pipeline(error_dimensions=("tenant",))
        _requests(pipeline)
        entries: dict[tuple[Any, Any], int] = {}
        for attributes, value in _points(pipeline, semconv.METRIC_ENTRY_CALLS):
            key = (attributes.get("tenant"), attributes[semconv.OTEL_STATUS_CODE])
            entries[key] = entries.get(key, 0) + value
        assert entries == {("acme", "ERROR"): 10, ("globex", "UNSET"): 10, ("initech", "UNSET"): 10}
        failed = {
            (a[semconv.OPERATION], a.get("tenant")): v
            for a, v in _points(pipeline, semconv.METRIC_ERRORS)
        }
        assert failed == {
            ("GET /orders/{id}", "acme"): 10,
            ("plan", None): 10,
            ("lookup", None): 10,
        }
        durations = {
            a.get("tenant"): n
            for a, n in _points(pipeline, semconv.METRIC_OPERATION_DURATION)
            if a[semconv.OPERATION] == "GET /orders/{id}"
        }
        assert durations == {"acme": 10, "globex": 10, "initech": 10}


@pytest.fixture(params=["grpc", "http/protobuf"])
def receiver(
    request: pytest.FixtureRequest, otlp_grpc: OtlpGrpcReceiver, otlp_http: OtlpHttpReceiver
) -> OtlpGrpcReceiver | OtlpHttpReceiver:
    return otlp_grpc if request.param == "grpc" else otlp_http


def test_over_otlp_at_ten_percent_sampling(receiver: OtlpGrpcReceiver | OtlpHttpReceiver) -> None:
    """Decoded from OTLP: entry calls per tenant are exact while ~10% of spans are exported."""
    telemetry = flowtel.configure_telemetry(
        service_name="errors-dimensions",
        exporter="otlp",
        otlp_endpoint=receiver.endpoint,
        otlp_protocol="grpc" if isinstance(receiver, OtlpGrpcReceiver) else "http/protobuf",
        sample_rate=0.1,
        error_dimensions=("tenant",),
        metric_export_interval_s=60,
        logging=False,
        force=True,
    )
    try:
        _requests(telemetry, 300)
        assert telemetry.force_flush(timeout_s=10)
    finally:
        telemetry.shutdown()
    receiver.wait_for_metric(semconv.METRIC_ENTRY_CALLS)
    entries = {
        (p.attributes.get("tenant"), p.attributes[semconv.OTEL_STATUS_CODE]): p.value
        for p in receiver.latest_points(semconv.METRIC_ENTRY_CALLS)
        if p.resource.get("service.name") == "errors-dimensions"
    }
    assert entries == {
        ("acme", "ERROR"): 100,
        ("globex", "UNSET"): 100,
        ("initech", "UNSET"): 100,
    }
    assert len(receiver.spans()) < 300 * 3 * 0.3  # sampled: the counts did not come from spans


def _shop() -> FastAPI:
    app = FastAPI()

    @app.get("/orders/{order_id}")
    async def order(order_id: int) -> dict[str, int]:
        if order_id % 4 == 0:
            raise HTTPException(status_code=503, detail="orders backend down")
        return {"order": order_id}

    @app.get("/users/{user_id}")
    async def user(user_id: int) -> dict[str, int]:
        if user_id % 5 == 0:
            raise HTTPException(status_code=404, detail="no such user")  # the client's error
        return {"user": user_id}

    return app


@pytest.fixture
def grpc_receiver() -> Iterator[OtlpGrpcReceiver]:
    with OtlpGrpcReceiver().start() as receiver:
        yield receiver


def test_fastapi_entries_split_by_route(grpc_receiver: OtlpGrpcReceiver) -> None:
    """A real uvicorn service: the FastAPI instrumentation's http.route splits the requests."""
    telemetry = flowtel.configure_telemetry(
        service_name="errors-routes",
        exporter="otlp",
        otlp_endpoint=grpc_receiver.endpoint,
        otlp_protocol="grpc",
        error_dimensions=("http.route",),
        logging=False,
        force=True,
    )
    try:
        app = instrument_fastapi(_shop())
        with running_server(app) as client:
            statuses = [client.get(f"/orders/{i}").status_code for i in range(40)]
            statuses += [client.get(f"/users/{i}").status_code for i in range(20)]
        assert statuses.count(503) == 10 and statuses.count(404) == 4
        by_route = flowtel.get_error_stats().entries.by_dimension["http.route"]
        assert {r: (s.total, s.errors) for r, s in by_route.items()} == {
            "/orders/{order_id}": (40, 10),
            "/users/{user_id}": (20, 0),  # a 404 is not a server error
        }
        assert telemetry.force_flush(timeout_s=10)
    finally:
        telemetry.shutdown()
    grpc_receiver.wait_for_metric(semconv.METRIC_ENTRY_CALLS)
    calls: dict[tuple[Any, Any], int] = {}
    for p in grpc_receiver.latest_points(semconv.METRIC_ENTRY_CALLS):
        key = (p.attributes.get("http.route"), p.attributes[semconv.OTEL_STATUS_CODE])
        calls[key] = calls.get(key, 0) + int(p.value)
    assert calls == {
        ("/orders/{order_id}", "ERROR"): 10,
        ("/orders/{order_id}", "UNSET"): 30,
        ("/users/{user_id}", "UNSET"): 20,
    }


def test_threads_queries_and_collections_lose_no_counts(
    make_pipeline: Callable[..., Pipeline],
) -> None:
    """Spans ending on four threads while another queries and collects: every one is counted
    once under its tenant, in the statistics and in the metrics."""
    pipeline = make_pipeline(error_dimensions=("tenant",))
    tracer = pipeline.tracer_provider.get_tracer("shop")
    start = threading.Barrier(5)
    done = threading.Event()

    def end_spans(n: int) -> None:
        start.wait(timeout=10)
        for i in range(2_000):
            span = tracer.start_span("job", attributes={"tenant": TENANTS[(n + i) % 3]})
            if i % 10 == 0:
                span.set_status(Status(StatusCode.ERROR))
            span.end()

    def read() -> None:
        start.wait(timeout=10)
        while not done.is_set():
            errors.get_error_stats()
            pipeline.metrics.get_metrics_data()

    reader = threading.Thread(target=read)
    reader.start()
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(end_spans, range(4)))
    done.set()
    reader.join(timeout=30)
    by_tenant = errors.get_error_stats().entries.by_dimension["tenant"]
    assert sum(s.total for s in by_tenant.values()) == 8_000
    assert sum(s.errors for s in by_tenant.values()) == 800
    calls: dict[Any, int] = {}
    for attributes, value in _points(pipeline, semconv.METRIC_ENTRY_CALLS):
        calls[attributes["tenant"]] = calls.get(attributes["tenant"], 0) + value
    assert calls == {t: s.total for t, s in by_tenant.items()}


def test_sampled_out_traced_calls_are_split_too(make_pipeline: Callable[..., Pipeline]) -> None:
    """At sample_rate=0.1 every @traced call counts under the tenant it set on its span,
    including the ~90% that are never recorded as SDK spans."""
    from opentelemetry import trace

    make_pipeline(sample_rate=0.1, error_dimensions=("tenant",))

    @flowtel.traced(component="billing", operation="charge")
    def charge(i: int) -> None:
        tenant = TENANTS[i % 3]
        trace.get_current_span().set_attribute("tenant", tenant)
        if tenant == "globex" and i % 2 == 0:
            raise RuntimeError("card declined")

    for i in range(300):
        with contextlib.suppress(RuntimeError):
            charge(i)
    by_tenant = errors.get_error_stats().entries.by_dimension["tenant"]
    assert {t: (s.total, s.errors) for t, s in by_tenant.items()} == {
        "globex": (100, 50),
        "acme": (100, 0),
        "initech": (100, 0),
    }
