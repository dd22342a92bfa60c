"""``add_k8s_probes``: Kubernetes probes for any ASGI app: /alive, /ready, /startup, /health.

``add_k8s_probes(app)`` alone is enough under plain ``uvicorn module:app``. It wraps the app's
lifespan: when the app's own startup completes, the registered startup checks start in a
background task, so they run while uvicorn opens its listener and ``/startup`` answers 503
until they finish. It also takes over SIGTERM for the readiness drain (see
:mod:`flowtel.lifecycle`), starts the readiness monitor once startup is done, and at lifespan
shutdown runs the shutdown hooks and flushes telemetry.

Under a multi-process server (gunicorn, ``uvicorn --workers``) each worker runs all of this on
its own: its own checks, state, readiness and ``/health`` (see ``docs/lifecycle.md``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from opentelemetry import metrics

from flowtel.exceptions import ConfigurationError
from flowtel.lifecycle._asgi import ASGIApp, Receive, Scope, Send
from flowtel.lifecycle._lifecycle import Lifecycle
from flowtel.lifecycle._liveness import LivenessMonitor
from flowtel.lifecycle._managed import default_lifecycle
from flowtel.lifecycle._paths import ProbePaths, remember_paths
from flowtel.lifecycle._probes import ProbeRuntime
from flowtel.lifecycle._readiness import ReadinessMonitor, default_readiness
from flowtel.lifecycle._startup import StartupOrchestrator

__all__ = ["ProbeMiddleware", "add_k8s_probes"]


def add_k8s_probes(
    app: Any,
    *,
    paths: ProbePaths | None = None,
    lifecycle: Lifecycle | None = None,
    orchestrator: StartupOrchestrator | None = None,
    readiness: ReadinessMonitor | None = None,
    expose_details: bool = True,
    drain_s: float | None = None,
    handle_signals: bool = True,
    alive_max_lag_s: float = 10.0,
    heartbeat_interval_s: float = 1.0,
    error_window_minutes: float = 5.0,
    error_rate_warn: float = 0.05,
    meter_provider: metrics.MeterProvider | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Any:
    """Serve Kubernetes probes from ``app`` and run its startup checks after it listens.

    A Starlette or FastAPI app is changed in place (a middleware is added; call this before
    serving). Any other ASGI app is wrapped: serve the returned app. Either way the return
    value is the app to serve.

    Args:
        app: the ASGI application.
        paths: probe URL paths.
        lifecycle: state machine, checks and hooks; the process-wide one when ``None``.
        orchestrator: explicit startup checks, for apps that avoid the module-level registry;
            a new lifecycle is made around it (give ``lifecycle`` or this, not both).
        readiness: background readiness checks; the process-wide monitor when ``None``.
        expose_details: ``False`` reduces ``/health`` to its overall status, for public ports.
        drain_s: overrides the lifecycle's drain delay after SIGTERM.
        handle_signals: take over SIGTERM/SIGINT for the readiness drain.
        alive_max_lag_s: ``/alive`` fails when the event loop has not turned for this long.
        heartbeat_interval_s: how often the event-loop heartbeat runs.
        error_window_minutes: window of the error rate ``/health`` reports.
        error_rate_warn: ``/health`` says ``warn`` (still 200) above this error rate; the
            error rate never fails a probe, so one bad dependency cannot empty the endpoints.
        meter_provider: where probe metrics go; the global provider when ``None``.
        clock: monotonic seconds, injectable for tests.
    """
    if lifecycle is not None and orchestrator is not None:
        raise ConfigurationError("orchestrator", orchestrator, "None when lifecycle is given")
    paths = paths or ProbePaths()
    all_paths = paths.as_tuple()
    if len(set(all_paths)) != 4 or not all(p.startswith("/") for p in all_paths):
        raise ConfigurationError("paths", paths, "four distinct paths starting with '/'")
    if not 0.0 <= error_rate_warn <= 1.0:
        raise ConfigurationError("error_rate_warn", error_rate_warn, "a ratio between 0 and 1")
    if error_window_minutes <= 0:
        raise ConfigurationError("error_window_minutes", error_window_minutes, "minutes > 0")
    lc = lifecycle or (Lifecycle(orchestrator) if orchestrator is not None else default_lifecycle())
    if drain_s is not None:
        lc.drain_s = drain_s
    runtime = ProbeRuntime(
        lc,
        readiness or default_readiness(),
        LivenessMonitor(interval_s=heartbeat_interval_s, max_lag_s=alive_max_lag_s, clock=clock),
        paths,
        expose_details=expose_details,
        handle_signals=handle_signals,
        meter_provider=meter_provider,
        error_window_minutes=error_window_minutes,
        error_rate_warn=error_rate_warn,
    )
    target = app
    if hasattr(app, "add_middleware") and hasattr(app, "user_middleware"):
        app.add_middleware(ProbeMiddleware, runtime=runtime)
    else:
        target = ProbeMiddleware(app, runtime=runtime)
    remember_paths(app, runtime.paths)
    remember_paths(target, runtime.paths)
    return target


class ProbeMiddleware:
    """ASGI middleware answering the probe paths and driving the lifecycle from the lifespan."""

    def __init__(self, app: ASGIApp, *, runtime: ProbeRuntime) -> None:
        self.app = app
        self.runtime = runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self.runtime.lifespan(self.app, scope, receive, send)
            return
        if kind == "http":
            self.runtime.ensure_started()
            probe = self.runtime.routes.get(scope.get("path", ""))
            if probe is not None:
                await self.runtime.answer(probe, send)
                return
        await self.app(scope, receive, send)
