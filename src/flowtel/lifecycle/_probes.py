"""What the probe endpoints answer, and the lifespan that drives the lifecycle behind them.

Probe answers never touch dependencies: they read the lifecycle state, the cached readiness
results and an event-loop heartbeat, so a probe can neither hang nor fail with a 500. Each
worker process of a multi-process server answers for itself.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from contextlib import suppress
from typing import Any

from opentelemetry import metrics

from flowtel import semconv
from flowtel._core._scrub import current_scrubber
from flowtel._core._telemetry import HUB
from flowtel.exceptions import StartupError
from flowtel.lifecycle._asgi import ASGIApp, InnerLifespan, Receive, Scope, Send
from flowtel.lifecycle._lifecycle import Lifecycle
from flowtel.lifecycle._liveness import LivenessMonitor
from flowtel.lifecycle._outcomes import ProbeOutcome
from flowtel.lifecycle._paths import Probe, ProbePaths
from flowtel.lifecycle._readiness import ReadinessMonitor
from flowtel.lifecycle._state import LifecycleState

__all__ = ["ProbeRuntime"]

_log = logging.getLogger("flowtel.probes")


class ProbeRuntime:
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
        body: dict[str, Any] = {"status": _outcome(ok).value}
        if self.expose_details:
            body["state"] = state.value
        return ok, body

    def _health(self) -> tuple[bool, dict[str, Any]]:
        state = self.lifecycle.state
        ready = state.serving and self.readiness.ok()
        degraded = state is LifecycleState.DEGRADED
        status = ProbeOutcome.WARN if ready and degraded else _outcome(ready)
        body: dict[str, Any] = {"status": status.value}
        if not self.expose_details:
            return ready, body
        report = self.lifecycle.report
        body["state"] = state.value
        body["checks"] = {name: s.to_dict() for name, s in self.readiness.statuses().items()}
        body["startup"] = None if report is None else report.to_dict()
        body["process"] = _process()
        body["event_loop"] = {
            "lag_s": round(self.liveness.lag_s(), 6),
            "since_heartbeat_s": round(self.liveness.stale_s(), 6),
        }
        errors = _error_stats(self.error_window_minutes, self.error_rate_warn)
        body["errors"] = errors
        if status is ProbeOutcome.PASS and errors is not None and errors["high"]:
            body["status"] = ProbeOutcome.WARN.value
        return ready, body

    async def answer(self, probe: Probe, send: Send) -> None:
        try:
            ok, body = self.evaluate(probe)
        except Exception:  # a probe never answers 500
            _log.exception("probe %s failed to evaluate", probe.value)
            ok, body = False, {"status": ProbeOutcome.FAIL.value}
        with suppress(Exception):  # telemetry must not break probes
            self._probe_counter.add(
                1, {semconv.PROBE: probe.value, semconv.PROBE_OUTCOME: _outcome(ok).value}
            )
        # Check errors, operation names (span names) and startup reports are service data.
        clean = current_scrubber().scrub_data(body, by_key=False)
        payload = json.dumps(clean, default=str).encode()
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


def _process() -> dict[str, Any]:
    """Which worker answered: each process of a multi-worker server has its own ``/health``."""
    current = HUB.current
    attributes = current.settings.resource_attributes if current is not None else {}
    return {"pid": os.getpid(), "service_instance_id": attributes.get("service.instance.id")}


def _outcome(ok: bool) -> ProbeOutcome:
    return ProbeOutcome.PASS if ok else ProbeOutcome.FAIL


def _error_stats(last_minutes: float, warn_rate: float) -> dict[str, Any] | None:
    """The error rate from ``flowtel.errors.get_error_stats``, or ``None`` when unavailable.

    ``flowtel.errors`` is imported on first use; if it fails, ``/health`` still answers,
    without this section.
    """
    try:
        from flowtel.errors import get_error_stats

        stats = get_error_stats(last_minutes=last_minutes)
        window = getattr(stats, "window", None)
        entries = stats.entries  # the service's rate: requests, jobs, messages (not spans)

        def top(level: Any) -> list[dict[str, Any]]:
            return [
                {"component": key[0], "operation": key[1], "errors": op.errors,
                 "total": op.total, "error_rate": round(op.error_rate, 6)}
                for key, op in level.top(5)
            ]  # fmt: skip

        return {
            "window_s": window.total_seconds() if window is not None else last_minutes * 60,
            "level": "entries",
            "total": entries.total,
            "errors": entries.errors,
            "handled": stats.handled,
            "error_rate": round(entries.error_rate, 6),
            "high": bool(entries.exceeds(warn_rate)),
            "by_type": dict(list(entries.by_type.items())[:5]),
            "top_entries": top(entries),
            "operations": {"total": stats.total, "errors": stats.errors,
                           "error_rate": round(stats.error_rate, 6)},
            "top_operations": top(stats),
        }  # fmt: skip
    except Exception:
        _log.debug("get_error_stats failed", exc_info=True)
        return None
