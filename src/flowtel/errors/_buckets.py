"""Per-operation counters: windowed counts for queries, cumulative streams for metrics.

Why two stores: a query asks "how many in the last N minutes" (the window, see ``_window``);
a metric reader asks "how many since start" per status and error type (the streams, see
``_streams``). Counting one span touches both: two or three integer increments, plus a
``bisect`` and four updates when it carries a duration.

Not thread-safe by itself: :class:`flowtel.errors.ErrorRateProcessor` serialises access with one
short lock.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Callable, Mapping, Sequence
from typing import Final

from opentelemetry.trace import StatusCode

from flowtel import semconv
from flowtel.errors._streams import (
    NO_DIMS,
    OVERFLOW_VALUE,
    Attributes,
    Dims,
    ExemplarSample,
    Key,
    Stream,
    stream_attributes,
)
from flowtel.errors._window import Totals, WindowCounters, key_counts, pair_count

__all__ = ["OTHER_TYPE", "OVERFLOW", "Key", "KeyTotals", "OperationCounters", "Streams"]

OTHER_TYPE: Final = "_OTHER"
"""Error type used when a span failed without a type, or a key has too many distinct types."""

MAX_TYPES_PER_KEY: Final = 16
"""Distinct error types tracked per (component, operation); more fold into :data:`OTHER_TYPE`."""

OVERFLOW: Final[Key] = (semconv.OVERFLOW_KEY, semconv.OVERFLOW_KEY)

_ERROR: Final = StatusCode.ERROR
_OK: Final = StatusCode.OK


class KeyTotals(tuple[int, int, int, dict[str, int]]):
    """Counts of one key over a window: ``(total, errors, handled, by_type)``. A plain tuple
    subclass, defined without the code generation of ``NamedTuple``."""

    __slots__ = ()

    def __new__(cls, total: int, errors: int, handled: int, by_type: dict[str, int]) -> KeyTotals:
        return tuple.__new__(cls, (total, errors, handled, by_type))

    @property
    def total(self) -> int:
        return self[0]

    @property
    def errors(self) -> int:
        return self[1]

    @property
    def handled(self) -> int:
        return self[2]

    @property
    def by_type(self) -> dict[str, int]:
        return self[3]


def _bounded(types: Mapping[str, object], error_type: str) -> str:
    if error_type in types or len(types) < MAX_TYPES_PER_KEY:
        return error_type
    return OTHER_TYPE


class Streams:
    """The metric streams of one (component, operation) and one tuple of dimension values."""

    __slots__ = ("dims", "extra", "failed", "ok", "unset")

    def __init__(
        self, key: Key, dims: Dims, extra: Attributes | None, buckets: int, intervals: int
    ) -> None:
        self.dims = dims
        self.extra = extra  # the dimension attributes, for error types seen later
        self.ok = Stream(stream_attributes(key, "OK", None, extra), "OK", buckets, intervals)
        self.unset = Stream(
            stream_attributes(key, "UNSET", None, extra), "UNSET", buckets, intervals
        )
        self.failed: dict[str, Stream] = {}  # per error type


class _Op(Streams):
    """Everything counted for one (component, operation).

    Without dimensions its own streams are used; with them, one :class:`Streams` per tuple
    of dimension values (``variants``) and its own stay empty.
    """

    __slots__ = ("handled", "index", "key", "pairs", "variants")

    def __init__(self, key: Key, index: int, buckets: int, intervals: int) -> None:
        super().__init__(key, NO_DIMS, None, buckets, intervals)
        self.key = key
        self.index = index  # column of the window counters
        self.pairs: dict[str, int] = {}  # error type -> pair column (windowed failures by type)
        self.handled: dict[str, int] = {}  # cumulative handled errors per error type
        self.variants: dict[Dims, Streams] = {}

    def all_streams(self) -> list[Streams]:
        """Its own streams, then every variant's."""
        return [self, *self.variants.values()] if self.variants else [self]


