"""A FastAPI request served by real uvicorn: one Sentry event, linked to the request's trace."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.trace import SpanKind

from tests.sentry.conftest import BridgeRig, MakeRig
from tests.support.polling import wait_until
from tests.support.sentry_server import SentryServer


class OrderNotFoundError(LookupError):
    """Raised by the route handlers under test."""


class _Uvicorn:
    """uvicorn serving ``app`` on a free loopback port, in a thread."""

    def __init__(self, app: Any) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port = int(self._sock.getsockname()[1])
        # log_level="error": uvicorn logs the exception too, as in production
        config = uvicorn.Config(app, lifespan="off", log_level="error", access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    def __enter__(self) -> _Uvicorn:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise AssertionError("uvicorn did not start")
            threading.Event().wait(0.01)  # poll interval, bounded by the deadline
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
def app_rig(make_rig: MakeRig) -> Iterator[tuple[BridgeRig, _Uvicorn]]:
    rig = make_rig()
    tracer = rig.tracer
    app = FastAPI()

    @app.get("/orders/{order_id}")
    async def get_order(order_id: int) -> dict[str, int]:
        with tracer.start_as_current_span("orders.load"):
            raise OrderNotFoundError(f"order {order_id} not found")

    @app.get("/direct/{order_id}")
    async def direct(order_id: int) -> dict[str, int]:
        raise OrderNotFoundError(f"order {order_id} missing")

    FastAPIInstrumentor.instrument_app(app, tracer_provider=rig.provider)
    with _Uvicorn(app) as server:
        yield rig, server
    FastAPIInstrumentor.uninstrument_app(app)


def _server_span(rig: BridgeRig) -> Any:
    # The server span ends after the response bytes went out: wait for it, with a deadline.
    def server_spans() -> list[Any]:
        return [s for s in rig.exporter.get_finished_spans() if s.kind is SpanKind.SERVER]

    wait_until(lambda: server_spans(), what="the server span to end")
    [span] = server_spans()
    return span


class TestFastAPIRequest:
    def test_error_in_handler_span_is_one_event_on_that_span_in_the_request_trace(
        self, app_rig: tuple[BridgeRig, _Uvicorn], sentry_server: SentryServer
    ) -> None:
        """The handler's span gets the one event; its trace is the server span's trace."""
        rig, server = app_rig
        response = httpx.get(f"{server.url}/orders/17", timeout=10)
        assert response.status_code == 500
        rig.flush()

        [event] = sentry_server.wait_for_events(1)
        inner = rig.span("orders.load")
        ctx = event["contexts"]["trace"]
        assert ctx["span_id"] == trace.format_span_id(inner.context.span_id)
        assert ctx["trace_id"] == trace.format_trace_id(_server_span(rig).context.trace_id)
        assert event["exception"]["values"][-1]["value"] == "order 17 not found"
        assert len(sentry_server.events()) == 1

    def test_error_escaping_route_is_one_event_in_the_request_trace(
        self, app_rig: tuple[BridgeRig, _Uvicorn], sentry_server: SentryServer
    ) -> None:
        """A route raising outside any span of its own yields one event in the request trace."""
        rig, server = app_rig
        response = httpx.get(f"{server.url}/direct/18", timeout=10)
        assert response.status_code == 500
        rig.flush()

        [event] = sentry_server.wait_for_events(1)
        server_span = _server_span(rig)
        assert event["contexts"]["trace"]["trace_id"] == trace.format_trace_id(
            server_span.context.trace_id
        )
        assert event["contexts"]["trace"]["span_id"] == trace.format_span_id(
            server_span.context.span_id
        )
        assert event["exception"]["values"][-1]["type"] == "OrderNotFoundError"
        assert len(sentry_server.events()) == 1
        # uvicorn's own "Exception in ASGI application" log record was recognised as the same.
        # (uvicorn logs after the response went out, so wait for that count.)
        rig.wait_for_counts(lambda c: c.get(("dropped", "duplicate"), 0) >= 1)
        assert len(sentry_server.events()) == 1
