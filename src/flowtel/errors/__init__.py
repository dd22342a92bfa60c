"""Error truth: exact in-process error rates and RED metrics, from a SpanProcessor.

:class:`ErrorRateProcessor` counts every span that ends; :func:`get_error_stats` answers
"what failed, and how often, in the last N minutes"; :func:`record_error` counts an error
that was handled rather than raised.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flowtel.errors._api import get_error_stats, record_error
from flowtel.errors._processor import ErrorRateProcessor

if TYPE_CHECKING:
    from flowtel.errors._stats import ErrorStats, OperationStats

__all__ = ["ErrorRateProcessor", "ErrorStats", "OperationStats", "get_error_stats", "record_error"]


def __getattr__(name: str) -> Any:
    # The result classes load on first use: a process that never queries never builds them.
    if name in ("ErrorStats", "OperationStats"):
        from flowtel.errors import _stats

        return getattr(_stats, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
