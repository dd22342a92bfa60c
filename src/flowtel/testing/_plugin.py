"""The pytest plugin: the ``telemetry`` fixture and the ``flowtel`` marker."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from flowtel.testing._capture import TelemetryCapture

_MARKER = "flowtel"


class _Session:
    """The capture shared by the tests of one session, rebuilt only when options change."""

    capture: TelemetryCapture | None = None
    options: dict[str, Any] | None = None

    @classmethod
    def get(cls, options: dict[str, Any]) -> TelemetryCapture:
        capture = cls.capture
        if capture is None or cls.options != options or not capture.is_active:
            if capture is not None:
                capture.close()
            capture = cls.capture = TelemetryCapture.configure(**options)
            cls.options = dict(options)
        else:
            capture.reset()
        _logging(capture, on=True)
        return capture

    @classmethod
    def close(cls) -> None:
        if cls.capture is not None:
            cls.capture.close()
            cls.capture = None


def _logging(capture: TelemetryCapture, on: bool) -> None:
    """Route stdlib logging to the capture for one test only.

    Re-attached per test (a previous test may have removed it) and removed afterwards, so the
    root logger's level and handlers are unchanged for tests that do not use the fixture.
    """
    telemetry = capture.telemetry
    if telemetry is None or not telemetry.settings.logging:
        return
    from flowtel.logs import _handler

    if not on:
        _handler.uninstrument_logging()
    elif not _handler.is_instrumented(telemetry.logger_provider):
        options = _handler.options_from(telemetry.settings)
        _handler.instrument_logging(telemetry.logger_provider, **options)


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``flowtel`` marker so ``--strict-markers`` accepts it."""
    config.addinivalue_line(
        "markers",
        f"{_MARKER}(**options): configure_telemetry() options for the telemetry fixture",
    )


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Shut the shared telemetry down when the test session ends."""
    _Session.close()


@pytest.fixture(scope="session")
def flowtel_options() -> dict[str, Any]:
    """``configure_telemetry()`` options for the ``telemetry`` fixture; override in conftest."""
    return {}


@pytest.fixture
def telemetry(
    request: pytest.FixtureRequest, flowtel_options: dict[str, Any]
) -> Iterator[TelemetryCapture]:
    """flowtel with in-memory exporters; starts empty for every test."""
    options = dict(flowtel_options)
    marker = request.node.get_closest_marker(_MARKER)
    if marker is not None:
        options.update(marker.kwargs)
    capture = _Session.get(options)
    try:
        yield capture
    finally:
        _logging(capture, on=False)
