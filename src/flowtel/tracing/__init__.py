"""Tracing: ``@traced`` and ``span()``, the application's side of the data flow.

Spans start here through the OpenTelemetry API; flowtel's TracerProvider and sampler
(private modules of this package) decide what is recorded, and the span processors of
:mod:`flowtel.errors`, :mod:`flowtel.sentry` and the export stage see every span that ends.
"""

from __future__ import annotations

from flowtel.tracing._traced import SpanScope, span, traced

__all__ = ["SpanScope", "span", "traced"]
