"""Assert on the telemetry your code emits: spans, metrics, log records, error stats.

A pytest plugin (entry point ``pytest11``), so the ``telemetry`` fixture is available in every
test once flowtel is installed::

    def test_checkout(telemetry):
        checkout(order_id=42)  # your code: a span "checkout", a counter "orders.placed"
        assert telemetry.find_span("checkout").attributes["order.id"] == 42
        assert telemetry.metric_value("orders.placed", {"region": "eu"}) == 1

The fixture calls ``configure_telemetry(exporter="none", force=True, ...)`` with in-memory
exporters for one test and shuts it down afterwards. :class:`TelemetryCapture` is the same
helper without pytest. Options for one test come from ``@pytest.mark.flowtel(**options)``.

Importing this module is cheap: OpenTelemetry's SDK and flowtel's core are imported only when
a capture is created, so merely having flowtel installed never slows down or breaks a pytest run.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from opentelemetry.sdk._logs import ReadableLogRecord
    from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

__all__ = ["HistogramValue", "TelemetryCapture"]

_MARKER = "flowtel"


@dataclass(frozen=True, slots=True)
class HistogramValue:
    """A histogram point reduced to what tests assert on."""

    count: int
    sum: float
    min: float
    max: float
    bucket_counts: tuple[int, ...]
    explicit_bounds: tuple[float, ...]


class TelemetryCapture:
    """In-memory view of everything one piece of code exported.

    Reading spans, metrics or logs first force-flushes the pipeline, so batch processors never
    make a test flaky. Build it with :meth:`configure` (configures flowtel) or directly from
    in-memory exporters you wired into your own providers.

    Args:
        span_exporter: receives finished spans.
        metric_reader: collected on every metric read.
        log_exporter: receives log records.
        telemetry: the ``flowtel.Telemetry`` to flush and shut down (``None`` when you manage
            providers yourself; then pass ``flush`` to make reads see batched data).
    """

    def __init__(
        self,
        span_exporter: InMemorySpanExporter,
        metric_reader: InMemoryMetricReader,
        log_exporter: InMemoryLogRecordExporter,
        telemetry: Any = None,
    ) -> None:
        self.span_exporter = span_exporter
        self.metric_reader = metric_reader
        self.log_exporter = log_exporter
        self.telemetry = telemetry

    @classmethod
    def configure(cls, **options: Any) -> TelemetryCapture:
        """``configure_telemetry(exporter="none", force=True, **options)`` with in-memory sinks.

        ``options`` are any ``configure_telemetry`` keywords (``service_name``, ``sample_rate``,
        ``log_level`` ...); the exporters and ``force`` are set here.
        """
        from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        flowtel = importlib.import_module("flowtel")
        spans, reader, logs = (
            InMemorySpanExporter(),
            InMemoryMetricReader(),
            InMemoryLogRecordExporter(),  # type: ignore[no-untyped-call]
        )
        options.setdefault("service_name", "flowtel-test")
        options.setdefault("exporter", "none")
        telemetry = flowtel.configure_telemetry(
            span_exporters=[spans],
            metric_readers=[reader],
            log_exporters=[logs],
            force=True,
            **options,
        )
        return cls(spans, reader, logs, telemetry)

    # ---------------------------------------------------------------- lifecycle
    def flush(self) -> None:
        """Push everything buffered to the in-memory exporters."""
        if self.telemetry is not None:
            self.telemetry.force_flush()

    def clear(self) -> None:
        """Forget spans and logs captured so far (metrics are cumulative and stay)."""
        self.flush()
        self.span_exporter.clear()
        self.log_exporter.clear()

    def close(self) -> None:
        """Shut the configured telemetry down (idempotent)."""
        if self.telemetry is not None:
            self.telemetry.shutdown()
            self.telemetry = None

    def __enter__(self) -> TelemetryCapture:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------- spans
    @property
    def spans(self) -> list[ReadableSpan]:
        """Finished spans, in the order they ended."""
        self.flush()
        return list(self.span_exporter.get_finished_spans())

    def find_spans(self, name: str) -> list[ReadableSpan]:
        """All finished spans called ``name``."""
        return [s for s in self.spans if s.name == name]

    def find_span(self, name: str) -> ReadableSpan:
        """The one finished span called ``name``.

        Raises:
            LookupError: none or several spans have that name (the message lists the names).
        """
        found = self.find_spans(name)
        if len(found) != 1:
            names = sorted({s.name for s in self.spans})
            raise LookupError(f"expected 1 span named {name!r}, found {len(found)}; spans: {names}")
        return found[0]

    def span_tree(self, *, attributes: bool = True) -> list[dict[str, Any]]:
        """Finished spans as nested dicts, stable across runs (snapshot-friendly).

        Trace and span ids are renumbered (``"t1"``, ``"s1"`` ...) in start order, and
        ``start``/``end`` are ranks of all timestamps, so the tree keeps ordering and nesting
        but no wall-clock values. Children are listed in start order.
        """
        spans = sorted(self.spans, key=lambda s: (s.start_time or 0, s.end_time or 0))
        times = sorted({t for s in spans for t in (s.start_time, s.end_time) if t is not None})
        rank = {t: i for i, t in enumerate(times)}
        trace_ids: dict[int, str] = {}
        span_ids: dict[int, str] = {}
        nodes: dict[int, dict[str, Any]] = {}
        roots: list[dict[str, Any]] = []
        for s in spans:
            ctx = s.context
            if ctx is None:
                continue
            trace_ids.setdefault(ctx.trace_id, f"t{len(trace_ids) + 1}")
            span_ids.setdefault(ctx.span_id, f"s{len(span_ids) + 1}")
            node: dict[str, Any] = {
                "name": s.name,
                "trace_id": trace_ids[ctx.trace_id],
                "span_id": span_ids[ctx.span_id],
                "kind": s.kind.name,
                "status": s.status.status_code.name,
                "start": rank.get(s.start_time or 0),
                "end": rank.get(s.end_time or 0),
            }
            if attributes:
                node["attributes"] = dict(sorted((s.attributes or {}).items()))
                node["events"] = [
                    {"name": e.name, "attributes": dict(sorted((e.attributes or {}).items()))}
                    for e in s.events
                ]
            node["children"] = []
            nodes[ctx.span_id] = node
        for s in spans:
            if s.context is None:
                continue
            node = nodes[s.context.span_id]
            parent = nodes.get(s.parent.span_id) if s.parent is not None else None
            (parent["children"] if parent is not None else roots).append(node)
        return roots

    # ---------------------------------------------------------------- metrics
    def metric_points(self, name: str) -> list[tuple[dict[str, Any], int | float | HistogramValue]]:
        """``(attributes, value)`` for every point of metric ``name`` (collects now)."""
        self.flush()
        data = self.metric_reader.get_metrics_data()
        points: list[tuple[dict[str, Any], int | float | HistogramValue]] = []
        for rm in data.resource_metrics if data is not None else ():
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    if metric.name != name:
                        continue
                    for p in metric.data.data_points:
                        points.append((dict(p.attributes or {}), _point_value(p)))
        return points

    def metric_names(self) -> list[str]:
        """Names of every metric collected so far, sorted."""
        data = self.metric_reader.get_metrics_data()
        return sorted(
            {
                m.name
                for rm in (data.resource_metrics if data is not None else ())
                for sm in rm.scope_metrics
                for m in sm.metrics
            }
        )

    def metric_value(
        self, name: str, attributes: Mapping[str, Any] | None = None
    ) -> int | float | HistogramValue:
        """Value of metric ``name`` over the points whose attributes include ``attributes``.

        Counters and up-down counters add up across matching points; a gauge or histogram must
        match exactly one point.

        Raises:
            LookupError: no point matches, or several gauge/histogram points match.
        """
        wanted = dict(attributes or {})
        points = self.metric_points(name)
        matching = [v for attrs, v in points if wanted.items() <= attrs.items()]
        if not matching:
            seen = [attrs for attrs, _ in points] or self.metric_names()
            raise LookupError(f"no point of {name!r} has attributes {wanted}; saw: {seen}")
        if len(matching) == 1:
            return matching[0]
        if any(isinstance(v, HistogramValue) for v in matching) or not self._is_sum(name):
            raise LookupError(f"{len(matching)} points of {name!r} match {wanted}; be specific")
        return sum(v for v in matching if not isinstance(v, HistogramValue))

    def _is_sum(self, name: str) -> bool:
        from opentelemetry.sdk.metrics.export import Sum

        data = self.metric_reader.get_metrics_data()
        return any(
            isinstance(m.data, Sum)
            for rm in (data.resource_metrics if data is not None else ())
            for sm in rm.scope_metrics
            for m in sm.metrics
            if m.name == name
        )

    # ---------------------------------------------------------------- logs
    @property
    def logs(self) -> list[ReadableLogRecord]:
        """Exported log records, oldest first."""
        self.flush()
        return list(self.log_exporter.get_finished_logs())

    def log_messages(self, min_severity: int = 0) -> list[str]:
        """Bodies of exported log records at or above an OTel severity number."""
        out = []
        for r in self.logs:
            sev = r.log_record.severity_number
            if sev is None or sev.value >= min_severity:
                out.append(str(r.log_record.body))
        return out

    # ---------------------------------------------------------------- errors
    def error_stats(self, *args: Any, **kwargs: Any) -> Any:
        """``flowtel.get_error_stats(*args, **kwargs)``: the exact error counts and rates."""
        errors = importlib.import_module("flowtel.errors")
        return errors.get_error_stats(*args, **kwargs)


def _point_value(point: Any) -> int | float | HistogramValue:
    if hasattr(point, "bucket_counts"):
        return HistogramValue(
            count=point.count,
            sum=point.sum,
            min=point.min,
            max=point.max,
            bucket_counts=tuple(point.bucket_counts),
            explicit_bounds=tuple(point.explicit_bounds),
        )
    if hasattr(point, "value"):
        value: int | float = point.value
        return value
    return HistogramValue(point.count, point.sum, point.min, point.max, (), ())


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``flowtel`` marker so ``--strict-markers`` accepts it."""
    config.addinivalue_line(
        "markers",
        f"{_MARKER}(**options): configure_telemetry() options for the telemetry fixture",
    )


@pytest.fixture
def telemetry(request: pytest.FixtureRequest) -> Iterator[TelemetryCapture]:
    """flowtel configured with in-memory exporters for this test, shut down afterwards."""
    marker = request.node.get_closest_marker(_MARKER)
    options: dict[str, Any] = dict(marker.kwargs) if marker is not None else {}
    capture = TelemetryCapture.configure(**options)
    try:
        yield capture
    finally:
        capture.close()
