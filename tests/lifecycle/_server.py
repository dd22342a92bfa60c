"""A real uvicorn server on a free loopback port, in a thread, for probe tests."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import uvicorn

from tests.support.polling import wait_until


@contextmanager
def running_server(app: Any) -> Iterator[httpx.Client]:
    """Serve ``app`` on 127.0.0.1:<free port>; yield a client; stop gracefully on exit."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    exit_codes: list[object] = []

    def run() -> None:
        try:
            server.run()
        except SystemExit as exc:  # uvicorn exits with STARTUP_FAILURE when the lifespan fails
            exit_codes.append(exc.code)

    thread = threading.Thread(target=run, name="uvicorn-test", daemon=True)
    thread.start()
    wait_until(lambda: server.started or not thread.is_alive(), what="uvicorn to listen")
    if not server.started:
        thread.join(timeout=5)
        raise RuntimeError(f"uvicorn did not start (exit code {exit_codes})")
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5.0) as client:
            yield client
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        if thread.is_alive():
            raise RuntimeError("uvicorn did not stop within 15s")


def poll_status(client: httpx.Client, path: str, status: int, *, timeout_s: float = 10.0) -> None:
    """Poll ``path`` until it answers ``status``."""
    wait_until(lambda: client.get(path).status_code == status, timeout_s=timeout_s,
               what=f"{path} -> {status}")  # fmt: skip
