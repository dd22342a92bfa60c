"""Who was affected: counts split by a few user-chosen span attributes (``error_dimensions``).

Why bounded: a dimension value becomes a metric attribute and a key of ``get_error_stats()``;
an attribute that carries an id would grow both without limit. Each dimension keeps at most
``max_values`` distinct values; further ones are counted under ``_other`` (and a warning is
logged once). Values are scrubbed like the other metric labels and cut to 128 characters. A
span without the attribute is counted under ``None`` and carries no metric attribute for it.

Not thread-safe by itself: the processor calls everything here under its lock.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Final

from flowtel._core._scrub import current_scrubber
from flowtel.errors._streams import OVERFLOW_VALUE, Dims
from flowtel.errors._window import Totals, WindowCounters, key_counts

__all__ = ["DimensionCounters", "DimensionValues", "by_dimension"]

MAX_VALUE_LENGTH: Final = 128
_MAX_COMBINATIONS: Final = 4096


class DimensionValues:
    """Reads a span's dimension attributes as bounded, scrubbed values.

    Args:
        names: the attribute keys, in order.
        max_values: distinct values kept per dimension.
        on_overflow: called once, the first time a value is counted under ``_other``.
    """

    __slots__ = ("_known", "_max_values", "_on_overflow", "names")

    def __init__(
        self, names: Sequence[str], max_values: int, on_overflow: Callable[[str], None]
    ) -> None:
        self.names = tuple(names)
        self._known: tuple[dict[object, str], ...] = tuple({} for _ in self.names)
        self._max_values = max_values
        self._on_overflow: Callable[[str], None] | None = on_overflow

    def read(self, attributes: Mapping[str, object]) -> Dims:
        """The span's value of each dimension (None when it does not carry the attribute)."""
        values: list[str | None] = []
        for name, known in zip(self.names, self._known, strict=True):
            raw = attributes.get(name)
            if raw is None:
                values.append(None)
                continue
            try:
                value = known.get(raw)
            except TypeError:  # an unhashable value: not a valid attribute, count it apart
                value = OVERFLOW_VALUE
            values.append(value if value is not None else self._admit(name, known, raw))
        return tuple(values)

    def _admit(self, name: str, known: dict[object, str], raw: object) -> str:
        if len(known) >= self._max_values:
            if self._on_overflow is not None:
                self._on_overflow(name)
                self._on_overflow = None
            return OVERFLOW_VALUE
        if isinstance(raw, str):
            text = raw
        elif isinstance(raw, tuple | list):
            text = ",".join(str(item) for item in raw)
        else:
            text = str(raw)
        value = current_scrubber().scrub_text(text)[:MAX_VALUE_LENGTH]
        known[raw] = value
        return value


class DimensionCounters:
    """Windowed calls and failures per (dimension, value), for ``get_error_stats()``.

    One column per (dimension, value) in a :class:`WindowCounters`: at most
    ``len(names) x (max_values + 2)`` columns (``None`` and ``_other`` included).
    """

    def __init__(
        self, names: Sequence[str], window_s: float, bucket_s: float | None, started_at: float
    ) -> None:
        self.names = tuple(names)
        self.window = WindowCounters(window_s, started_at, bucket_s)
        self._columns: tuple[dict[str | None, int], ...] = tuple({} for _ in self.names)
        self._keys: list[tuple[str, str | None]] = []  # (dimension, value) of each column
        self._combinations: dict[Dims, tuple[int, ...]] = {}  # dims -> their columns

    def count(self, dims: Dims, now: float, failed: bool) -> None:
        """Count one span with values ``dims``."""
        window = self.window
        if now >= window.next_at:
            window.advance(now)
        columns = self._combinations.get(dims)
        if columns is None:
            columns = self._columns_of(dims)
        calls = window.calls
        for column in columns:
            calls[column] += 1
        if failed:
            errors = window.errors
            for column in columns:
                errors[column] += 1

    def _columns_of(self, dims: Dims) -> tuple[int, ...]:
        """The column of each value of ``dims``, remembered for up to 4,096 combinations."""
        out = []
        for d, value in enumerate(dims):
            columns = self._columns[d]
            column = columns.get(value)
            if column is None:
                column = columns[value] = self.window.add_key()
                self._keys.append((self.names[d], value))
            out.append(column)
        found = tuple(out)
        if len(self._combinations) < _MAX_COMBINATIONS:
            self._combinations[dims] = found
        return found

    def since(self, now: float, last_s: float) -> tuple[Totals, list[tuple[str, str | None]]]:
        """Counts over the last ``last_s`` and the key of each column (copies; under the lock)."""
        return self.window.since(now, last_s), list(self._keys)


Counts = tuple[int, int]
"""(total, errors) of one dimension value."""


def by_dimension(
    names: Sequence[str], totals: Totals, keys: Sequence[tuple[str, str | None]]
) -> dict[str, dict[str | None, Counts]]:
    """(total, errors) per value of every dimension over ``totals``' window, idle values left out.

    Runs outside the lock, on the copies :meth:`DimensionCounters.since` returned.
    """
    out: dict[str, dict[str | None, Counts]] = {name: {} for name in names}
    for column, (name, value) in enumerate(keys):
        calls, errors, _handled = key_counts(totals, column)
        if calls:
            out[name][value] = (calls, errors)
    return out


EMPTY: Final[Mapping[str, Mapping[str | None, Counts]]] = MappingProxyType({})
