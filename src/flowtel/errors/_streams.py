"""Cumulative metric streams: one per (key, status, error type), with its duration histogram.

Why here and not in the SDK: each measurement through an SDK instrument costs more than the
rest of a span's bookkeeping. A stream is a few integers and lists updated in place, read by the
observable counters and handed to the metric readers pre-aggregated (see ``_producer``).

Exemplars follow the SDK's defaults for an explicit-bucket histogram: the ``trace_based`` filter
(only measurements made in a sampled span) and one exemplar per bucket, the latest, as the SDK's
``AlignedHistogramBucketExemplarReservoir`` keeps them.
"""

from __future__ import annotations

import math
from typing import Final

from opentelemetry.util.types import AttributeValue

from flowtel import semconv
from flowtel._core._scrub import current_scrubber

Key = tuple[str, str]
"""(component, operation)."""

Attributes = dict[str, AttributeValue]
"""Metric attributes of one stream; built once per stream and reused."""

Dims = tuple[str | None, ...]
"""A span's values of the configured ``error_dimensions``, in their order (None: absent)."""

NO_DIMS: Final[Dims] = ()
"""The dimension values when no dimensions are configured."""

StreamId = tuple[Key, Dims, str, str | None]
"""(key, dimension values, status, error type): a stream's identity across collections."""

OVERFLOW_VALUE: Final = semconv.OVERFLOW_KEY
"""A dimension value beyond the cap on distinct values (or on value combinations)."""


class ExemplarSample(tuple[float, int, int, int]):
    """The latest sampled measurement of one histogram bucket: ``(value, time_ns, trace_id,
    span_id)``. A plain tuple subclass: built on the span-end path, and defined without the code
    generation of ``NamedTuple``."""

    __slots__ = ()

    def __new__(cls, value: float, time_ns: int, trace_id: int, span_id: int) -> ExemplarSample:
        return tuple.__new__(cls, (value, time_ns, trace_id, span_id))

    @property
    def value(self) -> float:
        return self[0]

    @property
    def time_ns(self) -> int:
        return self[1]

    @property
    def trace_id(self) -> int:
        return self[2]

    @property
    def span_id(self) -> int:
        return self[3]


def stream_attributes(
    key: Key, status: str, error_type: str | None = None, extra: Attributes | None = None
) -> Attributes:
    """Metric attributes of a stream; component and operation are scrubbed once, here.

    Operations default to span names, which may carry secrets ("GET /reset?token=..."), and
    these become exported metric labels.
    """
    scrubber = current_scrubber()
    attributes: Attributes = {
        semconv.COMPONENT: scrubber.scrub_text(key[0]),
        semconv.OPERATION: scrubber.scrub_text(key[1]),
        semconv.OTEL_STATUS_CODE: status,
    }
    if error_type is not None:
        attributes[semconv.ERROR_TYPE] = error_type
    if extra:
        attributes.update(extra)
    return attributes


_NO_INTERVALS: Final[list[float]] = []


class Stream:
    """One calls stream (key, status, error type): its cumulative count and duration histogram.

    The histogram follows OTel explicit-bucket semantics: bucket ``i`` counts values in
    ``(bounds[i-1], bounds[i]]``, the last one everything above. Its count is the sum of the
    bucket counts, so it needs no counter of its own.
    """

    __slots__ = ("attributes", "calls", "counts", "exemplars", "hi", "lo", "max", "min",
                 "status", "sum")  # fmt: skip

    def __init__(self, attributes: Attributes, status: str, buckets: int, intervals: int) -> None:
        self.attributes = attributes  # built once; reused for every metric point
        self.status = status
        self.calls = 0
        self.counts = [0] * buckets
        self.sum = 0.0
        self.min = math.inf
        self.max = -math.inf
        # Min and max since the last collection of each DELTA reader (they do not decompose).
        # Without DELTA readers (the usual case) every stream shares one empty list, never
        # mutated: two objects fewer per stream for each garbage-collector pass to scan.
        self.lo = [math.inf] * intervals if intervals else _NO_INTERVALS
        self.hi = [-math.inf] * intervals if intervals else _NO_INTERVALS
        self.exemplars: list[ExemplarSample | None] | None = None  # per bucket, on first sample
