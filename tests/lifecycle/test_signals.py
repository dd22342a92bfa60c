"""Real signals to real subprocesses: plain ``uvicorn module:app`` and a managed worker."""

from __future__ import annotations

import re
import signal
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from flowtel import semconv

from ._process import spawn
from ._server import poll_status, wait_until


def _attrs(span: Any) -> dict[str, Any]:
    return dict(span.attributes)


class TestUvicornSigterm:
    def test_sigterm_drains_then_stops_gracefully_and_exits_zero(
        self, otlp_http: Any, tmp_path: Path
    ) -> None:
        """SIGTERM: /ready 503, /alive 200, serving continues; 2nd SIGTERM ends the drain;
        the in-flight request completes; hooks run; exit 0; shutdown spans reach OTLP."""
        app = "tests.lifecycle.apps.signal_app:app"
        args = ["-m", "uvicorn", app, "--host", "127.0.0.1", "--port", "0"]
        env = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_http.endpoint,
            "FLOWTEL_TEST_GATE_DIR": str(tmp_path),
            "FLOWTEL_TEST_DRAIN_S": "30",
        }
        with spawn(args, **env) as server:
            port = int(server.wait_for_line(r"Uvicorn running on http://127\.0\.0\.1:(\d+)")[1])
            base = f"http://127.0.0.1:{port}"
            with httpx.Client(base_url=base, timeout=10) as client:
                poll_status(client, "/startup", 200)
                poll_status(client, "/ready", 200)

                slow: list[httpx.Response] = []
                in_flight = threading.Thread(
                    target=lambda: slow.append(httpx.get(f"{base}/slow", timeout=20)), daemon=True
                )
                in_flight.start()
                wait_until(lambda: (tmp_path / "slow_started").exists(), what="/slow in flight")

                server.proc.send_signal(signal.SIGTERM)
                poll_status(client, "/ready", 503)
                assert client.get("/alive").status_code == 200
                assert client.get("/startup").status_code == 200
                assert client.get("/ping").json() == {"pong": True}  # still serving
                assert client.get("/health").json()["state"] == "DRAINING"

            server.proc.send_signal(signal.SIGTERM)  # second signal: end the drain now

            def listener_closed() -> bool:
                try:
                    httpx.get(f"{base}/ping", timeout=1)
                except httpx.ConnectError:
                    return True
                return False

            wait_until(listener_closed, what="uvicorn to stop accepting")
            assert server.proc.poll() is None  # still waiting for the in-flight request
            assert not slow

            (tmp_path / "release").touch()
            in_flight.join(timeout=10)
            assert slow and slow[0].status_code == 200 and slow[0].json() == {"slow": "done"}
            assert server.wait_exit() == 0, server.output()

        assert (tmp_path / "hook_ran").read_text() == "close_db"
        shutdown = otlp_http.wait_for_span(semconv.SPAN_SHUTDOWN)
        assert _attrs(shutdown)[semconv.SHUTDOWN_REASON] == "SIGTERM"
        assert 0 < _attrs(shutdown)[semconv.SHUTDOWN_DRAIN] < 30.0  # the 2nd SIGTERM cut it short
        assert _attrs(shutdown)[semconv.SHUTDOWN_OUTCOME] == "success"
        transitions = [a[semconv.LIFECYCLE_TO] for n, a in shutdown.events
                       if n == semconv.EVENT_LIFECYCLE_TRANSITION]  # fmt: skip
        assert transitions == ["DRAINING", "STOPPED"]
        (hook,) = otlp_http.spans_by_name(semconv.SPAN_SHUTDOWN_HOOK)
        assert _attrs(hook) == {
            semconv.SHUTDOWN_HOOK: "close_db",
            semconv.SHUTDOWN_OUTCOME: "success",
        }
        startup = otlp_http.span_by_name(semconv.SPAN_STARTUP)
        assert _attrs(startup)[semconv.LIFECYCLE_STATE] == "READY"
        checks = otlp_http.spans_by_name(semconv.SPAN_STARTUP_CHECK)
        assert [_attrs(c)[semconv.STARTUP_CHECK] for c in checks] == ["db", "cache"]
        assert "Finished server process" in server.output()


class TestUvicornWorkers:
    def test_sigterm_to_the_parent_drains_every_worker(self) -> None:
        """With --workers 2 the parent forwards SIGTERM; workers drain, then all exit 0."""
        args = ["-m", "uvicorn", "examples.agent_service:app", "--host", "127.0.0.1",
                "--port", str(_free_port()), "--workers", "2"]  # fmt: skip
        port = int(args[6])
        with spawn(args, FLOWTEL_EXPORTER="none", AGENT_DRAIN_S="1.5",
                   AGENT_VECTOR_CONNECT_S="0") as server:  # fmt: skip
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
                wait_until(lambda: _status(client, "/ready") == 200, what="workers ready")
                wait_until(lambda: len(re.findall("Application startup complete",
                                                  server.output())) == 2, what="2 workers")  # fmt: skip
                server.proc.send_signal(signal.SIGTERM)
                wait_until(lambda: _status(client, "/ready") == 503, what="/ready 503")
                assert _status(client, "/alive") == 200
            assert server.wait_exit() == 0, server.output()
        assert server.output().count("Finished server process") == 2


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _status(client: httpx.Client, path: str) -> int:
    try:
        return client.get(path).status_code
    except httpx.TransportError:
        return 0


