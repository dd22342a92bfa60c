"""The package layout holds: no import cycles, each stage imports only what lies below it.

``docs/architecture.md`` draws these rules; this test is what keeps the drawing true. Every
import counts, at module level or inside a function (a lazy import is still a dependency);
only ``if TYPE_CHECKING:`` blocks are left out, since they never run.
"""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "flowtel"

_BASE = {"semconv", "exceptions", "_core"}

#: What each top-level part of flowtel may import (besides itself). Bottom to top, in the order
#: of docs/architecture.md: definitions, the ground floor, the stages, the features that sit on
#: the stages, the assembler, the public faces.
ALLOWED: dict[str, set[str]] = {
    "semconv": set(),
    "exceptions": set(),
    "_core": {"semconv", "exceptions"},
    "_export": _BASE,
    "tracing": _BASE | {"_export"},
    "logs": _BASE | {"_export"},
    "resilience": _BASE,
    "errors": _BASE | {"tracing"},
    "sentry": _BASE | {"tracing", "errors"},
    "lifecycle": _BASE | {"tracing", "errors"},
    "fastapi": _BASE | {"lifecycle"},
    "_instrumentations": _BASE,
    "_pipelines": _BASE | {"_export"},
    "_configure": _BASE
    | {"_export", "tracing", "logs", "resilience", "errors", "sentry", "_instrumentations"}
    | {"_pipelines"},
    "testing": _BASE | {"flowtel", "_export", "tracing", "logs", "errors"},
    "distro": _BASE | {"flowtel", "_configure"},
    "_doctor": _BASE | {"flowtel", "_configure", "_export", "sentry"},
    "cli": _BASE | {"flowtel", "_doctor"},
    "__main__": {"cli"},
    "flowtel": _BASE
    | {"_configure", "_export", "tracing", "logs", "errors", "lifecycle", "fastapi"},
}


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(SRC).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


MODULES = _modules()


def _imports(path: Path) -> set[str]:
    """flowtel modules ``path`` imports anywhere but under ``if TYPE_CHECKING:``."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            if isinstance(child, ast.ImportFrom) and (child.module or "").startswith("flowtel"):
                assert child.module is not None
                for alias in child.names:
                    full = f"{child.module}.{alias.name}"
                    found.add(full if full in MODULES else child.module)
            elif isinstance(child, ast.Import):
                found.update(a.name for a in child.names if a.name.startswith("flowtel"))
            visit(child)

    visit(ast.parse(path.read_text()))
    return {name for name in found if name in MODULES}


GRAPH = {name: _imports(path) - {name} for name, path in MODULES.items()}


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "flowtel"


class TestImportGraph:
    def test_no_cycles(self) -> None:
        """No chain of imports leads from a module back to itself."""
        try:
            graphlib.TopologicalSorter(GRAPH).prepare()
        except graphlib.CycleError as exc:
            pytest.fail(f"import cycle: {' -> '.join(exc.args[1])}")

    def test_every_part_has_rules(self) -> None:
        """A new package or top-level module gets its place in the layering first."""
        assert {_part(m) for m in MODULES} <= set(ALLOWED), {_part(m) for m in MODULES} - set(
            ALLOWED
        )

    @pytest.mark.parametrize("module", sorted(MODULES))
    def test_imports_follow_the_layers(self, module: str) -> None:
        """Each module imports only from its own part and the parts below it."""
        part = _part(module)
        allowed = ALLOWED.get(part, set()) | {part}
        wrong = sorted(t for t in GRAPH[module] if _part(t) not in allowed)
        assert not wrong, f"{module} ({part}) may not import {wrong}"

    def test_no_feature_imports_the_assembler(self) -> None:
        """Only the public faces and the tools on top (doctor, distro) import
        flowtel._configure: features never call back up."""
        importers = {_part(m) for m, targets in GRAPH.items() if "flowtel._configure" in targets}
        assert importers <= {"flowtel", "distro", "_doctor"}


class TestExplicitWiring:
    def test_no_module_names_in_strings(self) -> None:
        """Features are plain imports: no import_module("flowtel...") anywhere in the package."""
        offenders = [
            str(path.relative_to(SRC))
            for path in MODULES.values()
            if "import_module(" in path.read_text() and '"flowtel' in path.read_text()
        ]
        assert not offenders

    def test_no_set_once_guard_resets(self) -> None:
        """Reconfiguration swaps delegates; nothing touches the API's set-once guards."""
        assert not [p for p in MODULES.values() if "_SET_ONCE" in p.read_text()]

    def test_importing_a_feature_installs_nothing(self) -> None:
        """No module configures anything at import: importing every module in a fresh
        interpreter leaves OpenTelemetry's globals and flowtel's hub untouched."""
        import subprocess
        import sys

        code = (
            "import importlib, sys\n"
            f"names = {sorted(m for m in MODULES if m != 'flowtel.__main__')!r}\n"
            "for n in names:\n"
            "    importlib.import_module(n)\n"
            "from opentelemetry import trace, metrics\n"
            "from flowtel._core._telemetry import HUB\n"
            "assert HUB.current is None and HUB.generation == 0, HUB.generation\n"
            "assert type(trace.get_tracer_provider()).__name__ == 'ProxyTracerProvider'\n"
            "assert type(metrics.get_meter_provider()).__name__ == '_ProxyMeterProvider'\n"
            "print('ok')\n"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
        )
        assert out.stdout.strip() == "ok", out.stderr[-2000:]

    def test_import_flowtel_stays_cheap(self) -> None:
        """``import flowtel`` loads neither the OpenTelemetry SDK nor any optional dependency."""
        import subprocess
        import sys

        code = (
            "import sys, flowtel\n"
            "heavy = ('opentelemetry.sdk', 'sentry_sdk', 'fastapi', 'grpc', 'prometheus_client')\n"
            "print(sorted(m for m in sys.modules if m.startswith(heavy)))\n"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
        )
        assert out.stdout.strip() == "[]", out.stdout + out.stderr[-2000:]


