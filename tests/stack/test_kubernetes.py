"""examples/kubernetes/: the manifests agree with the service and the collector they deploy.

The agent service's probes are checked against the running example (its real probe paths on its
real port), its grace period against flowtel's drain and shutdown settings (read from
``configure_telemetry().settings`` and from the example's own code), its resource attributes
against what flowtel makes of them, and its OTLP protocol against the collector port it targets.
The collector's ConfigMap is the bundled config verbatim, validated by the built
``otelcol-flowtel`` with the Deployment's environment, and its probes, memory limits and RBAC fit
that config.
"""

from __future__ import annotations

import ast
import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.support.polling import wait_until

from . import _stack as st

EXAMPLE = st.ROOT / "examples" / "agent_service.py"


def documents() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted(st.KUBERNETES_DIR.glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def one(kind: str, name: str) -> dict[str, Any]:
    [doc] = [d for d in documents() if d["kind"] == kind and d["metadata"]["name"] == name]
    return doc


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    [c] = deployment["spec"]["template"]["spec"]["containers"]
    found: dict[str, Any] = c
    return found


def env_of(c: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in c.get("env", []) if "value" in e}


def port_number(c: dict[str, Any], port: int | str) -> int:
    if isinstance(port, int):
        return port
    [number] = [p["containerPort"] for p in c["ports"] if p["name"] == port]
    return int(number)


def flag(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "FLOWTEL_"))}
    return {**env, "PYTHONPATH": f"{st.ROOT / 'src'}{os.pathsep}{st.ROOT}", **extra}


def flowtel_settings(**env: str) -> dict[str, Any]:
    """flowtel's real settings and resource for an environment, from a fresh process."""
    code = (
        "import json, flowtel\n"
        "t = flowtel.configure_telemetry(exporter='none', logging=False)\n"
        "print(json.dumps({'drain_s': t.settings.drain_s,"
        " 'shutdown_timeout_s': t.settings.shutdown_timeout_s,"
        " 'metric_export_interval_s': t.settings.metric_export_interval_s,"
        " 'resource': {k: str(v) for k, v in t.resource.attributes.items()}}))\n"
        "t.shutdown()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env=clean_env(**env),
        cwd=st.ROOT,
    )
    loaded: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return loaded


def example_calls(function: str) -> list[dict[str, Any]]:
    """Keyword arguments (literals) of every call to ``function`` in examples/agent_service.py."""
    out = []
    for node in ast.walk(ast.parse(EXAMPLE.read_text())):
        if isinstance(node, ast.Call):
            name = (
                node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
            )
            if name == function:
                literal = [k for k in node.keywords if k.arg and isinstance(k.value, ast.Constant)]
                out.append({str(k.arg): ast.literal_eval(k.value) for k in literal})
    return out


def example_env_default(variable: str) -> str:
    m = re.search(rf'os\.environ\.get\("{variable}", "([^"]*)"\)', EXAMPLE.read_text())
    assert m, variable
    return m[1]


@pytest.fixture(scope="module")
def agent() -> dict[str, Any]:
    return container(one("Deployment", "agent-service"))


