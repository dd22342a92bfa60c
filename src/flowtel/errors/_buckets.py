"""Per-operation counters: a fixed ring of time buckets plus cumulative metric totals.

Why a ring of per-key lists: memory is ``keys x slots`` whatever the span volume, counting is a
few increments on one per-key object, and a query sums one or two list slices per key (C-speed
``sum``), so its cost depends on the number of keys, never on how many spans were counted.
Calls, errors and handled errors share one packed integer per slot (40 bits each) so a query
needs one ``sum`` for all three. The cumulative totals beside the ring feed the observable
counters, and each key keeps its metric attribute dicts so the hot path never builds one.
Durations go into one cumulative explicit-bucket histogram per metric stream (a ``bisect`` and a
few increments), which :mod:`flowtel._metric_producer` hands to the metric readers: the same
numbers the SDK's histogram would export, at a fraction of its per-measurement cost.

Not thread-safe by itself: :class:`flowtel.errors.ErrorRateProcessor` serialises access with one
short lock.
"""

import math
from bisect import bisect_left
from collections.abc import Callable, Mapping, Sequence
from typing import Final, NamedTuple

from opentelemetry.trace import StatusCode
from opentelemetry.util.types import AttributeValue

from flowtel import semconv
from flowtel._core._scrub import current_scrubber

OTHER_TYPE: Final = "_OTHER"
"""Error type used when a span failed without a type, or a key has too many distinct types."""

MAX_TYPES_PER_KEY: Final = 16
"""Distinct error types tracked per (component, operation); more fold into :data:`OTHER_TYPE`."""

Key = tuple[str, str]
"""(component, operation)."""

OVERFLOW: Final[Key] = (semconv.OVERFLOW_KEY, semconv.OVERFLOW_KEY)

Attributes = dict[str, AttributeValue]
"""Metric attributes of one stream; built once per stream and reused."""

_SHIFT: Final = 40
_MASK: Final = (1 << _SHIFT) - 1
_CALL: Final = 1
_FAILED_CALL: Final = 1 | (1 << _SHIFT)
_HANDLED: Final = 1 << (2 * _SHIFT)
_ERROR: Final = StatusCode.ERROR
_OK: Final = StatusCode.OK


class KeyTotals(NamedTuple):
    """Counts of one key summed over a range of buckets."""

    total: int
    errors: int
    handled: int
    by_type: dict[str, int]


def _attributes(key: Key, status: str, error_type: str | None = None) -> Attributes:
    # Operations default to span names, which may carry secrets ("GET /reset?token=..."):
    # scrub them here, once per key and status, before they become exported metric labels.
    scrubber = current_scrubber()
    attributes: Attributes = {
        semconv.COMPONENT: scrubber.scrub_text(key[0]),
        semconv.OPERATION: scrubber.scrub_text(key[1]),
        semconv.OTEL_STATUS_CODE: status,
    }
    if error_type is not None:
        attributes[semconv.ERROR_TYPE] = error_type
    return attributes


def _bounded(types: Mapping[str, object], error_type: str) -> str:
    if error_type in types or len(types) < MAX_TYPES_PER_KEY:
        return error_type
    return OTHER_TYPE


class Stream:
    """One calls stream (key, status, error type): its cumulative count and duration histogram.

    The histogram follows OTel explicit-bucket semantics: bucket ``i`` counts values in
    ``(bounds[i-1], bounds[i]]``, the last one everything above. Its count is the sum of the
    bucket counts, so it needs no counter of its own.
    """

    __slots__ = ("attributes", "calls", "counts", "hi", "lo", "max", "min", "status", "sum")

    def __init__(self, attributes: Attributes, status: str, buckets: int, intervals: int) -> None:
        self.attributes = attributes  # built once; reused for every metric point
        self.status = status
        self.calls = 0
        self.counts = [0] * buckets
        self.sum = 0.0
        self.min = math.inf
        self.max = -math.inf
        # Min and max since the last collection of each DELTA reader (they do not decompose).
        self.lo = [math.inf] * intervals
        self.hi = [-math.inf] * intervals


class DurationPoint(NamedTuple):
    """A copy of one stream's histogram, taken under the lock for export."""

    stream: tuple[Key, str, str | None]
    """(key, status, error type): stable identity of the stream across collections."""
    attributes: Attributes
    counts: list[int]
    observations: int
    sum: float
    min: float
    max: float


