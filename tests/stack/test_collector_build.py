"""flowtel's collector distribution: the builder manifest, the build, and ``otelcol-flowtel validate``.

``make collector`` (collector/build.sh) builds ``otelcol-flowtel`` from
collector/builder-config.yaml and the Prometheus release the compose file pins; ``make test``
runs it before pytest. These tests run the real binaries: the manifest lists exactly the
components the bundled configs use, everything is at one release that compose runs too, and the
collector itself accepts every config combination that compose (and examples/kubernetes/) runs.
Without the binaries the tests skip locally and fail in CI (CI=true).
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from . import _stack as st

KINDS = ("receivers", "processors", "exporters", "extensions", "connectors")
CORE = "go.opentelemetry.io/collector/"
CONTRIB = "github.com/open-telemetry/opentelemetry-collector-contrib/"


def manifest() -> dict[str, Any]:
    loaded: dict[str, Any] = st.load_yaml(st.BUILDER_MANIFEST)
    return loaded


def release() -> str:
    version: str = manifest()["dist"]["version"]
    return version


def kubernetes_collector_configs() -> dict[str, str]:
    """Collector configs carried by ConfigMaps in examples/kubernetes/ (name -> YAML text)."""
    out: dict[str, str] = {}
    for path in sorted(st.KUBERNETES_DIR.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") == "ConfigMap":
                for key, text in (doc.get("data") or {}).items():
                    cfg = yaml.safe_load(text)
                    if isinstance(cfg, dict) and "service" in cfg and "receivers" in cfg:
                        out[f"{path.name}:{doc['metadata']['name']}/{key}"] = text
    return out


def configs_used() -> dict[str, dict[str, Any]]:
    """Every collector config the repository ships, as the collector sees it."""
    out = {
        name: st.collector_config(*files) for name, files in st.compose_collector_variants().items()
    }
    for overlay in sorted(st.OVERLAYS_DIR.glob("*.yaml")):
        out[f"base + {overlay.name}"] = st.collector_config(st.COLLECTOR_CONFIG, overlay)
    for name, text in kubernetes_collector_configs().items():
        out[name] = st.expand_env(yaml.safe_load(text))
    return out


def types_used() -> dict[str, set[str]]:
    used: dict[str, set[str]] = {k: set() for k in KINDS}
    for cfg in configs_used().values():
        for kind in KINDS:
            used[kind] |= {name.split("/")[0] for name in cfg.get(kind) or {}}
    return used


@pytest.fixture(scope="module")
def otelcol() -> Path:
    return st.built_binary("collector")


def validate(binary: Path, *configs: str, env: dict[str, str] | None = None) -> None:
    args = [str(binary), "validate", *(f"--config={c}" for c in configs)]
    done = subprocess.run(
        args,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, **(env or {})},
    )
    assert done.returncode == 0, f"{' '.join(args)}\n{done.stdout}{done.stderr}"


class TestManifest:
    def test_one_release_everywhere(self) -> None:
        """Every module is at the manifest's release (core v0.x/v1.x pair, contrib v0.x), and
        compose runs the same release."""
        rel = release()
        minor = int(rel.split(".")[1])
        stable = f"v1.{minor - 94}.0"  # collector v0.161.0 ships its stable modules as v1.67.0
        mods = [m["gomod"] for kind in (*KINDS, "providers") for m in manifest().get(kind) or []]
        assert mods
        for mod in mods:
            path, version = mod.split()
            assert path.startswith((CORE, CONTRIB)), mod
            if path.startswith(CORE + "confmap/"):
                assert version == stable, mod
            else:
                assert version == f"v{rel}", mod
        image = st.load_yaml(st.COMPOSE)["services"]["otel-collector"]["image"]
        assert image == f"otel/opentelemetry-collector-contrib:{rel}"

    def test_binary_name_and_build_script(self) -> None:
        """The distribution is otelcol-flowtel; build.sh installs the builder at the release."""
        assert manifest()["dist"]["name"] == "otelcol-flowtel"
        script = st.BUILD_SCRIPT.read_text()
        assert 'go install "go.opentelemetry.io/collector/cmd/builder@$ver"' in script
        assert os.access(st.BUILD_SCRIPT, os.X_OK)

    def test_lists_exactly_the_components_used(self, otelcol: Path) -> None:
        """The built binary's components are exactly the types the bundled configs use."""
        done = subprocess.run(
            [str(otelcol), "components"], capture_output=True, text=True, timeout=60, check=True
        )
        built = yaml.safe_load(done.stdout)
        have = {kind: {c["name"] for c in built.get(kind) or []} for kind in KINDS}
        assert have == types_used()
        assert {p["scheme"] for p in built["providers"]} == {"env", "file", "yaml"}

    def test_binary_version_is_the_release(self, otelcol: Path) -> None:
        done = subprocess.run(
            [str(otelcol), "--version"], capture_output=True, text=True, timeout=60, check=True
        )
        assert done.stdout.split() == ["otelcol-flowtel", "version", release()]

    def test_prometheus_binary_is_the_compose_release(self) -> None:
        """The Prometheus the live test runs is the release compose pins."""
        prometheus = st.built_binary("prometheus")
        image = st.load_yaml(st.COMPOSE)["services"]["prometheus"]["image"]
        tag = image.split(":")[1].removeprefix("v")
        done = subprocess.run(
            [str(prometheus), "--version"], capture_output=True, text=True, timeout=60, check=True
        )
        assert re.match(rf"prometheus, version {re.escape(tag)} ", done.stdout), done.stdout

    def test_second_build_is_a_cache_hit(self, otelcol: Path) -> None:
        """build.sh answers from its cache (no Go invoked): same path, no build log."""
        done = subprocess.run(
            [str(st.BUILD_SCRIPT), "collector"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        assert Path(done.stdout.strip()) == otelcol
        assert "building" not in done.stderr


class TestValidate:
    @pytest.mark.parametrize("variant", list(st.compose_collector_variants()))
    def test_compose_combination_is_valid(self, otelcol: Path, variant: str) -> None:
        """`otelcol-flowtel validate` accepts each config combination compose runs."""
        files = st.compose_collector_variants()[variant]
        validate(otelcol, *(str(f) for f in files))

    @pytest.mark.parametrize("overlay", sorted(p.name for p in st.OVERLAYS_DIR.glob("*.yaml")))
    def test_every_overlay_on_the_base_is_valid(self, otelcol: Path, overlay: str) -> None:
        validate(otelcol, str(st.COLLECTOR_CONFIG), str(st.OVERLAYS_DIR / overlay))

    def test_kubernetes_collector_configs_are_valid(self, otelcol: Path, tmp_path: Path) -> None:
        """The collector config in examples/kubernetes/ is valid for the built collector."""
        configs = kubernetes_collector_configs()
        assert configs, "examples/kubernetes/ has no collector ConfigMap"
        for i, (name, text) in enumerate(configs.items()):
            path = tmp_path / f"k8s-{i}.yaml"  # the ConfigMap's data, as the pod mounts it
            path.write_text(text)
            validate(otelcol, str(path))
            assert name

    def test_loopback_endpoints_through_env(self, otelcol: Path) -> None:
        """The endpoints change through the config's own variables (as the live test does)."""
        env = {
            "OTELCOL_GRPC_ENDPOINT": "127.0.0.1:14317",
            "OTELCOL_TEMPO_ENDPOINT": "127.0.0.1:24317",
            "OTELCOL_PROMETHEUS_ENDPOINT": "http://127.0.0.1:19090/api/v1/otlp",
            "OTELCOL_DECISION_WAIT": "1s",
        }
        validate(otelcol, str(st.COLLECTOR_CONFIG), str(st.TAIL_SAMPLING_OVERLAY), env=env)

    def test_validate_rejects_a_broken_config(self, otelcol: Path) -> None:
        """The check can fail: a bad duration and an unknown component are refused."""
        for extra in ("yaml:processors::batch::timeout: soon", "yaml:exporters::zipkin: {}"):
            done = subprocess.run(
                [str(otelcol), "validate", f"--config={st.COLLECTOR_CONFIG}", f"--config={extra}"],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert done.returncode != 0, extra


class TestEnvDefaults:
    def test_every_reference_has_the_compose_default(self) -> None:
        """Every ${env:...} in the bundled configs has a default, and the defaults are the
        compose addresses (what test_static.py checks against the other files)."""
        refs: dict[str, str | None] = {}
        for path in [st.COLLECTOR_CONFIG, *sorted(st.OVERLAYS_DIR.glob("*.yaml"))]:
            refs |= st.env_refs(st.load_yaml(path))
        assert all(v is not None for v in refs.values()), refs
        assert refs["OTELCOL_TEMPO_ENDPOINT"] == "tempo:4317"
        assert refs["OTELCOL_PROMETHEUS_ENDPOINT"] == "http://prometheus:9090/api/v1/otlp"
        assert refs["OTELCOL_LOKI_ENDPOINT"] == "http://loki:3100/otlp"
        assert refs["OTELCOL_GRPC_ENDPOINT"] == "0.0.0.0:4317"
        assert refs["OTELCOL_HTTP_ENDPOINT"] == "0.0.0.0:4318"
        assert refs["OTELCOL_DECISION_WAIT"] == "10s"

    def test_gomemlimit_goes_with_the_memory_limiter(self) -> None:
        """GOMEMLIMIT is 80% of memory_limiter's hard limit, the spike 20% of it, and the hard
        limit plus ~50 MiB of runtime fits the container's mem_limit."""
        limiter = st.collector_config(st.COLLECTOR_CONFIG)["processors"]["memory_limiter"]
        svc = st.load_yaml(st.COMPOSE)["services"]["otel-collector"]
        gomemlimit = svc["environment"]["GOMEMLIMIT"]
        assert gomemlimit == f"{limiter['limit_mib'] * 8 // 10}MiB"
        assert limiter["spike_limit_mib"] == limiter["limit_mib"] // 5
        mem_limit = int(svc["mem_limit"].removesuffix("m"))
        assert limiter["limit_mib"] + 50 <= mem_limit
