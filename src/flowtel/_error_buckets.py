"""Fixed-size ring of time buckets holding per-operation call and error counts.

Why a ring of per-key lists: memory is ``keys x slots`` whatever the span volume, recording is
one or two list increments, and a query sums one or two list slices per key (C-speed ``sum``),
so its cost depends on the number of keys, never on how many spans were counted. Calls, errors
and handled errors share one packed integer per slot (40 bits each) so a query needs one
``sum`` for all three.

Not thread-safe by itself: :class:`flowtel.errors.ErrorRateProcessor` serialises access with one
short lock.
"""

from __future__ import annotations

import math
from typing import Final, NamedTuple

OTHER_TYPE: Final = "_OTHER"
"""Error type used when a span failed without a type, or a key has too many distinct types."""

MAX_TYPES_PER_KEY: Final = 16
"""Distinct error types tracked per (component, operation); more fold into :data:`OTHER_TYPE`."""

Key = tuple[str, str]
"""(component, operation)."""

_SHIFT: Final = 40
_MASK: Final = (1 << _SHIFT) - 1
CALL: Final = 1
"""Packed increment of one successful call."""
FAILED_CALL: Final = 1 | (1 << _SHIFT)
"""Packed increment of one failed call (a call and an error)."""
HANDLED: Final = 1 << (2 * _SHIFT)
"""Packed increment of one handled error."""


class KeyTotals(NamedTuple):
    """Counts of one key summed over a range of buckets."""

    total: int
    errors: int
    handled: int
    by_type: dict[str, int]


class _KeyCounts:
    """One (component, operation): packed counts and per-type error counts, one slot per bucket."""

    __slots__ = ("packed", "types")

    def __init__(self, slots: int) -> None:
        self.packed = [0] * slots
        self.types: dict[str, list[int]] = {}

    def type_slots(self, error_type: str, slots: int) -> list[int]:
        counts = self.types.get(error_type)
        if counts is None:
            if len(self.types) >= MAX_TYPES_PER_KEY:
                error_type = OTHER_TYPE
                counts = self.types.get(error_type)
            if counts is None:
                counts = self.types[error_type] = [0] * slots
        return counts


class BucketRing:
    """Counts per key in ``bucket_s``-wide buckets covering at least ``window_s``.

    Args:
        window_s: the longest span of time a query may cover.
        bucket_s: width of one bucket; a query covers whole buckets.
        started_at: clock reading at creation; no query reports a window older than this.
    """

    __slots__ = ("_bucket_s", "_head", "_keys", "_slots", "_started_at")

    def __init__(self, window_s: float, bucket_s: float, started_at: float) -> None:
        self._bucket_s = bucket_s
        # One extra slot holds the partly filled current bucket next to a full window.
        self._slots = math.ceil(window_s / bucket_s) + 1
        self._started_at = started_at
        self._head = int(started_at // bucket_s)
        self._keys: dict[Key, _KeyCounts] = {}

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, key: object) -> bool:
        return key in self._keys

    def keys(self) -> list[Key]:
        """The keys seen so far (a copy)."""
        return list(self._keys)

    def advance(self, now: float) -> int:
        """Move the head to the bucket of ``now``, zeroing the slots it reuses; return its slot.

        A clock reading older than the head counts into the head bucket.
        """
        bucket = int(now // self._bucket_s)
        head = self._head
        if bucket > head:
            stale = min(bucket - head, self._slots)
            for absolute in range(bucket - stale + 1, bucket + 1):
                slot = absolute % self._slots
                for counts in self._keys.values():
                    counts.packed[slot] = 0
                    for type_counts in counts.types.values():
                        type_counts[slot] = 0
            self._head = head = bucket
        return head % self._slots

    def add(self, key: Key, now: float, increment: int, error_type: str | None = None) -> None:
        """Add ``increment`` (CALL, FAILED_CALL or HANDLED) for ``key`` at ``now``.

        ``error_type`` is counted per type; pass it only for failed calls.
        """
        slot = self.advance(now)
        counts = self._keys.get(key)
        if counts is None:
            counts = self._keys[key] = _KeyCounts(self._slots)
        counts.packed[slot] += increment
        if error_type is not None:
            counts.type_slots(error_type, self._slots)[slot] += 1

    def covered(self, now: float, last_s: float) -> tuple[tuple[slice, ...], float]:
        """Slot slices and seconds covered by a query for the last ``last_s`` seconds at ``now``.

        The oldest bucket that overlaps the request is included whole, so the window covered is
        at least ``last_s`` (bounded by the ring size and by ``started_at``).
        """
        self.advance(now)
        head = self._head
        first = max(int((now - last_s) // self._bucket_s), head - self._slots + 1)
        first_start = max(first * self._bucket_s, self._started_at)
        window_s = max(0.0, now - first_start)
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
        for key, counts in self._keys.items():
            if (component is not None and key[0] != component) or (
                operation is not None and key[1] != operation
            ):
                continue
            if single is not None:
                packed = sum(counts.packed[single])
            else:
                packed = sum(sum(counts.packed[r]) for r in ranges)
            if not packed:
                continue
            errors = (packed >> _SHIFT) & _MASK
            by_type: dict[str, int] = {}
            if errors:
                for error_type, type_counts in counts.types.items():
                    if single is not None:
                        n = sum(type_counts[single])
                    else:
                        n = sum(sum(type_counts[r]) for r in ranges)
                    if n:
                        by_type[error_type] = n
            out[key] = KeyTotals(packed & _MASK, errors, packed >> (2 * _SHIFT), by_type)
        return out
