"""The defaults a configured pipeline runs with are the classes' own defaults, and the documented
ones: batch delay 1 s, export timeout 10 s, shutdown budget 3 s (issue 13: they used to differ)."""

from __future__ import annotations

import inspect
from typing import Any

import flowtel
from flowtel._export._batch import BoundedBatchSpanProcessor
from flowtel._export._guard import ExportGuard


def _batch_processor(telemetry: flowtel.Telemetry) -> BoundedBatchSpanProcessor:
    provider: Any = telemetry.tracer_provider
    processors = provider._active_span_processor._span_processors  # the SDK's, for a test only
    return next(p for p in processors if isinstance(p, BoundedBatchSpanProcessor))


def _default(cls: type, name: str) -> object:
    return inspect.signature(cls).parameters[name].default


def test_a_configured_pipeline_runs_the_classes_defaults() -> None:
    telemetry = flowtel.configure_telemetry(
        service_name="defaults", exporter="otlp", otlp_endpoint="http://127.0.0.1:9", force=True
    )
    try:
        settings = telemetry.settings
        assert (settings.batch_schedule_delay_s, settings.batch_export_timeout_s) == (1.0, 10.0)
        assert settings.shutdown_timeout_s == 3.0
        batch = _batch_processor(telemetry)
        assert batch._queue._schedule_delay_s == settings.batch_schedule_delay_s
        assert _default(BoundedBatchSpanProcessor, "schedule_delay_s") == 1.0
        guard = telemetry.export_guard
        assert guard is not None
        assert guard.export_timeout_s == settings.batch_export_timeout_s
        assert guard.shutdown_timeout_s == settings.shutdown_timeout_s
        assert _default(ExportGuard, "export_timeout_s") == settings.batch_export_timeout_s
        assert _default(ExportGuard, "shutdown_timeout_s") == settings.shutdown_timeout_s
    finally:
        telemetry.shutdown(timeout_s=1)
