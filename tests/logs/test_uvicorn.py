"""A real uvicorn server: with log_config=None its loggers reach flowtel (docs/logging.md)."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from typing import Any

import httpx
import pytest
import uvicorn

import flowtel
from flowtel import semconv
from flowtel.testing import TelemetryCapture
from tests.support.polling import wait_until

Scope = MutableMapping[str, Any]


async def app(
    scope: Scope,
    receive: Callable[[], Awaitable[Scope]],
    send: Callable[[Scope], Awaitable[None]],
) -> None:
    if scope["type"] != "http":
        return
    with flowtel.span("handle"):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def fresh_uvicorn_loggers() -> Iterator[None]:
    """uvicorn's loggers as in a fresh process (earlier tests may have run uvicorn's dictConfig)."""
    names = ("uvicorn", "uvicorn.error", "uvicorn.access")
    saved = [
        (lg, lg.handlers, lg.propagate, lg.disabled, lg.level)
        for lg in map(logging.getLogger, names)
    ]
    for lg, *_ in saved:
        lg.handlers, lg.propagate, lg.disabled = [], True, False
        lg.setLevel(logging.NOTSET)
    yield
    for lg, handlers, propagate, disabled, level in saved:
        lg.handlers, lg.propagate, lg.disabled = handlers, propagate, disabled
        lg.setLevel(level)


def _serve_one_request() -> None:
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started or not thread.is_alive(), what="uvicorn to listen")
    try:
        assert httpx.get(f"http://127.0.0.1:{port}/orders").status_code == 200
    finally:
        server.should_exit = True
        thread.join(10)


class TestUvicorn:
    @pytest.mark.usefixtures("fresh_uvicorn_loggers")
    @pytest.mark.flowtel(library_log_level="INFO")
    def test_access_and_server_logs_exported(self, telemetry: TelemetryCapture) -> None:
        """uvicorn.error and uvicorn.access records are exported when uvicorn leaves logging
        alone and library_log_level lets a library's INFO records through."""
        _serve_one_request()
        names = {r.log_record.attributes[semconv.LOG_LOGGER] for r in telemetry.logs}  # type: ignore[index]
        assert {"uvicorn.error", "uvicorn.access"} <= names
        access = [r for r in telemetry.logs if "GET /orders" in str(r.log_record.body)]
        assert len(access) == 1

    @pytest.mark.usefixtures("fresh_uvicorn_loggers")
    def test_by_default_only_warnings_of_a_library_are_exported(
        self, telemetry: TelemetryCapture
    ) -> None:
        """uvicorn is a library: its INFO access lines stay out unless asked for."""
        _serve_one_request()
        assert not [r for r in telemetry.logs if "GET /orders" in str(r.log_record.body)]
