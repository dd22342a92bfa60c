"""Kubernetes probes for any ASGI app: /alive, /ready, /startup, /health.

``add_k8s_probes(app)`` alone is enough under plain ``uvicorn module:app``. It wraps the app's
lifespan: when the app's own startup completes, the registered startup checks start in a
background task, so they run while uvicorn opens its listener and ``/startup`` answers 503
until they finish. It also takes over SIGTERM for the readiness drain (see
:mod:`flowtel.lifecycle`), starts the readiness monitor once startup is done, and at lifespan
shutdown runs the shutdown hooks and flushes telemetry.

Probe answers never touch dependencies: they read the lifecycle state, the cached readiness
results and an event-loop heartbeat, so a probe can neither hang nor fail with a 500.
"""

from __future__ import annotations

import asyncio
import enum
import json
import logging
import time
import weakref
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from opentelemetry import metrics

from flowtel import semconv
from flowtel.exceptions import ConfigurationError, StartupError
from flowtel.lifecycle._asgi import ASGIApp, InnerLifespan, Receive, Scope, Send
from flowtel.lifecycle._lifecycle import Lifecycle, default_lifecycle
from flowtel.lifecycle._readiness import ReadinessMonitor, default_readiness
from flowtel.lifecycle._startup import StartupOrchestrator
from flowtel.lifecycle._state import LifecycleState

__all__ = ["LivenessMonitor", "Probe", "ProbePaths", "add_k8s_probes", "probe_paths"]

_log = logging.getLogger("flowtel.probes")


class Probe(enum.StrEnum):
    """The four probe endpoints."""

    ALIVE = "alive"
    READY = "ready"
    STARTUP = "startup"
    HEALTH = "health"


@dataclass(frozen=True, slots=True)
class ProbePaths:
    """URL paths of the probes; change them when they clash with your routes."""

    alive: str = "/alive"
    ready: str = "/ready"
    startup: str = "/startup"
    health: str = "/health"

    def as_tuple(self) -> tuple[str, ...]:
        """All four paths."""
        return (self.alive, self.ready, self.startup, self.health)


