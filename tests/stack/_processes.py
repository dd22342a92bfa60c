"""The processes of the live pipeline test: a child process with its log, the built collector
and the compose-pinned Prometheus, and the deadline-bounded wait every test polls with."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import httpx
import yaml

from . import _stack as st

JOB = "agent-service"
DEADLINE_S = 60.0
POLL_S = 0.2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            status: int = resp.status
            return status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


class Process:
    """A child process with its output in a log file; stopped with SIGTERM, then SIGKILL."""

    name = "process"

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.proc: subprocess.Popen[Any] | None = None
        self._log: IO[str] | None = None

    @property
    def logfile(self) -> Path:
        return self.workdir / f"{self.name}.log"

    def command(self) -> tuple[list[str], dict[str, str]]:
        raise NotImplementedError

    def start(self, **popen: Any) -> None:
        args, env = self.command()
        self._log = self.logfile.open("w")
        popen.setdefault("stdout", self._log)
        self.proc = subprocess.Popen(args, env=env, stderr=self._log, cwd=st.ROOT, **popen)

    def tail(self) -> str:
        return self.logfile.read_text()[-3000:] if self.logfile.exists() else ""

    def check_running(self) -> None:
        assert self.proc is not None, f"{self.name} not started"
        if self.proc.poll() is not None:
            raise AssertionError(f"{self.name} exited ({self.proc.returncode}):\n{self.tail()}")

    def wait_for(self, what: str, check: Callable[[], bool], deadline: float) -> None:
        while time.monotonic() < deadline:
            self.check_running()
            with contextlib.suppress(OSError, httpx.TransportError):
                if check():
                    return
            time.sleep(POLL_S)  # polling interval, bounded by the deadline
        raise AssertionError(f"{self.name}: timed out waiting for {what}\n{self.tail()}")

    def stop(self, timeout_s: float = 20) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        for stream in (self.proc.stdin, self.proc.stdout, self._log):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        return self.proc.returncode


class Collector(Process):
    """``otelcol-flowtel`` with the bundled config files, addresses set through OTELCOL_*."""

    def __init__(self, name: str, configs: list[Path], workdir: Path) -> None:
        super().__init__(workdir)
        self.name = name
        self.configs = configs
        self.grpc_port, self.http_port = free_port(), free_port()
        self.health_port, self.metrics_port = free_port(), free_port()
        #: OTELCOL_* variables for the backends (set before start)
        self.backends: dict[str, str] = {}

    def command(self) -> tuple[list[str], dict[str, str]]:
        compose_env = st.load_yaml(st.COMPOSE)["services"]["otel-collector"]["environment"]
        env = {
            **os.environ,
            **compose_env,  # GOMEMLIMIT, as compose runs it
            "OTELCOL_GRPC_ENDPOINT": f"127.0.0.1:{self.grpc_port}",
            "OTELCOL_HTTP_ENDPOINT": f"127.0.0.1:{self.http_port}",
            "OTELCOL_HEALTH_ENDPOINT": f"127.0.0.1:{self.health_port}",
            "OTELCOL_METRICS_HOST": "127.0.0.1",
            "OTELCOL_METRICS_PORT": str(self.metrics_port),
            **self.backends,
        }
        binary = st.built_binary("collector")
        return [str(binary), *(f"--config={c}" for c in self.configs)], env

    def wait_healthy(self, deadline: float) -> None:
        url = f"http://127.0.0.1:{self.health_port}/"
        self.wait_for("health_check 200", lambda: http_status(url) == 200, deadline)

    def own_metrics(self) -> dict[str, list[tuple[dict[str, str], float]]]:
        """The collector's own metrics, read from its Prometheus endpoint."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as resp:
            text = resp.read().decode()
        out: dict[str, list[tuple[dict[str, str], float]]] = {}
        for line in text.splitlines():
            m = re.match(r"^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)", line)
            if m:
                labels = dict(re.findall(r'(\w+)="((?:\\.|[^"\\])*)"', m[2] or ""))
                out.setdefault(m[1], []).append((labels, float(m[3])))
        return out

    def total(self, name: str, **labels: str) -> float:
        series = self.own_metrics().get(name, [])
        return sum(v for lab, v in series if all(lab.get(k) == x for k, x in labels.items()))


class Prometheus3(Process):
    """The compose-pinned Prometheus release, run with compose's flags and the stack's config."""

    name = "prometheus"

    def __init__(self, workdir: Path, stand_ins: dict[str, list[str]]) -> None:
        super().__init__(workdir)
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.dropped_jobs: list[str] = []
        self.stand_ins = {**stand_ins, "localhost:9090": [f"127.0.0.1:{self.port}"]}

    def config(self) -> dict[str, Any]:
        """collector/prometheus/prometheus.yaml with compose host names replaced by loopback
        stand-ins (one or more targets each; jobs without one are dropped), the rules file at its
        repo path, 1 s intervals.
        The otlp: and storage: blocks are the file's own."""
        real = st.load_yaml(st.PROMETHEUS_CONFIG)
        config = dict(real)
        config["global"] = {**real["global"], "scrape_interval": "1s", "evaluation_interval": "1s"}
        assert real["rule_files"] == ["/etc/prometheus/alerts.yaml"]
        config["rule_files"] = [str(st.ALERTS)]
        jobs = []
        self.dropped_jobs = []
        for job in real["scrape_configs"]:
            targets = [t for sc_ in job["static_configs"] for t in sc_["targets"]]
            if all(t in self.stand_ins for t in targets):
                static = [{"targets": [s for t in targets for s in self.stand_ins[t]]}]
                jobs.append({**job, "static_configs": static})
            else:
                self.dropped_jobs.append(job["job_name"])
        config["scrape_configs"] = jobs
        assert config["otlp"] == real["otlp"] and config["storage"] == real["storage"]
        return config

    def command(self) -> tuple[list[str], dict[str, str]]:
        path = self.workdir / "prometheus.yaml"
        path.write_text(yaml.safe_dump(self.config(), sort_keys=False))
        in_container = {
            "--config.file": str(path),
            "--storage.tsdb.path": str(self.workdir / "prometheus-data"),
            "--web.listen-address": f"127.0.0.1:{self.port}",
        }
        args = [str(st.built_binary("prometheus"))]
        for flag in st.load_yaml(st.COMPOSE)["services"]["prometheus"]["command"]:
            key = flag.split("=", 1)[0]
            args.append(f"{key}={in_container[key]}" if key in in_container else flag)
        return [*args, "--log.level=warn"], dict(os.environ)

    def get(self, path: str, **params: str) -> Any:
        url = f"{self.base}{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=5) as resp:
            return json.loads(resp.read())

    def query(self, expr: str) -> list[dict[str, Any]]:
        body = self.get("/api/v1/query", query=expr)
        assert body["status"] == "success", body
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def wait_ready(self, deadline: float) -> None:
        self.wait_for("/-/ready", lambda: http_status(f"{self.base}/-/ready") == 200, deadline)


def wait(what: str, check: Callable[[], bool], deadline: float, *procs: Process) -> None:
    """Poll ``check`` until true; fail at the deadline or when one of ``procs`` died."""
    last: Exception | None = None
    while time.monotonic() < deadline:
        for p in procs:
            p.check_running()
        try:
            if check():
                return
        except (OSError, AssertionError) as exc:
            last = exc
        time.sleep(POLL_S)  # polling interval, bounded by the deadline
    raise AssertionError(f"timed out waiting for {what}: {last!r}")
