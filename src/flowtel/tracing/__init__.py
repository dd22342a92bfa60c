"""Tracing: ``@traced`` and ``span()``, the application's side of the data flow.

Spans start here through the OpenTelemetry API; flowtel's TracerProvider and sampler
(private modules of this package) decide what is recorded, and the span processors of
:mod:`flowtel.errors`, :mod:`flowtel.sentry` and the export stage see every span that ends.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flowtel.tracing._traced import SpanScope, span, traced

if TYPE_CHECKING:
    from flowtel._core._sampling import Sampling
    from flowtel.tracing._keep import keep_trace

__all__ = ["Sampling", "SpanScope", "keep_trace", "span", "traced"]


def __getattr__(name: str) -> Any:
    # Tail sampling's names load on first use (PEP 562): most processes never need them.
    if name == "Sampling":
        from flowtel._core._sampling import Sampling

        return Sampling
    if name == "keep_trace":
        from flowtel.tracing._keep import keep_trace

        return keep_trace
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