class LivenessMonitor:
    """An event-loop heartbeat: the process is wedged when the loop stops turning.

    A task wakes every ``interval_s`` and stamps the time; ``/alive`` fails when the last stamp
    is older than ``max_lag_s`` (a blocking call, a deadlock, a runaway CPU loop).

    Args:
        interval_s: heartbeat period.
        max_lag_s: oldest acceptable heartbeat.
        clock: monotonic seconds, injectable for tests.
    """

    def __init__(
        self,
        *,
        interval_s: float = 1.0,
        max_lag_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if interval_s <= 0:
            raise ConfigurationError("heartbeat_interval_s", interval_s, "seconds > 0")
        if max_lag_s <= interval_s:
            raise ConfigurationError("alive_max_lag_s", max_lag_s, "seconds > heartbeat interval")
        self.interval_s = interval_s
        self.max_lag_s = max_lag_s
        self._clock = clock
        self._last_beat = clock()
        self._lag_s = 0.0
        self._task: asyncio.Task[None] | None = None

    def beat(self) -> None:
        """Stamp the heartbeat now."""
        self._last_beat = self._clock()

    def stale_s(self) -> float:
        """Seconds since the last heartbeat."""
        return max(0.0, self._clock() - self._last_beat)

    def lag_s(self) -> float:
        """How late the last heartbeat woke up versus its schedule (event-loop lag)."""
        return self._lag_s

    def alive(self) -> bool:
        """False when the loop has not turned for longer than ``max_lag_s``."""
        return self.stale_s() <= self.max_lag_s

    def start(self) -> None:
        """Start the heartbeat task on the running loop."""
        if self._task is None:
            self.beat()
            self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        """Stop the heartbeat task."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            expected = self._clock() + self.interval_s
            await asyncio.sleep(self.interval_s)
            self._lag_s = max(0.0, self._clock() - expected)
            self.beat()


_PROBE_PATHS: weakref.WeakKeyDictionary[Any, ProbePaths] = weakref.WeakKeyDictionary()


def probe_paths(app: object) -> tuple[str, ...]:
    """The probe paths ``add_k8s_probes`` gave ``app`` (the defaults if it was not called)."""
    try:
        return _PROBE_PATHS.get(app, ProbePaths()).as_tuple()
    except TypeError:  # not weak-referenceable
        return ProbePaths().as_tuple()


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
    runtime = _ProbeRuntime(
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
    try:
        _PROBE_PATHS[app] = runtime.paths
        _PROBE_PATHS[target] = runtime.paths
    except TypeError:  # pragma: no cover - app not weak-referenceable
        pass
    return target


class ProbeMiddleware:
    """ASGI middleware answering the probe paths and driving the lifecycle from the lifespan."""

    def __init__(self, app: ASGIApp, *, runtime: _ProbeRuntime) -> None:
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


class _ProbeRuntime:
    """Shared state behind one ``add_k8s_probes`` call."""

    def __init__(
        self,
        lifecycle: Lifecycle,
        readiness: ReadinessMonitor,
        liveness: LivenessMonitor,
        paths: ProbePaths,
        *,
        expose_details: bool,
        handle_signals: bool,
        meter_provider: metrics.MeterProvider | None,
        error_window_minutes: float = 5.0,
        error_rate_warn: float = 0.05,
    ) -> None:
        self.lifecycle = lifecycle
        self.readiness = readiness
        self.liveness = liveness
        self.paths = paths
        self.routes = {getattr(paths, p.value): p for p in Probe}
        self.expose_details = expose_details
        self.handle_signals = handle_signals
        self.error_window_minutes = error_window_minutes
        self.error_rate_warn = error_rate_warn
        meter = metrics.get_meter("flowtel.probes", meter_provider=meter_provider)
        spec = semconv.metric(semconv.METRIC_PROBE_CHECKS)
        self._probe_counter = meter.create_counter(
            spec.name, unit=spec.unit, description=spec.description
        )
        self._started = False
        self._startup_task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ lifespan
    async def lifespan(self, app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
        inner = InnerLifespan(app, scope)
        await receive()  # lifespan.startup
        error = await inner.exchange("lifespan.startup")
        if error is None:
            try:  # a broken graph must stop the server before it listens
                self.lifecycle.orchestrator.validate()
                self.lifecycle.hook_order()
            except StartupError as exc:
                error = str(exc)
        if error is not None:
            await send({"type": "lifespan.startup.failed", "message": error})
            return
        self.ensure_started()
        await send({"type": "lifespan.startup.complete"})
        await receive()  # lifespan.shutdown
        error = await inner.exchange("lifespan.shutdown")
        await self.shutdown()
        if error is not None:
            await send({"type": "lifespan.shutdown.failed", "message": error})
        else:
            await send({"type": "lifespan.shutdown.complete"})

    def ensure_started(self) -> None:
        """Start checks, heartbeat and signal handling once (lifespan, or first request)."""
        if self._started:
            return
        self._started = True
        if self.handle_signals:
            try:
                self.lifecycle.install_signal_handlers()
            except Exception:  # never break the host over signal handling
                _log.warning("could not install signal handlers", exc_info=True)
        self.liveness.start()
        self._startup_task = asyncio.ensure_future(self._run_startup())

    async def _run_startup(self) -> None:
        try:
            report = await self.lifecycle.start()
        except StartupError as exc:
            _log.error("startup did not complete: %s", exc)
            return
        except Exception:  # pragma: no cover - start() reports failures in the report
            _log.exception("startup crashed")
            return
        if report.state is LifecycleState.FAILED:
            _log.error("startup FAILED; /startup, /ready and /alive now answer 503")
        elif self.lifecycle.state.serving:
            self.readiness.start()

    async def shutdown(self) -> None:
        """Stop background work, then run the lifecycle shutdown (hooks, flush)."""
        await self.readiness.stop()
        await self.liveness.stop()
        await self.lifecycle.shutdown()
        if self._startup_task is not None:
            await asyncio.gather(self._startup_task, return_exceptions=True)
        self.lifecycle.remove_signal_handlers()

    # ------------------------------------------------------------------ probes
    def evaluate(self, probe: Probe) -> tuple[bool, dict[str, Any]]:
        """Whether ``probe`` passes, and its JSON body."""
        state = self.lifecycle.state
        report = self.lifecycle.report
        if probe is Probe.STARTUP:
            ok = report is not None and report.state is not LifecycleState.FAILED
        elif probe is Probe.READY:
            ok = state.serving and self.readiness.ok()
        elif probe is Probe.ALIVE:
            ok = state is not LifecycleState.FAILED and self.liveness.alive()
        else:
            return self._health()
        body: dict[str, Any] = {"status": "pass" if ok else "fail"}
        if self.expose_details:
            body["state"] = state.value
        return ok, body

    def _health(self) -> tuple[bool, dict[str, Any]]:
        state = self.lifecycle.state
        ready = state.serving and self.readiness.ok()
        degraded = state is LifecycleState.DEGRADED
        status = "fail" if not ready else ("warn" if degraded else "pass")
        body: dict[str, Any] = {"status": status}
        if not self.expose_details:
            return ready, body
        report = self.lifecycle.report
        body["state"] = state.value
        body["checks"] = {name: s.to_dict() for name, s in self.readiness.statuses().items()}
        body["startup"] = None if report is None else report.to_dict()
        body["event_loop"] = {
            "lag_s": round(self.liveness.lag_s(), 6),
            "since_heartbeat_s": round(self.liveness.stale_s(), 6),
        }
        errors = _error_stats(self.error_window_minutes, self.error_rate_warn)
        body["errors"] = errors
        if body["status"] == "pass" and errors is not None and errors["high"]:
            body["status"] = "warn"
        return ready, body

    async def answer(self, probe: Probe, send: Send) -> None:
        try:
            ok, body = self.evaluate(probe)
        except Exception:  # a probe never answers 500
            _log.exception("probe %s failed to evaluate", probe.value)
            ok, body = False, {"status": "fail"}
        with suppress(Exception):  # telemetry must not break probes
            self._probe_counter.add(
                1, {semconv.PROBE: probe.value, semconv.PROBE_OUTCOME: "pass" if ok else "fail"}
            )
        payload = json.dumps(body, default=str).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200 if ok else 503,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                    (b"cache-control", b"no-store"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})


def _error_stats(last_minutes: float, warn_rate: float) -> dict[str, Any] | None:
    """The error rate from ``flowtel.errors.get_error_stats``, or ``None`` when unavailable.

    ``flowtel.errors`` is imported on first use; if it fails, ``/health`` still answers,
    without this section.
    """
    try:
        from flowtel.errors import get_error_stats

        stats = get_error_stats(last_minutes=last_minutes)
        window = getattr(stats, "window", None)
        return {
            "window_s": window.total_seconds() if window is not None else last_minutes * 60,
            "total": stats.total,
            "errors": stats.errors,
            "handled": stats.handled,
            "error_rate": round(stats.error_rate, 6),
            "high": bool(stats.exceeds(warn_rate)),
            "by_type": dict(list(stats.by_type.items())[:5]),
            "top_operations": [
                {"component": key[0], "operation": key[1], "errors": op.errors,
                 "total": op.total, "error_rate": round(op.error_rate, 6)}
                for key, op in stats.top(5)
            ],
        }  # fmt: skip
    except Exception:
        _log.debug("get_error_stats failed", exc_info=True)
        return None