class TestAgentService:
    def test_runs_the_module_and_port_the_image_has(self, agent: dict[str, Any]) -> None:
        """uvicorn serves the module examples/Dockerfile puts in the image, on the port it
        exposes, and the probes use that port."""
        dockerfile = st.DOCKERFILE.read_text()
        cmd = json.loads(re.search(r"^CMD (\[.*\])$", dockerfile, re.M)[1])  # type: ignore[index]
        args = agent["command"]
        assert args[:2] == ["uvicorn", cmd[1]] == ["uvicorn", "agent_service:app"]
        assert flag(args, "--port") == flag(cmd, "--port")
        port = int(flag(args, "--port"))
        assert f"EXPOSE {port}" in dockerfile
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert port_number(agent, agent[probe]["httpGet"]["port"]) == port, probe

    def test_grace_period_covers_the_drain(self, agent: dict[str, Any]) -> None:
        """terminationGracePeriodSeconds > drain + graceful-shutdown timeout + the longest
        shutdown hook + telemetry flush and shutdown (flowtel's shutdown_timeout_s, twice)."""
        spec = one("Deployment", "agent-service")["spec"]["template"]["spec"]
        env = env_of(agent)
        settings = flowtel_settings()
        drain = float(env.get("AGENT_DRAIN_S", example_env_default("AGENT_DRAIN_S")))
        graceful = float(flag(agent["command"], "--timeout-graceful-shutdown"))
        hooks = max(c.get("timeout_s", 0) for c in example_calls("register_shutdown_hook"))
        flush = 2 * settings["shutdown_timeout_s"]
        assert drain >= settings["drain_s"]  # at least flowtel's default drain
        assert spec["terminationGracePeriodSeconds"] > drain + graceful + hooks + flush

    def test_startup_probe_outlasts_the_startup_checks(self, agent: dict[str, Any]) -> None:
        """The startupProbe allows longer than every startup check's attempts in a row."""
        probe = agent["startupProbe"]
        budget = probe["periodSeconds"] * probe["failureThreshold"]
        worst = sum(
            c.get("timeout_s", 0) * (1 + c.get("retries", 0))
            + c.get("backoff_s", 0) * 2 ** c.get("retries", 0)
            for c in example_calls("register_startup_check")
        )
        assert 0 < worst < budget

    def test_otlp_protocol_matches_the_collector_port(self, agent: dict[str, Any]) -> None:
        """http/protobuf goes to the collector Service's OTLP/HTTP port, gRPC to its gRPC port
        (the defect of the old docs/lifecycle.md snippet: gRPC to :4318)."""
        env = env_of(agent)
        url = httpx.URL(env["OTEL_EXPORTER_OTLP_ENDPOINT"])
        service_name, namespace = url.host.split(".")[:2]
        service = one("Service", service_name)
        assert service["metadata"]["namespace"] == namespace
        [port] = [p for p in service["spec"]["ports"] if p["port"] == url.port]
        collector = container(one("Deployment", service_name))
        target = port_number(collector, port["targetPort"])
        protocols = st.collector_config(st.COLLECTOR_CONFIG)["receivers"]["otlp"]["protocols"]
        by_protocol = {"http/protobuf": "http", "grpc": "grpc"}
        kind = by_protocol[env.get("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")]
        assert target == int(protocols[kind]["endpoint"].rsplit(":", 1)[1])

    def test_export_interval_is_the_datasource_interval(self, agent: dict[str, Any]) -> None:
        """The manifest keeps flowtel's default metric export interval, and the Grafana
        Prometheus datasource's timeInterval is that interval (so $__rate_interval holds four
        exports)."""
        default_s = flowtel_settings()["metric_export_interval_s"]
        assert float(env_of(agent)["OTEL_METRIC_EXPORT_INTERVAL"]) / 1000 == default_s
        [prom] = [d for d in st.load_yaml(st.DATASOURCES_DIR / "datasources.yaml")["datasources"]
                  if d["type"] == "prometheus"]  # fmt: skip
        assert prom["jsonData"]["timeInterval"] == f"{default_s:g}s"

    def test_pod_identity_becomes_resource_attributes(self, agent: dict[str, Any]) -> None:
        """OTEL_RESOURCE_ATTRIBUTES refers only to downward-API variables defined before it, and
        flowtel turns it into k8s.* resource attributes and the service.instance.id."""
        defined: dict[str, str] = {}
        for e in agent["env"]:
            if e["name"] == "OTEL_RESOURCE_ATTRIBUTES":
                value = e["value"]
                break
            if "valueFrom" in e:
                defined[e["name"]] = e["valueFrom"]["fieldRef"]["fieldPath"]
        refs = set(re.findall(r"\$\((\w+)\)", value))
        assert refs and refs <= set(defined), refs - set(defined)
        sample = {"metadata.name": "agent-service-7d9f-abcde", "metadata.uid": "1b2c",
                  "metadata.namespace": "default", "spec.nodeName": "node-1"}  # fmt: skip
        expanded = re.sub(r"\$\((\w+)\)", lambda m: sample[defined[m[1]]], value)
        resource = flowtel_settings(OTEL_RESOURCE_ATTRIBUTES=expanded)["resource"]
        assert resource["k8s.pod.name"] == "agent-service-7d9f-abcde"
        assert resource["k8s.namespace.name"] == "default"
        assert resource["k8s.node.name"] == "node-1"
        assert resource["k8s.pod.uid"] == "1b2c"
        assert resource["service.instance.id"] == "default.agent-service-7d9f-abcde.app"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def example_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The example service under plain uvicorn, as the image runs it (module path aside)."""
    port = free_port()
    logfile = tmp_path_factory.mktemp("k8s-example") / "example.log"
    log = logfile.open("w")
    env = clean_env(FLOWTEL_EXPORTER="none", AGENT_VECTOR_CONNECT_S="0.05", AGENT_DRAIN_S="0")
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "examples.agent_service:app",
         "--host", "127.0.0.1", "--port", str(port)],
        cwd=st.ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:

        def started() -> bool:
            assert proc.poll() is None, logfile.read_text()[-2000:]
            try:
                return httpx.get(f"{url}/startup", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(started, timeout_s=60, what="the example to finish starting")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()


@pytest.mark.integration
class TestProbesAgainstTheService:
    @pytest.mark.parametrize("probe", ["startupProbe", "readinessProbe", "livenessProbe"])
    def test_probe_path_answers_200(
        self, agent: dict[str, Any], example_url: str, probe: str
    ) -> None:
        """Each probe's path is one the running service answers 200 on once started."""
        path = agent[probe]["httpGet"]["path"]
        statuses: list[int] = []

        def answers_200() -> bool:  # /ready waits for the first readiness check run
            statuses.append(httpx.get(f"{example_url}{path}", timeout=2).status_code)
            return statuses[-1] == 200

        wait_until(answers_200, timeout_s=30, what=f"{probe} {path} -> 200 (got {statuses[-1:]})")

    def test_health_is_not_a_probe(self, agent: dict[str, Any], example_url: str) -> None:
        """/health is for people (docs/lifecycle.md): it exists, and no probe uses it."""
        assert httpx.get(f"{example_url}/health", timeout=2).status_code in (200, 503)
        paths = {agent[p]["httpGet"]["path"] for p in ("startupProbe", "readinessProbe",
                                                         "livenessProbe")}  # fmt: skip
        assert "/health" not in paths and len(paths) == 3


