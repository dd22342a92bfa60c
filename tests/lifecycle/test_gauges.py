"""Readiness (and lifecycle) gauges: every live object reports, on the provider it belongs to.

An observable instrument's name exists once per provider, so two monitors that each created
"their" gauge used to lose the second one's callback; and objects following the global
provider must move to a newly configured one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

import flowtel
from flowtel import semconv
from flowtel.lifecycle import ReadinessMonitor


def _points(reader: InMemoryMetricReader, name: str) -> list[dict[str, Any]]:
    data = reader.get_metrics_data()
    if data is None:
        return []
    return [
        {**dict(p.attributes or {}), "value": p.value}
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
        if m.name == name
        for p in m.data.data_points
    ]


async def _run_once(monitor: ReadinessMonitor) -> None:
    monitor.start()
    deadline = asyncio.get_running_loop().time() + 10
    while any(s.ok is None for s in monitor.statuses().values()):
        assert asyncio.get_running_loop().time() < deadline, "checks never ran"
        await asyncio.sleep(0.01)  # polling, bounded by the deadline
    await monitor.stop()


def test_two_readiness_monitors_on_one_provider_both_report() -> None:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    first, second = (
        ReadinessMonitor(meter_provider=provider),
        ReadinessMonitor(meter_provider=provider),
    )
    first.add(lambda: True, name="database", interval_s=60)
    second.add(lambda: False, name="llm_api", interval_s=60)
    asyncio.run(_run_once(first))
    asyncio.run(_run_once(second))
    checks = {p[semconv.READINESS_CHECK]: p["value"] for p in _points(
        reader, semconv.METRIC_READINESS_CHECK_STATUS
    )}  # fmt: skip
    assert checks == {"database": 1, "llm_api": 0}
    provider.shutdown()


def test_a_monitor_following_the_global_provider_moves_with_it(
    configure: Callable[..., flowtel.Telemetry],
) -> None:
    """Started under one configuration, reported by the next one too (configure force=True)."""
    first, second = InMemoryMetricReader(), InMemoryMetricReader()
    configure(exporter="none", metric_readers=[first])
    monitor = ReadinessMonitor()
    monitor.add(lambda: True, name="database", interval_s=60)
    asyncio.run(_run_once(monitor))
    assert _points(first, semconv.METRIC_READINESS_CHECK_STATUS)
    configure(exporter="none", metric_readers=[second])
    points = _points(second, semconv.METRIC_READINESS_CHECK_STATUS)
    assert {p[semconv.READINESS_CHECK] for p in points} >= {"database"}