class OperationCounters:
    """Counts per (component, operation) over ``window_s``, and cumulative metric streams.

    Args:
        window_s: the longest span of time a query may cover.
        bucket_s: width of the finest buckets (None: ``window / 60`` clamped to 1..60 s, and
            coarser buckets beyond the last hour).
        started_at: clock reading at creation; no query reports a window older than this.
        max_keys: keys tracked; further keys are counted under :data:`OVERFLOW`.
        on_overflow: called (under the caller's lock) the first time a key overflows.
        bounds: explicit bucket boundaries (seconds) of the duration histograms.
    """

    def __init__(
        self,
        window_s: float,
        bucket_s: float | None,
        started_at: float,
        max_keys: int,
        on_overflow: Callable[[], None],
        bounds: Sequence[float] = (),
        dimensions: Sequence[str] = (),
    ) -> None:
        self.bounds = tuple(bounds)
        self._buckets = len(self.bounds) + 1
        self.intervals = 0
        self._dimensions = tuple(dimensions)
        self._variants = 0  # (key, dimension values) stream sets, at most max_keys
        self.window = WindowCounters(window_s, started_at, bucket_s)
        self._ops: dict[Key, _Op] = {}
        self._keys: list[Key] = []  # the key of each column
        self._max_keys = max_keys
        self._on_overflow: Callable[[], None] | None = on_overflow

    @property
    def bucket_s(self) -> float:
        """Width of the finest buckets."""
        return self.window.bucket_s

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
                index = self.window.add_key()
                self._keys.append(key)
                op = self._ops[key] = _Op(key, index, self._buckets, self.intervals)
        return op

    def count(
        self,
        component: str,
        operation: str,
        now: float,
        code: StatusCode,
        error_type: str | None,
        duration_s: float | None = None,
        exemplar: ExemplarSample | None = None,
        dims: Dims = NO_DIMS,
    ) -> Attributes:
        """Count one finished operation; return its metric attributes.

        ``error_type`` is used only when ``code`` is ERROR (None there means ``_OTHER``).
        ``duration_s`` (when not None) goes into the stream's duration histogram, and
        ``exemplar`` (a sampled span's measurement) into that bucket's exemplar. ``dims``
        (the span's dimension values, see ``_dimensions``) selects the streams; empty
        without dimensions.
        """
        window = self.window
        if now >= window.next_at:
            window.advance(now)
        op = self._ops.get((component, operation))
        if op is None:
            op = self._op((component, operation))
        window.calls[op.index] += 1
        window.total_calls += 1
        streams: Streams = op
        if dims:
            streams = op.variants.get(dims) or self._variant(op, dims)
        if code is not _ERROR:
            stream = streams.ok if code is _OK else streams.unset
        else:
            window.errors[op.index] += 1
            window.total_errors += 1
            error_type = _bounded(op.failed, error_type or OTHER_TYPE)
            pair = op.pairs.get(error_type)
            if pair is None:
                pair = op.pairs[error_type] = window.add_pair()
            window.pairs[pair] += 1
            window.types[error_type] = window.types.get(error_type, 0) + 1
            stream = streams.failed.get(error_type)  # type: ignore[assignment]
            if stream is None:
                attributes = stream_attributes(op.key, "ERROR", error_type, streams.extra)
                stream = streams.failed[error_type] = Stream(
                    attributes, "ERROR", self._buckets, self.intervals
                )
        stream.calls += 1
        if duration_s is not None:  # inlined: this runs for every span
            bucket = bisect_left(self.bounds, duration_s)
            stream.counts[bucket] += 1
            stream.sum += duration_s
            if duration_s < stream.min:
                stream.min = duration_s
            if duration_s > stream.max:
                stream.max = duration_s
            if self.intervals:
                lo, hi = stream.lo, stream.hi
                for i in range(self.intervals):
                    if duration_s < lo[i]:
                        lo[i] = duration_s
                    if duration_s > hi[i]:
                        hi[i] = duration_s
            if exemplar is not None:
                samples = stream.exemplars
                if samples is None:
                    samples = stream.exemplars = [None] * self._buckets
                samples[bucket] = exemplar
        return stream.attributes

    def _variant(self, op: _Op, dims: Dims) -> Streams:
        """The streams of ``dims`` for ``op``, created while fewer than ``max_keys`` exist;
        beyond that, the streams of every dimension at :data:`OVERFLOW_VALUE`."""
        if self._variants >= self._max_keys:
            dims = tuple(OVERFLOW_VALUE for _ in dims)
            streams = op.variants.get(dims)
            if streams is not None:
                return streams
        extra: Attributes = {
            name: value
            for name, value in zip(self._dimensions, dims, strict=True)
            if value is not None
        }
        streams = op.variants[dims] = Streams(op.key, dims, extra, self._buckets, self.intervals)
        self._variants += 1
        return streams

    def count_handled(self, component: str, operation: str, now: float, error_type: str) -> None:
        """Count one handled error; it does not change the calls or failed-call counts."""
        window = self.window
        if now >= window.next_at:
            window.advance(now)
        op = self._op((component, operation))
        window.handled[op.index] += 1
        window.total_handled += 1
        error_type = _bounded(op.handled, error_type)
        op.handled[error_type] = op.handled.get(error_type, 0) + 1

    # -- queries ---------------------------------------------------------------------------

    def since(self, now: float, last_s: float) -> Totals:
        """Service-wide counts over the last ``last_s`` (per-key sums come from the result)."""
        return self.window.since(now, last_s)

    def columns(self) -> list[Key]:
        """Every key, at the position of its column (a C-level copy: cheap under the lock)."""
        return list(self._keys)

    def totals(
        self, totals: Totals, component: str | None, operation: str | None
    ) -> dict[Key, KeyTotals]:
        """Per-key counts of the matching keys over ``totals``' window, leaving out idle keys."""
        out: dict[Key, KeyTotals] = {}
        if component is not None and operation is not None:
            op = self._ops.get((component, operation))
            ops = [op] if op is not None else []
        else:
            ops = [
                op
                for k, op in self._ops.items()
                if component in (None, k[0]) and operation in (None, k[1])
            ]
        for op in ops:
            calls, errors, handled = key_counts(totals, op.index)
            if not (calls or handled):
                continue
            by_type = {}
            if errors:
                for error_type, pair in op.pairs.items():
                    n = pair_count(totals, pair)
                    if n:
                        by_type[error_type] = n
            out[op.key] = KeyTotals(calls, errors, handled, by_type)
        return out

    def components(self) -> set[str]:
        """Components seen so far."""
        return {key[0] for key in self._ops}

    # -- metric points (cumulative; read by ``_points``) -------------------------------------

    def ops(self) -> list[_Op]:
        """Every key's counters, to read in chunks (each chunk under the caller's lock)."""
        return list(self._ops.values())

    def add_interval(self) -> int:
        """Track min and max per collection interval for one more DELTA reader; its index."""
        index = self.intervals
        self.intervals += 1
        for op in self._ops.values():
            for streams in op.all_streams():
                for stream in (streams.ok, streams.unset, *streams.failed.values()):
                    stream.lo = [*stream.lo, math.inf]  # new lists: the empty one is shared
                    stream.hi = [*stream.hi, -math.inf]
        return index
