"""configure_telemetry(instrument=[...]): real httpx, requests and SQLAlchemy calls are traced,
and their spans nest under @traced spans."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import httpx
import pytest
import requests
import sqlalchemy
from opentelemetry.sdk.trace import ReadableSpan

import flowtel
from flowtel.testing import TelemetryCapture


class _Ok(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"ok"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def capture() -> Iterator[TelemetryCapture]:
    cap = TelemetryCapture.configure(
        service_name="instrumented", instrument=["httpx", "requests", "sqlalchemy"]
    )
    yield cap
    cap.close()


def _child_of(child: ReadableSpan, parent: ReadableSpan) -> bool:
    return (
        child.parent is not None
        and parent.context is not None
        and child.parent.span_id == parent.context.span_id
    )


class TestNesting:
    def test_httpx_and_requests_spans_nest_under_traced(
        self, capture: TelemetryCapture, server_url: str
    ) -> None:
        """Both HTTP clients' CLIENT spans are children of the @traced span that called them."""

        @flowtel.traced(component="agent", operation="fetch")
        def fetch() -> None:
            with httpx.Client() as client:
                assert client.get(server_url + "/x").status_code == 200
            assert requests.get(server_url + "/y", timeout=5).status_code == 200

        fetch()
        capture.flush()
        (parent,) = [s for s in capture.spans if s.name.endswith("fetch")]
        gets = [s for s in capture.spans if s.name == "GET"]
        assert len(gets) == 2
        assert all(_child_of(s, parent) for s in gets)
        # old or new HTTP semantic conventions, whichever the installed version emits
        urls = sorted(
            str((s.attributes or {}).get("url.full") or (s.attributes or {}).get("http.url"))
            for s in gets
        )
        assert urls == [server_url + "/x", server_url + "/y"]

    def test_sqlalchemy_on_sqlite(self, capture: TelemetryCapture) -> None:
        """Statements on an engine created after configure are spans under the @traced span."""
        engine = sqlalchemy.create_engine("sqlite:///:memory:")

        @flowtel.traced(component="store", operation="query")
        def query() -> int:
            with engine.connect() as conn:
                return int(conn.execute(sqlalchemy.text("select 41 + 1")).scalar_one())

        assert query() == 42
        capture.flush()
        (parent,) = [s for s in capture.spans if s.name.endswith("query")]
        statements = [s for s in capture.spans if (s.attributes or {}).get("db.system") == "sqlite"]
        assert statements and all(_child_of(s, parent) for s in statements)
        engine.dispose()

    def test_shutdown_uninstruments(self, server_url: str) -> None:
        """After the owning configuration shuts down, the library is no longer patched."""
        cap = TelemetryCapture.configure(service_name="x", instrument="httpx")
        cap.close()
        cap2 = TelemetryCapture.configure(service_name="y")
        try:
            with httpx.Client() as client:
                client.get(server_url + "/z")
            cap2.flush()
            assert [s.name for s in cap2.spans] == []
        finally:
            cap2.close()


class TestValidation:
    def test_unknown_name(self) -> None:
        """An unknown name is a ConfigurationError listing the accepted names."""
        with pytest.raises(flowtel.ConfigurationError, match=r"instrument.*httpx, requests"):
            flowtel.configure_telemetry(instrument=["htpx"], force=True)

    def test_not_installed_gives_the_pip_command(self) -> None:
        """A known name whose package is missing names the pip command."""
        with pytest.raises(
            flowtel.ConfigurationError,
            match=r"pip install 'opentelemetry-instrumentation-redis'",
        ):
            flowtel.configure_telemetry(instrument="redis", force=True)

    def test_environment_variable(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """FLOWTEL_INSTRUMENT is read like the keyword (comma-separated)."""
        monkeypatch.setenv("FLOWTEL_INSTRUMENT", "httpx, nope")
        with pytest.raises(flowtel.ConfigurationError, match="FLOWTEL_INSTRUMENT"):
            flowtel.configure_telemetry(force=True)
