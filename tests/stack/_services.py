"""The flowtel processes of the live pipeline test (the example service, the driver, the
console service, flowtel doctor) and the helpers that start and fault them."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

import httpx

from ..support.otlp_receiver import ReceivedSpan
from . import _stack as st
from ._processes import JOB, POLL_S, Collector, Process, free_port


def service_env(collector_endpoint: str, protocol: str) -> dict[str, str]:
    """A flowtel service's environment: OTLP to the collector, fast exports, src importable."""
    return {
        **os.environ,
        "PYTHONPATH": f"{st.ROOT / 'src'}{os.pathsep}{st.ROOT}",
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector_endpoint,
        "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
        "OTEL_METRIC_EXPORT_INTERVAL": "1000",  # ms; compose uses 5000, flowtel's default 30 s
        "OTEL_BSP_SCHEDULE_DELAY": "200",
    }


class ExampleService(Process):
    """examples/agent_service.py under plain uvicorn with compose's agent-service environment,
    except the collector address (loopback) and a 1 s metric export interval."""

    name = "agent-service"

    def __init__(self, workdir: Path, collector: Collector) -> None:
        super().__init__(workdir)
        self.collector = collector
        self.port = free_port()
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=5)

    def command(self) -> tuple[list[str], dict[str, str]]:
        compose_env = st.load_yaml(st.COMPOSE)["services"]["agent-service"]["environment"]
        protocol = compose_env["OTEL_EXPORTER_OTLP_PROTOCOL"]
        assert protocol == "http/protobuf"
        env = {
            **compose_env,
            **service_env(f"http://127.0.0.1:{self.collector.http_port}", protocol),
            "AGENT_LLM_DOWN": "1",  # a non-critical startup check fails: DEGRADED, an error span
            "AGENT_VECTOR_CONNECT_S": "0.05",
            "AGENT_DRAIN_S": "0.2",
        }
        args = [sys.executable, "-m", "uvicorn", "examples.agent_service:app",
                "--host", "127.0.0.1", "--port", str(self.port)]  # fmt: skip
        return args, env

    def wait_started(self, deadline: float) -> None:
        def started() -> bool:
            return self.client.get("/startup").status_code == 200

        self.wait_for("/startup 200", started, deadline)

    def drive(self) -> None:
        """Probes, answered questions, questions without documents (404: an error span) and an
        empty question (422)."""
        for path in ("/alive", "/ready", "/health", "/startup"):
            self.client.get(path)
        for i in range(6):
            status = self.client.post("/ask", params={"question": f"how do probes work {i}"})
            assert status.status_code == 200
        for i in range(3):
            status = self.client.post("/ask", params={"question": f"unknown topic {i}"})
            assert status.status_code == 404
        assert self.client.post("/ask", params={"question": " "}).status_code == 422

    def stop(self, timeout_s: float = 20) -> int | None:
        self.client.close()
        return super().stop(timeout_s)


class Driver(Process):
    """tests/stack/_pipeline_driver.py: reports its spans on stdout, runs until stdin closes."""

    name = "driver"

    def __init__(self, workdir: Path, collector: Collector) -> None:
        super().__init__(workdir)
        self.collector = collector
        self._lines: queue.Queue[str] = queue.Queue()
        self._reader: threading.Thread | None = None

    def command(self) -> tuple[list[str], dict[str, str]]:
        env = service_env(f"http://127.0.0.1:{self.collector.grpc_port}", "grpc")
        # in-process tail sampling: 80% of traces are head-sampled, the rest decided by rule
        # (errors and keep_trace() kept, the others dropped before export)
        env["FLOWTEL_SAMPLING"] = "head_rate=0.8,errors=true"
        return [sys.executable, "-m", "tests.stack._pipeline_driver"], env

    def start(self, **popen: Any) -> None:
        super().start(stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc is not None and self.proc.stdout is not None
        self._reader = threading.Thread(target=self._read, args=(self.proc.stdout,), daemon=True)
        self._reader.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self._lines.put(line)

    def request_log(self) -> None:
        """One more log record from the driver, exported at once."""
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write("log\n")
        self.proc.stdin.flush()

    def report(self, deadline: float) -> dict[str, Any]:
        while time.monotonic() < deadline:
            with contextlib.suppress(queue.Empty):
                loaded: dict[str, Any] = json.loads(self._lines.get(timeout=POLL_S))
                return loaded
            self.check_running()
        raise AssertionError(f"driver never reported its spans\n{self.tail()}")

    def stop(self, timeout_s: float = 20) -> int | None:
        if self.proc is not None and self.proc.stdin is not None and not self.proc.stdin.closed:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()  # the driver shuts its telemetry down and exits
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if self._reader is not None:
            self._reader.join(timeout=5)  # EOF once the process is gone
        return super().stop(timeout_s)


class ConsoleService(Process):
    """tests/stack/_console_service.py: console mode, stdout a pipe nobody reads, so console
    output is dropped and counted; its metrics go to the collector through an OTLP reader."""

    name = "console-service"

    def __init__(self, workdir: Path, collector: Collector) -> None:
        super().__init__(workdir)
        self.collector = collector

    def command(self) -> tuple[list[str], dict[str, str]]:
        env = service_env(f"http://127.0.0.1:{self.collector.http_port}", "http/protobuf")
        return [sys.executable, "-m", "tests.stack._console_service"], env

    def start(self, **popen: Any) -> None:
        super().start(stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def stop(self, timeout_s: float = 20) -> int | None:
        if self.proc is not None and self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()  # it shuts its telemetry down and exits
        return super().stop(timeout_s)


def run_doctor(collector: Collector) -> str:
    """``python -m flowtel doctor`` against the collector's OTLP/HTTP port, as a user runs it on
    a service's host: it sends a test span, metric point and log record and must pass."""
    env = {
        **service_env(f"http://127.0.0.1:{collector.http_port}", "http/protobuf"),
        "OTEL_SERVICE_NAME": JOB,
    }
    done = subprocess.run([sys.executable, "-m", "flowtel", "doctor", "--timeout-s", "10"],
                          env=env, cwd=st.ROOT, capture_output=True, text=True, timeout=60,
                          check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def refuse_one_span(collector: Collector) -> bool:
    """POST one span (OTLP/HTTP JSON) to ``collector``; True when it was refused."""
    span = {"traceId": os.urandom(16).hex(), "spanId": os.urandom(8).hex(), "name": "overload",
            "kind": 1, "startTimeUnixNano": "1", "endTimeUnixNano": "2"}  # fmt: skip
    body = {"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}
    url = f"http://127.0.0.1:{collector.http_port}/v1/traces"
    return httpx.post(url, json=body, timeout=5).status_code != 200


def trace_ids(spans: list[ReceivedSpan]) -> set[str]:
    return {s.span.trace_id.hex() for s in spans}


def start_services(
    workdir: Path, collector: Collector, deadline: float
) -> tuple[ExampleService, Driver, dict[str, Any]]:
    """Start the example service and the driver against ``collector``; drive the example."""
    example, driver = ExampleService(workdir, collector), Driver(workdir, collector)
    example.start()
    driver.start()
    try:
        example.wait_started(deadline)
        example.drive()
        report = driver.report(deadline)
        example.drive()  # after the first exports, so rate() sees the counters move
    except BaseException:
        driver.stop()
        example.stop()
        raise
    return example, driver, report
