"""``get_error_stats()``: the copies taken under the processor's lock, the figures outside it."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from flowtel._core._parse import positive
from flowtel.errors._dimensions import by_dimension
from flowtel.errors._stats import build_level, build_stats, dimension_stats

if TYPE_CHECKING:
    from flowtel.errors._processor import ErrorRateProcessor
    from flowtel.errors._stats import ErrorStats

__all__ = ["query"]


def query(
    processor: ErrorRateProcessor,
    last_minutes: float,
    component: str | None,
    operation: str | None,
) -> ErrorStats:
    """See :meth:`ErrorRateProcessor.stats`."""
    last_s = min(
        60 * positive("last_minutes", last_minutes, "a number of minutes > 0"),
        processor._window_s,
    )
    filtered = component is not None or operation is not None
    dims = processor._dims if not filtered else None
    ops_keys = entry_keys = None
    ops_per_key = entry_per_key = None
    with processor._counted():
        now = processor._clock()
        ops = processor._counters.since(now, last_s)
        entries = processor._entries.since(now, last_s)
        if filtered:
            ops_per_key = processor._counters.totals(ops, component, operation)
            entry_per_key = processor._entries.totals(entries, component, operation)
        else:
            ops_keys = processor._counters.columns()
            entry_keys = processor._entries.columns()
        if dims is not None:
            op_dims = processor._op_dims.since(now, last_s)
            entry_dims = processor._entry_dims.since(now, last_s)
    op_level = build_level(ops, ops_keys, ops_per_key)
    entry_level = build_level(entries, entry_keys, entry_per_key)
    if dims is not None:
        op_split = by_dimension(dims.names, *op_dims)
        entry_split = by_dimension(dims.names, *entry_dims)
        op_level = replace(op_level, by_dimension=dimension_stats(op_split))
        entry_level = replace(entry_level, by_dimension=dimension_stats(entry_split))
    return build_stats(op_level, entry_level, ops.window_s)
