"""flowtel.testing as a pytest plugin, exercised the way users run it: pytest in a subprocess."""

from __future__ import annotations

import importlib.metadata
import sys
import tomllib
from pathlib import Path

import pytest

import flowtel

SRC = Path(flowtel.__file__).resolve().parent.parent
ROOT = SRC.parent

USER_TESTS = """
import logging

import pytest
from opentelemetry import metrics, trace

import flowtel

tracer = trace.get_tracer("shop")  # bound once, at first use: the fixture must not replace it
orders = metrics.get_meter("shop").create_counter("orders")


def place_order(region):
    with tracer.start_as_current_span("place_order", attributes={"region": region}):
        with flowtel.span("db.insert"):
            logging.getLogger("shop").info("order stored")
        orders.add(1, {"region": region})


@pytest.mark.parametrize("run", [1, 2, 3])
def test_each_test_starts_empty(telemetry, run):
    place_order("eu")
    assert telemetry.find_span("db.insert").parent.span_id == (
        telemetry.find_span("place_order").context.span_id
    )
    assert telemetry.log_messages() == ["order stored"]
    assert telemetry.metric_value("orders", {"region": "eu"}) == 1
    assert [n["name"] for n in telemetry.span_tree()] == ["place_order"]


def test_session_options(telemetry):
    place_order("us")
    assert telemetry.find_span("place_order").resource.attributes["service.name"] == "shop-tests"


@pytest.mark.flowtel(service_name="billing")
def test_marker(telemetry):
    with flowtel.span("invoice"):
        pass
    assert telemetry.find_span("invoice").resource.attributes["service.name"] == "billing"


def test_without_fixture_logging_is_untouched():
    root = logging.getLogger()
    assert root.level == logging.WARNING
    assert [type(h).__name__ for h in root.handlers if "OTel" in type(h).__name__] == []
"""

USER_CONFTEST = """
import pytest


@pytest.fixture(scope="session")
def flowtel_options():
    return {"service_name": "shop-tests"}
"""


def _plugin_args() -> list[str]:
    """``-p flowtel.testing`` only when the installed metadata lacks the entry point."""
    installed = importlib.metadata.entry_points(group="pytest11", name="flowtel")
    return [] if installed else ["-p", "flowtel.testing"]


@pytest.fixture
def user_project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A throwaway project whose tests import this checkout's flowtel."""
    monkeypatch.setenv("PYTHONPATH", str(SRC))
    pytester.makeini("[pytest]\nfilterwarnings = error\naddopts = --strict-markers\n")
    return pytester


class TestPlugin:
    def test_users_tests_pass(self, user_project: pytest.Pytester) -> None:
        """Fixture, options and marker work; module tracers survive; other tests are untouched."""
        user_project.makeconftest(USER_CONFTEST)
        user_project.makepyfile(test_shop=USER_TESTS)
        result = user_project.runpytest_subprocess(*_plugin_args(), "-q")
        result.assert_outcomes(passed=6)

    def test_failing_assertion_reports_span_names(self, user_project: pytest.Pytester) -> None:
        """A wrong span name fails the user's test with the names that do exist."""
        user_project.makepyfile(
            test_wrong="""
import flowtel

def test_wrong(telemetry):
    with flowtel.span("real"):
        pass
    telemetry.find_span("imagined")
"""
        )
        result = user_project.runpytest_subprocess(*_plugin_args(), "-q")
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(["*LookupError: expected 1 span named 'imagined'*'real'*"])

    def test_plugin_import_is_cheap(self, user_project: pytest.Pytester) -> None:
        """Loading the plugin imports neither the OTel SDK nor optional integrations."""
        user_project.makepyfile(
            test_cheap="""
import sys

def test_nothing_heavy_loaded():
    heavy = ("opentelemetry.sdk", "sentry_sdk", "fastapi", "grpc", "prometheus_client")
    assert [m for m in sys.modules if m.startswith(heavy)] == []
"""
        )
        result = user_project.runpytest_subprocess(*_plugin_args(), "-q", "-p", "no:anyio")
        result.assert_outcomes(passed=1)

    def test_entry_point_declared(self) -> None:
        """pyproject registers flowtel.testing under the pytest11 entry point group."""
        pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
        assert pyproject["project"]["entry-points"]["pytest11"] == {"flowtel": "flowtel.testing"}
        assert "flowtel.testing" in sys.modules
