"""The private-state shortcuts of flowtel._core._compat: verified here, with a working fallback.

CI runs this on the oldest and the newest SDK release pyproject.toml admits, so a release that
changes an internal shows up as a failed probe here, not as wrong telemetry.
"""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import flowtel
from flowtel._core import _compat
from flowtel.tracing import _provider


@flowtel.traced(component="payments", operation="charge", attributes={"tier": "gold"})
def charge() -> str:
    return "ok"


def _export_one(configure: Any) -> dict[str, Any]:
    exporter = InMemorySpanExporter()
    configure(span_exporters=[exporter])
    charge()
    (span,) = exporter.get_finished_spans()
    return dict(span.attributes or {})


class TestProbes:
    def test_every_shortcut_is_verified_on_this_sdk(self) -> None:
        """On a supported SDK every probe passes: the shortcuts are in use, not silently off."""
        assert _compat.span_attribute_dict_ok()
        assert _compat.direct_span_reads
        reader = InMemoryMetricReader()
        MeterProvider(metric_readers=[reader])
        assert _compat.reader_collect_hooks(reader) is not None
        assert _compat.API_PROXY_METER_PROVIDER is not None
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        assert _compat.otlp_grpc_bytes_hooks_ok(OTLPSpanExporter)
        assert not _compat.otlp_grpc_bytes_hooks_ok(object)

    def test_an_object_without_the_hooks_is_refused(self) -> None:
        """A reader without the collect hooks is reported as such, never half-used."""
        assert _compat.reader_collect_hooks(object()) is None


class TestFallback:
    def test_attribute_preset_and_public_path_export_the_same(
        self, configure: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """With the span-attribute shortcut refused, @traced exports identical attributes."""
        fast = _export_one(configure)
        monkeypatch.setattr(_provider, "_layout", False)
        slow = _export_one(configure)
        assert list(fast.items()) == list(slow.items())
        assert fast["tier"] == "gold"