@pytest.fixture(scope="module")
def deployment() -> dict[str, Any]:
    """The collector's Deployment."""
    return one("Deployment", "otel-collector")


class TestCollector:
    def test_configmap_is_the_bundled_config(self) -> None:
        """The ConfigMap carries collector/otel-collector.yaml verbatim (no drifting copy)."""
        data = one("ConfigMap", "otel-collector")["data"]
        assert data == {"otel-collector.yaml": st.COLLECTOR_CONFIG.read_text()}

    def test_config_is_valid_with_the_deployments_env(
        self, deployment: dict[str, Any], tmp_path: Path
    ) -> None:
        """otelcol-flowtel accepts the mounted config with the Deployment's environment."""
        binary = st.built_binary("collector")
        c = container(deployment)
        [mount] = c["volumeMounts"]
        [arg] = c["args"]
        assert arg == f"--config={mount['mountPath']}/otel-collector.yaml"
        path = tmp_path / "otel-collector.yaml"  # the ConfigMap key, as mounted in the pod
        path.write_text(one("ConfigMap", "otel-collector")["data"]["otel-collector.yaml"])
        done = subprocess.run(
            [str(binary), "validate", f"--config={path}"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env={**os.environ, **env_of(c)},
        )
        assert done.returncode == 0, done.stdout + done.stderr

    def test_probes_and_ports_match_the_config(self, deployment: dict[str, Any]) -> None:
        """Liveness and readiness hit the health_check extension; the ports are the config's."""
        c = container(deployment)
        cfg = st.collector_config(st.COLLECTOR_CONFIG, env=env_of(c))
        health = int(cfg["extensions"]["health_check"]["endpoint"].rsplit(":", 1)[1])
        for probe in ("livenessProbe", "readinessProbe"):
            assert port_number(c, c[probe]["httpGet"]["port"]) == health, probe
        protocols = cfg["receivers"]["otlp"]["protocols"]
        metrics = cfg["service"]["telemetry"]["metrics"]["readers"][0]["pull"]["exporter"]
        published = {port_number(c, n) for n in ("otlp-grpc", "otlp-http", "metrics")}
        assert published == {
            int(protocols["grpc"]["endpoint"].rsplit(":", 1)[1]),
            int(protocols["http"]["endpoint"].rsplit(":", 1)[1]),
            metrics["prometheus"]["port"],
        }
        release = st.load_yaml(st.BUILDER_MANIFEST)["dist"]["version"]
        assert c["image"] == f"otel/opentelemetry-collector-contrib:{release}"

    def test_memory_limits_go_with_the_memory_limiter(self, deployment: dict[str, Any]) -> None:
        """GOMEMLIMIT = 80% of memory_limiter's hard limit; the container limit holds the hard
        limit plus ~50 MiB of runtime."""
        c = container(deployment)
        env = env_of(c)
        limiter = st.collector_config(st.COLLECTOR_CONFIG, env=env)["processors"]["memory_limiter"]
        assert env["GOMEMLIMIT"] == f"{limiter['limit_mib'] * 8 // 10}MiB"
        limit = c["resources"]["limits"]["memory"]
        assert limit.endswith("Mi") and limiter["limit_mib"] + 50 <= int(limit[:-2])

    def test_rbac_is_what_the_processors_need(self) -> None:
        """No processor reads the Kubernetes API (no k8sattributes): no Role, no token. With
        k8sattributes, a ClusterRole must grant get/watch/list on pods, namespaces, replicasets."""
        cfg = st.collector_config(st.COLLECTOR_CONFIG)
        uses_k8s_api = any(p.split("/")[0] == "k8sattributes" for p in cfg["processors"])
        kinds = {d["kind"] for d in documents()}
        sa = one("ServiceAccount", "otel-collector")
        if uses_k8s_api:
            role = next(d for d in documents() if d["kind"] == "ClusterRole")
            resources = {r for rule in role["rules"] for r in rule["resources"]}
            assert {"pods", "namespaces", "replicasets"} <= resources
        else:
            assert not kinds & {"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"}
            assert sa["automountServiceAccountToken"] is False
