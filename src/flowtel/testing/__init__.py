"""Assert on the telemetry your code emits: spans, metrics, log records, error stats.

A pytest plugin (entry point ``pytest11``), so the ``telemetry`` fixture is available in every
test once flowtel is installed::

    def test_checkout(telemetry):
        checkout(order_id=42)  # your code: a span "checkout", a counter "orders.placed"
        assert telemetry.find_span("checkout").attributes["order.id"] == 42
        assert telemetry.metric_value("orders.placed", {"region": "eu"}) == 1

flowtel is configured once per session with in-memory exporters (``exporter="none"``), and every
test starts empty: no spans, no log records, metric values counted from zero. Configuring once
matters because OpenTelemetry binds a tracer to the provider that existed when it was first used
(``tracer = trace.get_tracer(__name__)`` at import time, instrumentation libraries); a new
provider per test would silently lose those spans. Options: override the ``flowtel_options``
fixture (session-wide), or mark one test with ``@pytest.mark.flowtel(**options)``, which
reconfigures for that test.

:class:`TelemetryCapture` is the same helper without pytest. Importing this module is cheap: the
OpenTelemetry SDK and flowtel's core load only when a capture is created, so having flowtel
installed never slows down or breaks a pytest run that does not use it.
"""

from __future__ import annotations

from flowtel.testing._capture import HistogramValue, TelemetryCapture

# The pytest11 entry point names this module: pytest finds the plugin's hooks and fixtures here.
from flowtel.testing._plugin import flowtel_options as flowtel_options
from flowtel.testing._plugin import pytest_configure as pytest_configure
from flowtel.testing._plugin import pytest_sessionfinish as pytest_sessionfinish
from flowtel.testing._plugin import telemetry as telemetry

__all__ = ["HistogramValue", "TelemetryCapture"]
