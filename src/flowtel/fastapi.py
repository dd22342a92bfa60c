"""FastAPI tracing: ``opentelemetry-instrumentation-fastapi`` with flowtel's defaults.

Kubernetes probes every few seconds from every kubelet; tracing them buries real requests
under thousands of identical spans. So the probe paths (those ``add_k8s_probes`` gave the
app, or the defaults) are excluded unless asked otherwise. Server spans carry
``flowtel.component`` so the error accounting that works per component (``flowtel.errors``,
fed by finished spans) counts failed requests (exceptions and 5xx answers) under ``http``.

Needs the ``fastapi`` extra; FastAPI and the instrumentation are imported only when
:func:`instrument_fastapi` is called.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from opentelemetry import metrics, trace

from flowtel import semconv
from flowtel.exceptions import ConfigurationError
from flowtel.lifecycle import probe_paths

__all__ = ["instrument_fastapi"]


def instrument_fastapi(
    app: Any,
    *,
    component: str = "http",
    exclude_probes: bool = True,
    excluded_paths: Iterable[str] = (),
    trace_asgi_messages: bool = False,
    tracer_provider: trace.TracerProvider | None = None,
    meter_provider: metrics.MeterProvider | None = None,
) -> Any:
    """Trace every request to ``app`` except the probes; returns ``app``.

    Call it once, before serving; a second call on the same app does nothing.

    Args:
        app: a ``fastapi.FastAPI`` instance.
        component: the ``flowtel.component`` set on server spans.
        exclude_probes: leave the probe paths untraced.
        excluded_paths: more exact paths (e.g. ``/metrics``) to leave untraced.
        trace_asgi_messages: also emit the instrumentation's per-message ``http send`` /
            ``http receive`` spans; off by default because they double span volume for
            little insight.
        tracer_provider: where spans go; the global provider when ``None``.
        meter_provider: where HTTP metrics go; the global provider when ``None``.

    Raises:
        ConfigurationError: the ``fastapi`` extra is not installed.
    """
    try:
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
    except ImportError as exc:
        raise ConfigurationError(
            "instrument_fastapi", "opentelemetry-instrumentation-fastapi",
            "install the extra: pip install 'flowtel[fastapi]'",
        ) from exc  # fmt: skip
    paths = [*excluded_paths, *(probe_paths(app) if exclude_probes else ())]
    excluded = ",".join(_exact_path_regex(p) for p in dict.fromkeys(paths))

    def server_request_hook(span: trace.Span, scope: Mapping[str, Any]) -> None:
        if span.is_recording():
            span.set_attribute(semconv.COMPONENT, component)

    FastAPIInstrumentor.instrument_app(
        app,
        server_request_hook=server_request_hook,
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        excluded_urls=excluded or None,
        exclude_spans=None if trace_asgi_messages else ["receive", "send"],
    )
    return app


def _exact_path_regex(path: str) -> str:
    """A regex matching ``scheme://host[:port]<path>`` exactly, as the ASGI middleware sees it."""
    if "," in path:
        raise ConfigurationError("excluded_paths", path, "paths without commas")
    return rf"^[a-z]+://[^/]+{re.escape(path)}$"