#: What a default ``configure_telemetry(exporter="otlp")`` must not load, and the first use that
#: loads each (``docs/architecture.md``, "Process start"): ``bench_startup.py`` measures the sum.
FIRST_USE = """
import sys, flowtel
from flowtel._core._scrub import current_scrubber
def loaded(name):
    return name in sys.modules
lazy = ("flowtel._export._encode", "flowtel._export._scrub", "flowtel.errors._points",
        "flowtel.errors._dimensions", "flowtel.errors._record", "flowtel.errors._query",
        "flowtel.errors._stats", "flowtel._core._scrub_rules", "flowtel._core._scrub_keys",
        "flowtel._core._sampling", "flowtel._core._features", "flowtel._core._elements",
        "flowtel._core._errors_settings", "flowtel._core._gauge", "flowtel.logs._stdout",
        "flowtel.logs._target", "flowtel.tracing._keep", "flowtel.tracing._tail")
telemetry = flowtel.configure_telemetry(service_name="lazy", exporter="otlp",
                                        otlp_endpoint="http://127.0.0.1:9")
print("start", sorted(n for n in lazy if loaded(n)))
current_scrubber().scrub_text("password=hunter2 here")
flowtel.get_error_stats(last_minutes=5)
flowtel.keep_trace()
flowtel.logs.JsonFormatter
import logging; logging.getLogger("lazy").warning("first record")
print("used", sorted(n for n in ("flowtel._core._scrub_rules", "flowtel._core._scrub_keys",
      "flowtel.errors._query", "flowtel.tracing._keep", "flowtel.logs._stdout",
      "flowtel.logs._target") if not loaded(n)))
telemetry.shutdown(timeout_s=1)
"""


class TestProcessStart:
    def test_configuring_loads_only_what_configuring_needs(self) -> None:
        """A default configuration loads none of the first-use modules; using each loads it."""
        import subprocess
        import sys

        out = subprocess.run(
            [sys.executable, "-c", FIRST_USE], capture_output=True, text=True, timeout=60
        )
        assert out.stdout.splitlines()[:2] == ["start []", "used []"], out.stdout + out.stderr


class TestSize:
    #: The one exception: the registry of every emitted name, one definition per line, kept in
    #: one module on purpose (a name is defined once, and docs and dashboards check against it).
    REGISTRY = "flowtel.semconv"

    @pytest.mark.parametrize("module", sorted(MODULES))
    def test_no_module_over_400_lines(self, module: str) -> None:
        """A module past 400 lines holds a second concept: split it by noun."""
        if module == self.REGISTRY:
            return
        lines = MODULES[module].read_text().count("\n")
        assert lines <= 400, f"{module} has {lines} lines"
