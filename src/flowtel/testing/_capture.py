"""TelemetryCapture: in-memory exporters and readers around one configured pipeline."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry.sdk._logs import ReadableLogRecord
    from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
    from opentelemetry.sdk.metrics.export import MetricReader, MetricsData
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from flowtel._core._telemetry import Telemetry

__all__ = ["HistogramValue", "TelemetryCapture"]


@dataclass(frozen=True, slots=True)
class HistogramValue:
    """A histogram point reduced to what tests assert on."""

    count: int
    sum: float
    min: float
    max: float
    bucket_counts: tuple[int, ...]
    explicit_bounds: tuple[float, ...]

    def merged(self, other: HistogramValue) -> HistogramValue:
        """This point plus a later delta of the same series."""
        same = self.explicit_bounds == other.explicit_bounds
        buckets = tuple(
            a + b for a, b in zip(self.bucket_counts, other.bucket_counts, strict=False)
        )
        return HistogramValue(
            count=self.count + other.count,
            sum=self.sum + other.sum,
            min=min(self.min, other.min),
            max=max(self.max, other.max),
            bucket_counts=buckets if same else (),
            explicit_bounds=self.explicit_bounds if same else (),
        )


def _read(reader: MetricReader) -> list[MetricsData]:
    """Every collection the reader holds: all of a DeltaCollector's, or an in-memory reader's."""
    drain = getattr(reader, "drain", None)
    if drain is not None:
        batches: list[MetricsData] = drain()
        return batches
    data = reader.get_metrics_data() if hasattr(reader, "get_metrics_data") else None
    return [data] if data is not None else []


def _hashable(value: Any) -> Any:
    return tuple(value) if isinstance(value, list | tuple) else value


class TelemetryCapture:
    """In-memory view of everything one piece of code exported.

    Reading spans, metrics or logs first force-flushes the pipeline, so batch processors never
    make a test flaky. Metric values are sums of what was recorded since the capture started or
    was last :meth:`reset` (gauges: the last value set in that time).

    Build it with :meth:`configure` (configures flowtel), or directly from in-memory exporters
    you wired into providers yourself. The metric reader should report DELTA temporality (as
    :meth:`configure` sets up); with a cumulative reader, values are read as totals.

    Args:
        span_exporter: receives finished spans.
        metric_reader: collected on every metric read: flowtel's DELTA collector (what
            :meth:`configure` uses) or an SDK ``InMemoryMetricReader``.
        log_exporter: receives log records.
        telemetry: the ``flowtel.Telemetry`` to flush and shut down (``None`` when you manage
            the providers yourself).
    """

    def __init__(
        self,
        span_exporter: InMemorySpanExporter,
        metric_reader: MetricReader,
        log_exporter: InMemoryLogRecordExporter,
        telemetry: Telemetry | None = None,
    ) -> None:
        self.span_exporter = span_exporter
        self.metric_reader = metric_reader
        self.log_exporter = log_exporter
        self.telemetry = telemetry
        self._points: dict[str, dict[Any, tuple[dict[str, Any], Any]]] = {}
        self._sums: set[str] = set()

    @classmethod
    def configure(cls, **options: Any) -> TelemetryCapture:
        """``configure_telemetry(exporter="none", force=True, **options)`` with in-memory sinks.

        ``options`` are any ``configure_telemetry`` keywords (``service_name``, ``sample_rate``,
        ``log_level`` ...); the in-memory exporters and ``force`` are added here.
        """
        from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        from flowtel import configure_telemetry
        from flowtel.testing._collector import DeltaCollector

        spans, reader = InMemorySpanExporter(), DeltaCollector()
        logs = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]
        options = {"service_name": "flowtel-test", "exporter": "none", **options}
        telemetry = configure_telemetry(
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

    def reset(self) -> None:
        """Start from nothing: forget spans, log records and metric values seen so far."""
        self.flush()
        self.span_exporter.clear()
        self.log_exporter.clear()
        _read(self.metric_reader)  # drain what was recorded so far
        self._points.clear()
        self._sums.clear()

    @property
    def is_active(self) -> bool:
        """True while this capture's telemetry is the one flowtel has configured."""
        if self.telemetry is None:
            return False
        from flowtel._core._telemetry import HUB

        return HUB.current is self.telemetry

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
        ``start``/``end`` are ranks among all timestamps, so the tree keeps ordering and nesting
        but no wall-clock values. Children are listed in start order.
        """
        spans = [s for s in self.spans if s.context is not None]
        spans.sort(key=lambda s: (s.start_time or 0, s.end_time or 0))
        times = sorted({t for s in spans for t in (s.start_time, s.end_time) if t is not None})
        rank = {t: i for i, t in enumerate(times)}
        trace_ids: dict[int, str] = {}
        span_ids: dict[int, str] = {}
        nodes: dict[int, dict[str, Any]] = {}
        for s in spans:
            ctx = s.context
            assert ctx is not None  # filtered above; narrows the type
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
        roots: list[dict[str, Any]] = []
        for s in spans:
            node = nodes[s.context.span_id]
            parent = nodes.get(s.parent.span_id) if s.parent is not None else None
            (parent["children"] if parent is not None else roots).append(node)
        return roots

    # ---------------------------------------------------------------- metrics
    def _collect(self) -> None:
        """Fold every collection since the last read into the per-series values."""
        for data in _read(self.metric_reader):
            self._fold(data)

    def _fold(self, data: MetricsData) -> None:
        from opentelemetry.sdk.metrics.export import AggregationTemporality, Sum

        for rm in data.resource_metrics:
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    kind = metric.data
                    cumulative = (
                        getattr(kind, "aggregation_temporality", None)
                        is AggregationTemporality.CUMULATIVE
                    )
                    if isinstance(kind, Sum):
                        self._sums.add(metric.name)
                    series = self._points.setdefault(metric.name, {})
                    for p in kind.data_points:
                        attrs = dict(p.attributes or {})
                        key = tuple(sorted((k, _hashable(v)) for k, v in attrs.items()))
                        value = _point_value(p)
                        old = series.get(key)
                        if old is not None and not cumulative:
                            if isinstance(value, HistogramValue):
                                value = old[1].merged(value)
                            elif isinstance(kind, Sum):
                                value = old[1] + value
                        series[key] = (attrs, value)

    def metric_points(self, name: str) -> list[tuple[dict[str, Any], int | float | HistogramValue]]:
        """``(attributes, value)`` for every series of metric ``name``."""
        self._collect()
        return list(self._points.get(name, {}).values())

    def metric_names(self) -> list[str]:
        """Names of every metric recorded so far, sorted."""
        self._collect()
        return sorted(self._points)

    def metric_value(
        self, name: str, attributes: Mapping[str, Any] | None = None
    ) -> int | float | HistogramValue:
        """Value of metric ``name`` over the series whose attributes include ``attributes``.

        Counters and up-down counters add up across matching series; a gauge or histogram must
        match exactly one series.

        Raises:
            LookupError: nothing matches, or several gauge/histogram series match.
        """
        wanted = dict(attributes or {})
        points = self.metric_points(name)
        matching = [v for attrs, v in points if wanted.items() <= attrs.items()]
        if not matching:
            seen = [attrs for attrs, _ in points] or sorted(self._points)
            raise LookupError(f"no point of {name!r} has attributes {wanted}; saw: {seen}")
        if len(matching) == 1:
            return matching[0]
        if name not in self._sums:
            raise LookupError(f"{len(matching)} points of {name!r} match {wanted}; be specific")
        return sum(v for v in matching if not isinstance(v, HistogramValue))

    # ---------------------------------------------------------------- logs
    @property
    def logs(self) -> list[ReadableLogRecord]:
        """Exported log records, oldest first."""
        self.flush()
        return list(self.log_exporter.get_finished_logs())

    def log_messages(self, min_severity: int = 0) -> list[str]:
        """Bodies of exported log records at or above an OTel severity number (WARN is 13)."""
        out = []
        for r in self.logs:
            sev = r.log_record.severity_number
            if sev is None or sev.value >= min_severity:
                out.append(str(r.log_record.body))
        return out

    # ---------------------------------------------------------------- errors
    def error_stats(self, *args: Any, **kwargs: Any) -> Any:
        """``flowtel.get_error_stats(*args, **kwargs)``: exact error counts and rates.

        Process-wide, like the function itself: under the session-wide fixture they include
        earlier tests of the session. For numbers of one test only, compare before and after,
        or use a fresh :meth:`configure` (``@pytest.mark.flowtel(...)`` does that).
        """
        from flowtel.errors import get_error_stats

        return get_error_stats(*args, **kwargs)


def _point_value(point: Any) -> int | float | HistogramValue:
    if hasattr(point, "explicit_bounds"):
        return HistogramValue(
            point.count,
            point.sum,
            point.min,
            point.max,
            tuple(point.bucket_counts),
            tuple(point.explicit_bounds),
        )
    if hasattr(point, "value"):
        value: int | float = point.value
        return value
    return HistogramValue(point.count, point.sum, point.min, point.max, (), ())  # exponential


# -------------------------------------------------------------------- pytest plugin
