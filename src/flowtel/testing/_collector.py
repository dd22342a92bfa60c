"""The metric reader behind :class:`flowtel.testing.TelemetryCapture`.

Why not the SDK's ``InMemoryMetricReader``: it keeps only the *last* collection. Every
``MeterProvider.force_flush()`` collects every reader, so a flush in between (``Telemetry.
force_flush()``, reading spans) would throw away the measurements of a DELTA reader before the
test reads them. This reader keeps every collection until it is drained.
"""

from __future__ import annotations

import threading
from typing import Any

from opentelemetry.sdk.metrics import (
    Counter,
    Histogram,
    ObservableCounter,
    ObservableUpDownCounter,
    UpDownCounter,
)
from opentelemetry.sdk.metrics.export import AggregationTemporality, MetricReader, MetricsData

__all__ = ["DeltaCollector"]

try:  # the SDK still marks the synchronous gauge experimental
    from opentelemetry.sdk.metrics import _Gauge as Gauge

    _KINDS: tuple[type, ...] = (
        Counter,
        UpDownCounter,
        Histogram,
        ObservableCounter,
        ObservableUpDownCounter,
        Gauge,
    )
except ImportError:  # pragma: no cover - older SDKs
    _KINDS = (Counter, UpDownCounter, Histogram, ObservableCounter, ObservableUpDownCounter)


class DeltaCollector(MetricReader):
    """Collects DELTA metric data and keeps every collection until :meth:`drain`.

    Threading: ``collect`` may run on any thread (a flush, the test); the buffer is guarded by a
    lock and only grows between drains, which the capture does on every read and reset.
    """

    def __init__(self) -> None:
        super().__init__(preferred_temporality=dict.fromkeys(_KINDS, AggregationTemporality.DELTA))
        self._lock = threading.Lock()
        self._batches: list[MetricsData] = []

    def _receive_metrics(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> None:
        if metrics_data is None:
            return
        with self._lock:
            self._batches.append(metrics_data)

    def drain(self) -> list[MetricsData]:
        """Collect now and return every collection since the last drain, oldest first."""
        self.collect()
        with self._lock:
            batches, self._batches = self._batches, []
        return batches

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        """Nothing to release."""
