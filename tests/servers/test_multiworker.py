"""Multi-process servers for real: gunicorn (UvicornWorker, with and without --preload) and
``uvicorn --workers``, each worker exporting to the OTLP test receiver (issue 16, point 8).
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from flowtel import semconv
from tests.lifecycle._process import Process, spawn
from tests.support.polling import wait_until

APP = "tests.servers.apps.app:app"
WORKERS = 2
GUNICORN = str(Path(sys.executable).with_name("gunicorn"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _command(server: str, port: int, tmp: Path, *extra: str) -> tuple[list[str], str | None]:
    if server == "uvicorn":
        return ["-m", "uvicorn", APP, "--host", "127.0.0.1", "--port", str(port),
                "--workers", str(WORKERS), *extra], None  # fmt: skip
    args = ["-k", "uvicorn.workers.UvicornWorker", "-w", str(WORKERS), "-b", f"127.0.0.1:{port}",
            "--control-socket", str(tmp / "gunicorn.ctl"), "--graceful-timeout", "10",
            "--timeout", "20", *extra]  # fmt: skip
    if server == "gunicorn-preload":
        args.append("--preload")
    return [*args, APP], GUNICORN


@contextmanager
def serving(
    server: str, otlp: Any, tmp: Path, *extra: str, **env: str
) -> Iterator[tuple[Process, str]]:
    port = _free_port()
    args, program = _command(server, port, tmp, *extra)
    with spawn(args, program=program, OTEL_EXPORTER_OTLP_ENDPOINT=otlp.endpoint,
               **env) as process:  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        wait_until(lambda: _get(f"{base}/ready") is not None or process.proc.poll() is not None,
                   timeout_s=30, what="server to listen")  # fmt: skip
        assert process.proc.poll() is None, process.output()
        yield process, base


def _get(url: str) -> httpx.Response | None:
    try:
        return httpx.get(url, timeout=5)  # a new connection each time: any worker may answer
    except httpx.TransportError:
        return None


SERVERS = ["gunicorn", "gunicorn-preload", "uvicorn"]


class TestEveryWorkerReports:
    @pytest.mark.parametrize("server", SERVERS)
    def test_each_worker_exports_with_its_own_instance_and_drains_on_sigterm(
        self, server: str, otlp_http: Any, tmp_path: Path
    ) -> None:
        """Spans, metrics and logs of every worker arrive, each worker with its own
        service.instance.id; /health and get_error_stats answer per worker; SIGTERM drains
        every worker and the server exits 0 within the budget."""
        with serving(server, otlp_http, tmp_path) as (process, base):
            seen: dict[int, dict[str, Any]] = {}

            def every_worker_answered() -> bool:
                for _ in range(4):
                    answer = _get(f"{base}/work")
                    if answer is not None and answer.status_code == 200:
                        who = _get(f"{base}/whoami")
                        if who is not None and who.status_code == 200:
                            seen[who.json()["pid"]] = who.json()
                return len(seen) >= WORKERS

            wait_until(every_worker_answered, timeout_s=30, what="every worker to answer")
            instances = {w["instance"] for w in seen.values()}
            assert len(instances) == len(seen), seen  # one service.instance.id per worker
            health = {}
            wait_until(lambda: len(_health_by_pid(base, health)) >= WORKERS, timeout_s=20,
                       what="/health from every worker")  # fmt: skip
            for pid, body in health.items():
                assert body["process"]["service_instance_id"] == seen[pid]["instance"]
            sent = time.monotonic()
            process.proc.send_signal(signal.SIGTERM)
            code = process.wait_exit(timeout_s=30)
            elapsed = time.monotonic() - sent
        print(f"\n{server}: SIGTERM -> exit {code} in {elapsed:.2f}s")
        assert code == 0, process.output()
        assert elapsed < 0.5 + 3 + 5, process.output()  # drain + flush budget + server's own
        for signal_name, items in (
            ("spans", lambda: {s.resource.get("service.instance.id") for s in otlp_http.spans()
                               if s.attributes.get(semconv.COMPONENT) == "app"}),
            ("logs", lambda: {r.resource.get("service.instance.id") for r in otlp_http.logs()
                              if "work done" in str(r.body)}),
            ("metrics", lambda: {p.resource.get("service.instance.id") for p in
                                 otlp_http.metric_points(semconv.METRIC_OPERATION_CALLS)}),
        ):  # fmt: skip
            wait_until(lambda items=items: instances <= items(), timeout_s=15,
                       what=f"{signal_name} from every worker")  # fmt: skip
        shutdowns = {s.resource.get("service.instance.id")
                     for s in otlp_http.spans_by_name(semconv.SPAN_SHUTDOWN)}  # fmt: skip
        assert instances <= shutdowns  # every worker drained and traced its shutdown


def _health_by_pid(base: str, into: dict[int, dict[str, Any]]) -> dict[int, dict[str, Any]]:
    answer = _get(f"{base}/health")
    if answer is not None and answer.status_code == 200:
        body = answer.json()
        into[body["process"]["pid"]] = body
    return into


class TestForkCycles:
    @pytest.mark.timeout(900)  # bounded by the loop's own deadline: 2 s per cycle + 20 s
    def test_workers_recycled_under_load_never_deadlock(
        self, otlp_http: Any, tmp_path: Path
    ) -> None:
        """gunicorn --preload --max-requests 1 under a bounded request loop: workers fork,
        serve, export and exit; none hangs or times out, and SIGTERM still exits 0.

        The issue's 200 cycles take about 2 minutes on the 2-core CI machine, so CI runs 50;
        ``FLOWTEL_TEST_FORK_CYCLES=200`` runs the full count (see docs/reliability.md).
        """
        cycles = int(os.environ.get("FLOWTEL_TEST_FORK_CYCLES", "50"))
        with serving("gunicorn-preload", otlp_http, tmp_path, "--max-requests", "1",
                     "--max-requests-jitter", "0", FLOWTEL_TEST_DRAIN_S="0") as (process, base):  # fmt: skip
            pids: set[int] = set()
            answered = 0
            lock = threading.Lock()
            started = time.monotonic()
            deadline = started + 2.0 * cycles + 20

            def client() -> None:
                nonlocal answered
                while time.monotonic() < deadline:
                    with lock:
                        if len(pids) >= cycles:
                            return
                    response = _get(f"{base}/work")
                    if response is not None and response.status_code == 200:
                        with lock:
                            answered += 1
                            pids.add(response.json()["pid"])

            clients = [threading.Thread(target=client, daemon=True) for _ in range(2)]
            for thread in clients:
                thread.start()
            for thread in clients:
                thread.join(timeout=2.0 * cycles + 30)
            took = time.monotonic() - started
            process.proc.send_signal(signal.SIGTERM)
            code = process.wait_exit(timeout_s=30)
        print(f"\n{answered} requests, {len(pids)} worker fork/exit cycles in {took:.1f}s")
        assert len(pids) >= cycles, (answered, len(pids))  # every one a fork/exit cycle
        assert "WORKER TIMEOUT" not in process.output()
        assert code == 0, process.output()[-3000:]
