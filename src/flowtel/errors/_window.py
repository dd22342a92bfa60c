"""Windowed counts per key: cumulative columns plus a snapshot at every bucket boundary.

Why this layout: a query for "the last N minutes" is ``now - snapshot(N minutes ago)``. The
service-wide totals are plain integers, so that difference costs the same at 10 keys and at
10,000. Per-key counts live in ``array('Q')`` columns indexed by key; a snapshot is a C-level
copy of those columns (about 10 µs for 10,000 keys), taken once per bucket under the caller's
lock, and never changed afterwards, so a query copies the current columns under the lock and
computes the per-key differences later, outside it, only when someone reads them.

Tiers bound memory and query time for long windows: buckets of ``window / 60`` (1 s to 60 s)
up to an hour; beyond it, one-minute buckets for the last hour plus coarse buckets (at most
about 170) for the rest, up to :data:`MAX_WINDOW_MINUTES`. Memory is therefore at most
``slots x keys x 24 bytes`` (plus the error-type pairs), whatever the traffic.

Not thread-safe by itself: the processor serialises access with its lock.
"""

from __future__ import annotations

import math
from array import array
from typing import Final

from flowtel._core._record import Record

MAX_WINDOW_MINUTES: Final = 7 * 24 * 60
"""The longest ``error_window_minutes`` accepted (7 days)."""
_FINE_SPAN_S: Final = 3600.0
_COARSE_SLOTS: Final = 168


class Tier(Record):
    """A ring of ``slots`` snapshots, one per ``bucket_s``-wide bucket."""

    bucket_s: float
    slots: int


def tiers_for(window_s: float, bucket_s: float | None = None) -> tuple[Tier, ...]:
    """The rings that cover ``window_s``: one up to an hour, a fine and a coarse one beyond."""
    if bucket_s is not None or window_s <= _FINE_SPAN_S:
        width = bucket_s if bucket_s is not None else min(60.0, max(1.0, window_s / 60))
        return (Tier(width, math.ceil(window_s / width) + 1),)
    coarse = max(60.0, math.ceil(window_s / _COARSE_SLOTS / 60) * 60)
    return Tier(60.0, 61), Tier(coarse, math.ceil(window_s / coarse) + 1)


class Snapshot(Record):
    """Cumulative counts at the start of bucket ``bucket`` of one tier (never mutated)."""

    bucket: int
    calls: array[int]
    errors: array[int]
    handled: array[int]
    pairs: array[int]
    totals: tuple[int, int, int]
    types: dict[str, int]


class Totals(Record):
    """Counts between a snapshot and now: service-wide totals plus what per-key sums need."""

    calls: int
    errors: int
    handled: int
    types: dict[str, int]
    window_s: float
    now: Snapshot
    then: Snapshot | None


def _zeros(n: int) -> array[int]:
    return array("Q", bytes(8 * n))


