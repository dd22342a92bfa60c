"""``flowtel.keep_trace()`` and "was this trace exported?": the light side of tail sampling.

Why apart from the processor (``_tail``): ``import flowtel`` must not import the SDK. These
functions only read the OpenTelemetry API's current span and ask the active tail sampler, if
``configure_telemetry(sampling=...)`` installed one.
"""

from __future__ import annotations

import logging
from typing import Protocol

from opentelemetry import trace as trace_api
from opentelemetry.trace import SpanContext

__all__ = ["activate", "deactivate", "keep_trace", "keep_trace_id", "trace_exported"]

_log = logging.getLogger("flowtel.sampling")


class _Sampler(Protocol):
    def keep(self, trace_id: int) -> bool: ...
    def will_export(self, trace_id: int) -> bool: ...


_active: _Sampler | None = None


def activate(sampler: _Sampler) -> None:
    """Make ``sampler`` the one :func:`keep_trace` talks to (``configure_telemetry``)."""
    global _active
    _active = sampler


def deactivate(sampler: _Sampler) -> None:
    """Forget ``sampler`` unless another one replaced it meanwhile."""
    global _active
    if _active is sampler:
        _active = None


def keep_trace() -> bool:
    """Keep the current trace, whole, whatever the head rate decided.

    Call it anywhere inside the trace, e.g. for a VIP customer or a request you are debugging.
    Returns True when the trace is (or will be) exported: always when it was head-sampled, and
    with ``sampling=`` configured as long as its root has not been dropped yet. Returns False
    without tail sampling for a trace the head rate dropped, or outside any span. Never raises.
    """
    try:
        context = trace_api.get_current_span().get_span_context()
        if not context.is_valid:
            return False
        return bool(context.trace_flags.sampled) or keep_trace_id(context.trace_id)
    except Exception:
        _log.debug("keep_trace failed", exc_info=True)
        return False


def keep_trace_id(trace_id: int) -> bool:
    """Keep trace ``trace_id`` if tail sampling is on and has not dropped it; else False."""
    sampler = _active
    return sampler is not None and sampler.keep(trace_id)


def trace_exported(context: SpanContext) -> bool:
    """Whether the trace of ``context`` was (or will be) exported: sampled, or kept by the tail."""
    if context.trace_flags.sampled:
        return True
    sampler = _active
    return sampler is not None and sampler.will_export(context.trace_id)