class TestWorker:
    def test_sigterm_stops_a_worker_and_exits_zero(self, otlp_http: Any) -> None:
        """Under managed_lifecycle a worker stops on SIGTERM, runs hooks and exits 0."""
        with spawn(["-m", "tests.lifecycle.apps.worker"],
                   OTEL_EXPORTER_OTLP_ENDPOINT=otlp_http.endpoint) as worker:  # fmt: skip
            worker.wait_for_line(r"^READY READY$")
            assert worker.wait_for_line(r"^PATH (.*)$")[1] in (
                "db -> consumer",
                "queue -> consumer",
            )
            worker.proc.send_signal(signal.SIGTERM)
            assert worker.wait_exit() == 0, worker.output()
        assert "STOPPING DRAINING" in worker.lines
        assert worker.lines.index("STOPPING DRAINING") < worker.lines.index("HOOK close_queue")
        shutdown = otlp_http.wait_for_span(semconv.SPAN_SHUTDOWN)
        assert _attrs(shutdown)[semconv.SHUTDOWN_REASON] == "SIGTERM"

    def test_critical_failure_exits_non_zero_and_exports_the_trace(self, otlp_http: Any) -> None:
        """A failed critical check: non-zero exit naming the check; hooks ran; trace exported."""
        with spawn(["-m", "tests.lifecycle.apps.worker"], FAIL_DB="1",
                   OTEL_EXPORTER_OTLP_ENDPOINT=otlp_http.endpoint) as worker:  # fmt: skip
            code = worker.wait_exit()
        assert code == 1, worker.output()
        assert "StartupError: critical startup checks did not succeed: db" in worker.output()
        assert "HOOK close_queue" in worker.lines
        startup = otlp_http.wait_for_span(semconv.SPAN_STARTUP)
        assert _attrs(startup)[semconv.LIFECYCLE_STATE] == "FAILED"
        outcomes = {
            _attrs(c)[semconv.STARTUP_CHECK]: _attrs(c)[semconv.STARTUP_OUTCOME]
            for c in otlp_http.spans_by_name(semconv.SPAN_STARTUP_CHECK)
        }
        assert outcomes == {"db": "failed", "queue": "success", "consumer": "skipped"}

    @pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
    def test_second_signal_shortens_a_long_drain(self, sig: signal.Signals, otlp_http: Any) -> None:
        """With drain_s=30, a second signal ends the drain; the worker exits 0 at once."""
        with spawn(["-m", "tests.lifecycle.apps.worker"], FLOWTEL_TEST_DRAIN_S="30",
                   OTEL_EXPORTER_OTLP_ENDPOINT=otlp_http.endpoint) as worker:  # fmt: skip
            worker.wait_for_line(r"^READY READY$")
            worker.proc.send_signal(sig)
            wait_until(lambda: any("draining for 30.0s" in x for x in worker.lines)
                       or worker.proc.poll() is not None, what="drain to start")  # fmt: skip
            assert worker.proc.poll() is None
            worker.proc.send_signal(sig)
            assert worker.wait_exit(timeout_s=10) == 0, worker.output()
        assert "STOPPING DRAINING" in worker.lines


class TestAgentServiceExample:
    def test_example_serves_answers_and_stops_cleanly(self) -> None:
        """examples/agent_service.py under plain uvicorn: probes, /ask, SIGTERM -> exit 0."""
        args = ["-m", "uvicorn", "examples.agent_service:app", "--host", "127.0.0.1",
                "--port", "0"]  # fmt: skip
        with spawn(args, FLOWTEL_EXPORTER="console", AGENT_DRAIN_S="0.2",
                   AGENT_VECTOR_CONNECT_S="0") as server:  # fmt: skip
            port = int(server.wait_for_line(r"Uvicorn running on http://127\.0\.0\.1:(\d+)")[1])
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
                poll_status(client, "/ready", 200)
                answer = client.post("/ask", params={"question": "what is flowtel"}).json()
                assert answer["answer"] == "WHAT IS FLOWTEL"
                health = client.get("/health").json()
                assert health["startup"]["critical_path"][0] == "config"
            server.proc.send_signal(signal.SIGTERM)
            assert server.wait_exit() == 0, server.output()
        output = server.output()
        assert "flowtel.shutdown " in output and "POST /ask" in output
        span_lines = [x for x in server.lines if re.match(r"^[0-9a-f]{8} ", x)]
        assert any("POST /ask" in x for x in span_lines)
        assert not any("GET /ready" in x for x in span_lines)  # probes are not traced