class _Op:
    """Everything counted for one (component, operation)."""

    __slots__ = ("failed", "handled", "key", "ok", "packed", "types", "unset")

    def __init__(self, key: Key, slots: int, buckets: int, intervals: int) -> None:
        self.key = key
        self.packed = [0] * slots  # windowed: calls | errors << 40 | handled << 80
        self.types: dict[str, list[int]] = {}  # windowed failed calls per error type
        # Cumulative, per status.
        self.ok = Stream(_attributes(key, "OK"), "OK", buckets, intervals)
        self.unset = Stream(_attributes(key, "UNSET"), "UNSET", buckets, intervals)
        self.failed: dict[str, Stream] = {}  # per error type
        self.handled: dict[str, int] = {}  # cumulative handled errors per error type


class OperationCounters:
    """Counts per (component, operation) in ``bucket_s``-wide buckets covering ``window_s``.

    Args:
        window_s: the longest span of time a query may cover.
        bucket_s: width of one bucket; a query covers whole buckets.
        started_at: clock reading at creation; no query reports a window older than this.
        max_keys: keys tracked; further keys are counted under :data:`OVERFLOW`.
        on_overflow: called (under the caller's lock) the first time a key overflows.
        bounds: explicit bucket boundaries (seconds) of the duration histograms.
    """

    def __init__(
        self,
        window_s: float,
        bucket_s: float,
        started_at: float,
        max_keys: int,
        on_overflow: Callable[[], None],
        bounds: Sequence[float] = (),
    ) -> None:
        self.bounds = tuple(bounds)
        self._buckets = len(self.bounds) + 1
        self._intervals = 0
        self._bucket_s = bucket_s
        # One extra slot holds the partly filled current bucket next to a full window.
        self._slots = math.ceil(window_s / bucket_s) + 1
        self._started_at = started_at
        self._head = int(started_at // bucket_s)
        self._head_slot = self._head % self._slots
        self._next_bucket_at = (self._head + 1) * bucket_s
        self._ops: dict[Key, _Op] = {}
        self._max_keys = max_keys
        self._on_overflow: Callable[[], None] | None = on_overflow

    def _op(self, key: Key) -> _Op:
        op = self._ops.get(key)
        if op is None:
            if len(self._ops) - (OVERFLOW in self._ops) >= self._max_keys:
                if self._on_overflow is not None:
                    self._on_overflow()
                    self._on_overflow = None
                key = OVERFLOW
                op = self._ops.get(key)
            if op is None:
                op = self._ops[key] = _Op(key, self._slots, self._buckets, self._intervals)
        return op

    def _advance(self, now: float) -> int:
        """Move the head to the bucket of ``now``, zeroing reused slots; return the head slot.

        A reading older than the head (another thread read the clock first) counts in the head.
        """
        bucket = int(now // self._bucket_s)
        if bucket > self._head:
            stale = min(bucket - self._head, self._slots)
            for absolute in range(bucket - stale + 1, bucket + 1):
                slot = absolute % self._slots
                for op in self._ops.values():
                    op.packed[slot] = 0
                    for type_counts in op.types.values():
                        type_counts[slot] = 0
            self._head = bucket
            self._head_slot = bucket % self._slots
            self._next_bucket_at = (bucket + 1) * self._bucket_s
        return self._head_slot

    def count(
        self,
        component: str,
        operation: str,
        now: float,
        code: StatusCode,
        error_type: str | None,
        duration_s: float | None = None,
    ) -> Attributes:
        """Count one finished operation; return its metric attributes.

        ``error_type`` is used only when ``code`` is ERROR (None there means ``_OTHER``).
        ``duration_s`` (when not None) goes into the stream's duration histogram.
        """
        slot = self._head_slot
        if now >= self._next_bucket_at:
            slot = self._advance(now)
        op = self._ops.get((component, operation))
        if op is None:
            op = self._op((component, operation))
        if code is not _ERROR:
            op.packed[slot] += _CALL
            stream = op.ok if code is _OK else op.unset
        else:
            op.packed[slot] += _FAILED_CALL
            error_type = _bounded(op.failed, error_type or OTHER_TYPE)
            type_counts = op.types.get(error_type)
            if type_counts is None:
                type_counts = op.types[error_type] = [0] * self._slots
            type_counts[slot] += 1
            stream = op.failed.get(error_type)  # type: ignore[assignment]
            if stream is None:
                attributes = _attributes(op.key, "ERROR", error_type)
                stream = op.failed[error_type] = Stream(
                    attributes, "ERROR", self._buckets, self._intervals
                )
        stream.calls += 1
        if duration_s is not None:  # inlined: this runs for every span
            stream.counts[bisect_left(self.bounds, duration_s)] += 1
            stream.sum += duration_s
            if duration_s < stream.min:
                stream.min = duration_s
            if duration_s > stream.max:
                stream.max = duration_s
            if self._intervals:
                lo, hi = stream.lo, stream.hi
                for i in range(self._intervals):
                    if duration_s < lo[i]:
                        lo[i] = duration_s
                    if duration_s > hi[i]:
                        hi[i] = duration_s
        return stream.attributes

    def count_handled(self, component: str, operation: str, now: float, error_type: str) -> None:
        """Count one handled error; it does not change the calls or failed-call counts."""
        slot = self._advance(now)
        op = self._op((component, operation))
        op.packed[slot] += _HANDLED
        error_type = _bounded(op.handled, error_type)
        op.handled[error_type] = op.handled.get(error_type, 0) + 1

    def covered(self, now: float, last_s: float) -> tuple[tuple[slice, ...], float]:
        """Slot slices and seconds covered by a query for the last ``last_s`` seconds at ``now``.

        The oldest bucket that overlaps the request is included whole, so the window covered is
        at least ``last_s`` (bounded by the ring size and by ``started_at``).
        """
        self._advance(now)
        head = self._head
        first = max(int((now - last_s) // self._bucket_s), head - self._slots + 1)
        window_s = max(0.0, now - max(first * self._bucket_s, self._started_at))
        lo, hi = first % self._slots, head % self._slots
        if lo <= hi:
            return (slice(lo, hi + 1),), window_s
        return (slice(lo, None), slice(0, hi + 1)), window_s

    def totals(
        self, ranges: tuple[slice, ...], component: str | None, operation: str | None
    ) -> dict[Key, KeyTotals]:
        """Sum each matching key's counts over ``ranges``, leaving out keys with no counts."""
        out: dict[Key, KeyTotals] = {}
        single = ranges[0] if len(ranges) == 1 else None
        for key, op in self._ops.items():
            if (component is not None and key[0] != component) or (
                operation is not None and key[1] != operation
            ):
                continue
            if single is not None:
                packed = sum(op.packed[single])
            else:
                packed = sum(sum(op.packed[r]) for r in ranges)
            if not packed:
                continue
            errors = (packed >> _SHIFT) & _MASK
            by_type: dict[str, int] = {}
            if errors:
                for error_type, type_counts in op.types.items():
                    if single is not None:
                        n = sum(type_counts[single])
                    else:
                        n = sum(sum(type_counts[r]) for r in ranges)
                    if n:
                        by_type[error_type] = n
            out[key] = KeyTotals(packed & _MASK, errors, packed >> (2 * _SHIFT), by_type)
        return out

    def components(self) -> set[str]:
        """Components seen so far."""
        return {key[0] for key in self._ops}

    def call_points(self) -> list[tuple[int, Attributes]]:
        """Cumulative calls per (component, operation, status, error type)."""
        points: list[tuple[int, Attributes]] = []
        for op in self._ops.values():
            for stream in (op.ok, op.unset, *op.failed.values()):
                if stream.calls:
                    points.append((stream.calls, stream.attributes))
        return points

    def add_interval(self) -> int:
        """Track min and max per collection interval for one more DELTA reader; its index."""
        index = self._intervals
        self._intervals += 1
        for op in self._ops.values():
            for stream in (op.ok, op.unset, *op.failed.values()):
                stream.lo.append(math.inf)
                stream.hi.append(-math.inf)
        return index

    def duration_points(self, interval: int | None = None) -> list[DurationPoint]:
        """A copy of every duration histogram that has counted something.

        With ``interval`` (from :meth:`add_interval`), min and max are those since the previous
        call for that interval, which restarts it.
        """
        points: list[DurationPoint] = []
        for op in self._ops.values():
            for error_type, stream in ((None, op.ok), (None, op.unset), *op.failed.items()):
                observations = sum(stream.counts)
                if not observations:
                    continue
                low, high = stream.min, stream.max
                if interval is not None:
                    low, high = stream.lo[interval], stream.hi[interval]
                    stream.lo[interval], stream.hi[interval] = math.inf, -math.inf
                points.append(
                    DurationPoint(
                        (op.key, stream.status, error_type),
                        stream.attributes,
                        list(stream.counts),
                        observations,
                        stream.sum,
                        low,
                        high,
                    )
                )
        return points

    def error_points(self) -> list[tuple[int, Key, str, bool]]:
        """Cumulative errors per (component, operation, error type, handled)."""
        points: list[tuple[int, Key, str, bool]] = []
        for op in self._ops.values():
            points.extend((stream.calls, op.key, t, False) for t, stream in op.failed.items())
            points.extend((n, op.key, t, True) for t, n in op.handled.items())
        return points