class WindowCounters:
    """Cumulative per-key columns and, per tier, a ring of snapshots at bucket starts.

    The caller appends a column entry with :meth:`add_key` / :meth:`add_pair` and increments
    ``calls[i]``, ``errors[i]``, ``handled[i]``, ``pairs[j]``, ``types`` and the three totals
    directly (the hot path); it calls :meth:`advance` when ``now >= next_at``.
    """

    def __init__(self, window_s: float, started_at: float, bucket_s: float | None = None) -> None:
        self.tiers = tiers_for(window_s, bucket_s)
        self.window_s = window_s
        self.started_at = started_at
        self.calls: array[int] = array("Q")
        self.errors: array[int] = array("Q")
        self.handled: array[int] = array("Q")
        self.pairs: array[int] = array("Q")
        self.types: dict[str, int] = {}
        self.total_calls = self.total_errors = self.total_handled = 0
        self._rings: list[list[Snapshot | None]] = [[None] * t.slots for t in self.tiers]
        self._heads = [int(started_at // t.bucket_s) for t in self.tiers]
        self.next_at = min(
            (h + 1) * t.bucket_s for h, t in zip(self._heads, self.tiers, strict=True)
        )
        first = self._snapshot(-1)
        for ring, head, tier in zip(self._rings, self._heads, self.tiers, strict=True):
            ring[head % tier.slots] = first.replace(bucket=head)

    @property
    def bucket_s(self) -> float:
        """Width of the finest buckets: the precision of a short window."""
        return self.tiers[0].bucket_s

    def add_key(self) -> int:
        """A new key's column index."""
        for column in (self.calls, self.errors, self.handled):
            column.append(0)
        return len(self.calls) - 1

    def add_pair(self) -> int:
        """A new (key, error type) pair's column index."""
        self.pairs.append(0)
        return len(self.pairs) - 1

    def _snapshot(self, bucket: int) -> Snapshot:
        totals = (self.total_calls, self.total_errors, self.total_handled)
        return Snapshot(
            bucket,
            array("Q", self.calls),
            array("Q", self.errors),
            array("Q", self.handled),
            array("Q", self.pairs),
            totals,
            dict(self.types),
        )

    def advance(self, now: float) -> None:
        """Record a snapshot at the start of every bucket that began since the last call.

        Buckets skipped while idle share one snapshot (nothing changed in between).
        """
        shared: Snapshot | None = None
        next_at = math.inf
        for i, tier in enumerate(self.tiers):
            bucket = int(now // tier.bucket_s)
            head = self._heads[i]
            if bucket > head:
                ring = self._rings[i]
                shared = shared or self._snapshot(bucket)
                for absolute in range(max(head + 1, bucket - tier.slots + 1), bucket + 1):
                    ring[absolute % tier.slots] = shared.replace(bucket=absolute)
                self._heads[i] = head = bucket
            next_at = min(next_at, (head + 1) * tier.bucket_s)
        self.next_at = next_at

    def since(self, now: float, last_s: float) -> Totals:
        """Counts over the last ``last_s`` seconds (whole buckets, so at least that long).

        The finest tier that reaches back far enough answers; the window covered starts at that
        tier's bucket boundary, or at creation when the counters are younger than that.
        """
        if now >= self.next_at:
            self.advance(now)
        last_s = min(last_s, self.window_s)
        index = next(
            (i for i, t in enumerate(self.tiers) if (t.slots - 1) * t.bucket_s >= last_s),
            len(self.tiers) - 1,
        )
        tier, ring, head = self.tiers[index], self._rings[index], self._heads[index]
        first = max(int((now - last_s) // tier.bucket_s), head - tier.slots + 1)
        then = ring[first % tier.slots]
        start = first * tier.bucket_s
        if then is None or then.bucket != first or start <= self.started_at:
            then, start = None, self.started_at  # younger than the window: since creation
        current = self._snapshot(-1)
        base = then.totals if then is not None else (0, 0, 0)
        types = current.types
        if then is not None and then.types:
            types = {t: n - then.types.get(t, 0) for t, n in types.items()}
        return Totals(
            current.totals[0] - base[0],
            current.totals[1] - base[1],
            current.totals[2] - base[2],
            {t: n for t, n in types.items() if n},
            max(0.0, now - start),
            current,
            then,
        )


def key_counts(totals: Totals, index: int) -> tuple[int, int, int]:
    """(calls, errors, handled) of one key column over ``totals``' window."""
    now, then = totals.now, totals.then
    if then is None or index >= len(then.calls):
        return now.calls[index], now.errors[index], now.handled[index]
    return (
        now.calls[index] - then.calls[index],
        now.errors[index] - then.errors[index],
        now.handled[index] - then.handled[index],
    )


def pair_count(totals: Totals, index: int) -> int:
    """Failed calls of one (key, error type) pair over ``totals``' window."""
    then = totals.then
    before = then.pairs[index] if then is not None and index < len(then.pairs) else 0
    return int(totals.now.pairs[index] - before)
