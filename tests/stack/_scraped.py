"""The scrape test's processes: the example service and the console service exposing
``/metrics`` on ports of their own, and a Debian Prometheus scraping them."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import yaml

from . import _stack as st

JOB = "agent-service"
POLL_S = 0.2


class ExampleService:
    """examples/agent_service.py under plain ``uvicorn``, exposing ``/metrics`` on a second port.

    It brings the real startup checks, lifecycle state, Kubernetes probes and background
    readiness check; Prometheus scrapes it as a second instance of the same job.
    """

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.metrics_port = free_port()
        env = {
            **os.environ,
            "PYTHONPATH": f"{st.ROOT / 'src'}{os.pathsep}{st.ROOT}",
            "FLOWTEL_EXPORTER": "none",
            "FLOWTEL_PROMETHEUS_PORT": str(self.metrics_port),
            "FLOWTEL_PROMETHEUS_HOST": "127.0.0.1",
            "AGENT_LLM_DOWN": "1",  # a non-critical startup check fails: DEGRADED
            "AGENT_VECTOR_CONNECT_S": "0.05",
            "AGENT_DRAIN_S": "0",
        }
        self.logfile = workdir / "agent_service.log"
        self._log = self.logfile.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "examples.agent_service:app",
             "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=st.ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=5)

    def wait_started(self, deadline: float) -> None:
        """Poll /startup until it answers 200 (503 while the startup checks run)."""
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"example exited: {self.logfile.read_text()[-2000:]}")
            with contextlib.suppress(httpx.TransportError):
                if self.client.get("/startup").status_code == 200:
                    return
            time.sleep(POLL_S)  # polling interval while the service starts, not a fixed wait
        raise AssertionError(f"example never started: {self.logfile.read_text()[-2000:]}")

    def drive(self) -> None:
        """Probe every endpoint and ask a few questions."""
        for path in ("/alive", "/ready", "/health", "/startup"):
            self.client.get(path)
        for question in ("what is flowtel", "how do probes work"):
            assert self.client.post("/ask", params={"question": question}).status_code == 200

    def stop(self) -> None:
        self.client.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()


class ConsoleService:
    """tests/stack/_console_service.py: a service in console mode whose stdout nobody reads, so
    its console output is dropped and counted; ``/metrics`` on a port of its own."""

    def __init__(self, workdir: Path) -> None:
        self.metrics_port = free_port()
        env = {
            **os.environ,
            "PYTHONPATH": f"{st.ROOT / 'src'}{os.pathsep}{st.ROOT}",
            "FLOWTEL_PROMETHEUS_PORT": str(self.metrics_port),
            "FLOWTEL_PROMETHEUS_HOST": "127.0.0.1",
        }
        env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
        self.logfile = workdir / "console_service.log"
        self._log = self.logfile.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.stack._console_service"],
            cwd=st.ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log,
        )  # fmt: skip

    def stop(self) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        with contextlib.suppress(OSError):
            self.proc.stdin.close()  # it shuts its telemetry down and exits
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc.stdout.close()
        self._log.close()


# --------------------------------------------------------------------------------------------
# Prometheus
# --------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Prometheus:
    """A real Prometheus on a loopback port with temp config and storage."""

    def __init__(self, binary: str, workdir: Path, targets: list[str]) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(st.ALERTS)],
            "scrape_configs": [
                {"job_name": JOB, "static_configs": [{"targets": targets}]},
            ],
        }
        cfg = workdir / "prometheus.yaml"
        cfg.write_text(yaml.safe_dump(config))
        self.log = (workdir / "prometheus.log").open("w")
        self.proc = subprocess.Popen(
            [
                binary,
                f"--config.file={cfg}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.logfile = workdir / "prometheus.log"

    def get(self, path: str, **params: str) -> Any:
        url = f"{self.base}{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=5) as resp:
            return json.loads(resp.read())

    def query(self, expr: str) -> list[dict[str, Any]]:
        body = self.get("/api/v1/query", query=expr)
        assert body["status"] == "success", body
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def wait(self, what: str, check: Callable[[], bool], deadline: float) -> None:
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"prometheus exited: {self.logfile.read_text()[-2000:]}")
            try:
                if check():
                    return
            except OSError:
                pass
            time.sleep(POLL_S)  # polling interval while waiting on Prometheus, not a fixed wait
        raise AssertionError(f"timed out waiting for {what}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.log.close()
