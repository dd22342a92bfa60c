"""A real Sentry ingestion endpoint for tests, on 127.0.0.1.

Why a real server: the bridge's promises (one event per exception, OTel trace ids, scrubbed
payloads, no blocking when Sentry is slow or rate-limiting) are only meaningful for what the
real sentry-sdk actually puts on the wire. The server accepts ``POST /api/<project>/envelope/``,
decompresses gzip/brotli bodies, parses the envelope into items and keeps them thread-safely.
Tests wait for items with a deadline (a condition variable, never a fixed sleep).

Faults: :attr:`SentryServer.status` (e.g. 429) with :attr:`SentryServer.retry_after_s`, and
:attr:`SentryServer.delay_s` (a slow ingestion endpoint; released early by :meth:`stop`).
:func:`refused_port` gives a loopback port nobody listens on (Sentry "down").

Typical use::

    server = SentryServer().start()
    sentry_sdk.init(dsn=server.dsn)
    ...
    sentry_sdk.flush()
    [event] = server.wait_for_events(1)
"""

from __future__ import annotations

import gzip
import json
import socket
import threading
import time
import zlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import brotli

__all__ = ["EnvelopeItem", "SentryServer", "parse_envelope", "refused_port"]

DEFAULT_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class EnvelopeItem:
    """One item of a Sentry envelope: its header (``type``...) and its decoded payload."""

    envelope_headers: dict[str, Any]
    headers: dict[str, Any]
    payload: bytes

    @property
    def type(self) -> str:
        """The item type: ``event``, ``client_report``, ``session``..."""
        return str(self.headers.get("type", ""))

    def json(self) -> Any:
        """The payload decoded as JSON."""
        return json.loads(self.payload)


def parse_envelope(body: bytes) -> list[EnvelopeItem]:
    """Parse a (decompressed) envelope: a header line, then header/payload pairs per item.

    A payload is ``length`` bytes when its item header has ``length``, else up to the next
    newline (the envelope format's two framing rules).
    """
    newline = body.find(b"\n")
    head = body if newline < 0 else body[:newline]
    envelope_headers = json.loads(head) if head.strip() else {}
    pos = len(body) if newline < 0 else newline + 1
    items: list[EnvelopeItem] = []
    while pos < len(body):
        end = body.find(b"\n", pos)
        line = body[pos:] if end < 0 else body[pos:end]
        pos = len(body) if end < 0 else end + 1
        if not line.strip():
            continue
        headers = json.loads(line)
        length = headers.get("length")
        if isinstance(length, int):
            payload = body[pos : pos + length]
            pos += length
            if pos < len(body) and body[pos : pos + 1] == b"\n":
                pos += 1
        else:
            end = body.find(b"\n", pos)
            payload = body[pos:] if end < 0 else body[pos:end]
            pos = len(body) if end < 0 else end + 1
        items.append(EnvelopeItem(envelope_headers, headers, payload))
    return items


def _decompress(body: bytes, encoding: str) -> bytes:
    encoding = encoding.strip().lower()
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding == "br":
        return bytes(brotli.decompress(body))
    if encoding == "deflate":
        return zlib.decompress(body)
    return body


@dataclass
class _Request:
    path: str
    headers: dict[str, str]
    items: list[EnvelopeItem] = field(default_factory=list)


class SentryServer:
    """A Sentry envelope endpoint on a free loopback port.

    Attributes:
        status: HTTP status answered to every envelope (200 by default; 429 to rate-limit).
        retry_after_s: sent as ``Retry-After`` (and ``X-Sentry-Rate-Limits``) with a 429.
        delay_s: how long each request is held before answering (a slow Sentry).
    """

    def __init__(self) -> None:
        self.status = 200
        self.retry_after_s: float | None = None
        self.delay_s = 0.0
        self._cond = threading.Condition()
        self._requests: list[_Request] = []
        self._release = threading.Event()  # set to let held (delayed) requests answer
        # Bumped by reset(). It is also the DSN's project id, so envelopes that an earlier
        # test's sentry-sdk worker sends late (to the old project) are discarded.
        self._generation = 1
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> SentryServer:
        """Bind 127.0.0.1 on a free port and serve in a daemon thread."""
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet test output
                return

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length)
                body = _decompress(raw, self.headers.get("Content-Encoding", ""))
                if not self.path.startswith("/api/") or not self.path.endswith("/envelope/"):
                    self._answer(404)
                    return
                generation = server._generation
                project = self.path.split("/")[2] if self.path.count("/") >= 3 else ""
                if server.delay_s:
                    server._release.wait(server.delay_s)
                request = _Request(self.path, dict(self.headers.items()), parse_envelope(body))
                with server._cond:
                    if generation == server._generation and project == str(generation):
                        server._requests.append(request)
                        server._cond.notify_all()
                self._answer(server.status)

            def _answer(self, status: int) -> None:
                self.send_response(status)
                if status == 429 and server.retry_after_s is not None:
                    self.send_header("Retry-After", str(int(server.retry_after_s)))
                    self.send_header(
                        "X-Sentry-Rate-Limits", f"{int(server.retry_after_s)}::organization"
                    )
                payload = b"{}"
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="sentry-test-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; releases requests held by :attr:`delay_s`."""
        self._release.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def reset(self) -> None:
        """Forget received envelopes and clear faults (releasing held requests)."""
        with self._cond:
            self._generation += 1
            self._requests.clear()
        self._release.set()
        self._release = threading.Event()
        self.status = 200
        self.retry_after_s = None
        self.delay_s = 0.0

    # -- addresses ---------------------------------------------------------------------------
    @property
    def port(self) -> int:
        """The bound port."""
        if self._httpd is None:
            raise RuntimeError("server not started")
        return int(self._httpd.server_address[1])

    @property
    def dsn(self) -> str:
        """A DSN pointing at this server, for the current project (changes on :meth:`reset`)."""
        return f"http://public@127.0.0.1:{self.port}/{self._generation}"

    # -- received data -----------------------------------------------------------------------
    @property
    def request_count(self) -> int:
        """Envelopes received so far."""
        with self._cond:
            return len(self._requests)

    def items(self, item_type: str | None = None) -> list[EnvelopeItem]:
        """Every item received so far, optionally only those of ``item_type``."""
        with self._cond:
            found = [i for r in self._requests for i in r.items]
        return [i for i in found if item_type is None or i.type == item_type]

    def events(self) -> list[dict[str, Any]]:
        """Every error event received so far, decoded."""
        return [i.json() for i in self.items("event")]

    def wait_for_events(
        self, count: int, timeout_s: float = DEFAULT_TIMEOUT_S
    ) -> list[dict[str, Any]]:
        """Block until ``count`` events arrived; raise ``AssertionError`` at the deadline."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                events = [i.json() for r in self._requests for i in r.items if i.type == "event"]
                if len(events) >= count:
                    return events
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"expected {count} Sentry events within {timeout_s}s, got {len(events)}"
                    )
                self._cond.wait(remaining)

    def wait_for_requests(self, count: int, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        """Block until at least ``count`` envelopes arrived (any items)."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while len(self._requests) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"expected {count} envelopes within {timeout_s}s, got {len(self._requests)}"
                    )
                self._cond.wait(remaining)

    def request_headers(self) -> list[dict[str, str]]:
        """HTTP headers of every request, in arrival order (to check compression)."""
        with self._cond:
            return [r.headers for r in self._requests]


def refused_port() -> int:
    """A loopback port with no listener: connecting to it is refused at once."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
