"""The service lifecycle: one state machine, graceful shutdown hooks, and signal handling.

``STARTING -> READY | DEGRADED | FAILED -> DRAINING -> STOPPED``. Probes answer from
:attr:`Lifecycle.state` only. On SIGTERM/SIGINT the state turns DRAINING at once (readiness
fails) while the server keeps serving for ``drain_s`` so Kubernetes can remove the endpoint;
then the server stops, shutdown hooks run in reverse dependency order (each bounded), and
telemetry is flushed. A second signal ends the drain early.

Under plain ``uvicorn module:app`` the handlers uvicorn installs (``Server.capture_signals``
with ``Server.handle_exit``) are found and wrapped: uvicorn is told to exit by setting
``server.should_exit`` after the drain instead of being handed the signal, so uvicorn does not
re-raise it on the way out and the process exits 0. In a worker without a web server,
:func:`managed_lifecycle` installs asyncio signal handlers instead.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.metrics import Observation
from opentelemetry.trace import Span, Status, StatusCode

from flowtel import semconv
from flowtel._core._gauge import SharedGauge
from flowtel._core._options import DEFAULT_DRAIN_S, DEFAULT_SHUTDOWN_TIMEOUT_S
from flowtel._core._telemetry import HUB
from flowtel.exceptions import StartupError
from flowtel.lifecycle._bounded import BoundedRunner, detach_stragglers
from flowtel.lifecycle._hooks import HOOK_KEYWORDS, ShutdownHook, ShutdownHooks, flush_telemetry
from flowtel.lifecycle._outcomes import ShutdownOutcome, WorkKind
from flowtel.lifecycle._registration import register, seconds
from flowtel.lifecycle._report import StartupReport
from flowtel.lifecycle._signals import SignalBridge, SignalMode
from flowtel.lifecycle._startup import StartupOrchestrator, default_orchestrator
from flowtel.lifecycle._state import LifecycleState

__all__ = ["Lifecycle", "ShutdownHook"]

_log = logging.getLogger("flowtel.lifecycle")

_ALLOWED: dict[LifecycleState, frozenset[LifecycleState]] = {
    LifecycleState.STARTING: frozenset(
        {
            LifecycleState.READY,
            LifecycleState.DEGRADED,
            LifecycleState.FAILED,
            LifecycleState.DRAINING,
        }
    ),
    LifecycleState.READY: frozenset({LifecycleState.DRAINING}),
    LifecycleState.DEGRADED: frozenset({LifecycleState.DRAINING}),
    LifecycleState.FAILED: frozenset({LifecycleState.DRAINING}),
    LifecycleState.DRAINING: frozenset({LifecycleState.STOPPED}),
    LifecycleState.STOPPED: frozenset(),
}


class Lifecycle:
    """The state machine of one service, with its startup checks and shutdown hooks.

    Most services use the process-wide one (:func:`default_lifecycle`), which
    :func:`register_shutdown_hook`, ``add_k8s_probes`` and :func:`managed_lifecycle` share.
    Its own work (hooks, the final flush) runs bounded on daemon threads or detached tasks, so
    nothing it runs can keep the process alive past its budget.
    All methods must be called on the event loop thread, except the signal handler.

    Args:
        orchestrator: the startup checks to run; the process-wide orchestrator when ``None``.
        drain_s: how long to keep serving after SIGTERM while readiness fails, so that
            Kubernetes removes the pod from its endpoints before the listener closes.
        flush_timeout_s: bound on the final telemetry flush.
        tracer_provider: where spans go; the global provider when ``None``.
        meter_provider: where metrics go; the global provider when ``None``.
        flush: called with a timeout in seconds at the end of shutdown; defaults to the
            configured ``Telemetry.force_flush`` (or the global OTel providers' ``force_flush``).
        clock: monotonic seconds, injectable for tests.
    """

    def __init__(
        self,
        orchestrator: StartupOrchestrator | None = None,
        *,
        drain_s: float | None = None,
        flush_timeout_s: float | None = None,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
        flush: Callable[[float], object] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.orchestrator = orchestrator or default_orchestrator()
        self._drain_s: float | None = None
        if drain_s is not None:
            self.drain_s = drain_s
        self._flush_timeout_s: float | None = None
        if flush_timeout_s is not None:
            self.flush_timeout_s = flush_timeout_s
        self._tracer_provider = tracer_provider
        self._meter_provider = meter_provider
        self._flush = flush or flush_telemetry
        self._clock = clock
        self._state = LifecycleState.STARTING
        self._hooks = ShutdownHooks(tracer_provider, meter_provider)
        self._flusher = BoundedRunner(WorkKind.FLUSH, meter_provider)
        self._startup_task: asyncio.Task[StartupReport] | None = None
        self._shutdown_span: Span | None = None
        self._shutdown_t0 = 0.0
        self._drain_handle: asyncio.TimerHandle | None = None
        self._requested = False
        self._drained = asyncio.Event()
        self._shutdown_task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._drain_callbacks: list[Callable[[], object]] = []
        self._signals = SignalBridge(self)

    # ---------------------------------------------------------------- configuration
    @property
    def drain_s(self) -> float:
        """Seconds to keep serving after the first signal while readiness fails.

        Unless set here, ``configure_telemetry(drain_s=...)`` as configured now (read at use,
        so the order of configuration and import does not matter).
        """
        if self._drain_s is not None:
            return self._drain_s
        current = HUB.current
        return current.settings.drain_s if current is not None else DEFAULT_DRAIN_S

    @drain_s.setter
    def drain_s(self, value: float) -> None:
        self._drain_s = seconds("drain_s", value, zero_ok=True)

    @property
    def flush_timeout_s(self) -> float:
        """Bound on the final telemetry flush: unless set here, the configured
        ``shutdown_timeout_s``."""
        if self._flush_timeout_s is not None:
            return self._flush_timeout_s
        current = HUB.current
        if current is None:
            return DEFAULT_SHUTDOWN_TIMEOUT_S
        return current.settings.shutdown_timeout_s

    @flush_timeout_s.setter
    def flush_timeout_s(self, value: float) -> None:
        self._flush_timeout_s = seconds("flush_timeout_s", value, zero_ok=False)

    @property
    def state(self) -> LifecycleState:
        """The current lifecycle state."""
        return self._state

    @property
    def shutdown_requested(self) -> bool:
        """True once a signal or :meth:`request_shutdown` began the shutdown."""
        return self._requested

    @property
    def should_stop(self) -> bool:
        """True once the drain is over: a worker should stop taking new work."""
        return self._drained.is_set()

    @property
    def report(self) -> StartupReport | None:
        """The startup timeline once startup has finished."""
        return self.orchestrator.report

    def register_shutdown_hook(self, *args: Any, **policy: Any) -> Any:
        """Register a hook to run at shutdown, bounded by ``timeout_s`` (default 5 s).

        The shapes of every flowtel registration: ``register_shutdown_hook(func, ...)``,
        ``register_shutdown_hook("name", func, ...)``, or as a decorator, bare or called
        (``@register_shutdown_hook(name=..., timeout_s=..., depends_on=...)``). The name
        defaults to the function's. Returns ``func`` (or a decorator returning it).

        Hooks run one at a time in reverse dependency order: a hook runs before the hooks it
        ``depends_on`` (close the HTTP client before the connection pool it uses). A sync hook
        runs on a daemon thread; one still running at its timeout is abandoned.

        Raises:
            ConfigurationError: a bad timeout or a name already registered.
            TypeError: an unknown keyword (the message names the accepted ones).
        """
        return register("register_shutdown_hook", self._hooks.add, HOOK_KEYWORDS, args, policy)

    def hook_order(self) -> list[str]:
        """Shutdown hook names in the order they will run.

        Raises:
            StartupError: unknown dependency or a cycle among hooks (checked at startup, so a
                broken graph fails before the service takes traffic).
        """
        return self._hooks.order()

    # ---------------------------------------------------------------- startup
    async def start(self) -> StartupReport:
        """Run the startup checks and move to READY, DEGRADED or FAILED.

        Raises:
            StartupError: invalid check or hook graph (before anything runs), or startup was
                interrupted by a shutdown request.
        """
        self._bind_loop()
        if self._requested and self._startup_task is None:
            raise StartupError("shutdown was requested before startup began")
        self.hook_order()
        _STATE_GAUGE.add(self, self._meter_provider)
        if self._startup_task is None:
            self._startup_task = asyncio.ensure_future(self.orchestrator.run())
        try:
            report = await asyncio.shield(self._startup_task)
        except asyncio.CancelledError:
            if not self._startup_task.cancelled():
                raise  # our caller was cancelled, not startup
            if not self._requested:  # cancelled by someone else: never left half-started
                self._transition(LifecycleState.FAILED)
                raise StartupError("startup was cancelled before it finished") from None
            raise StartupError("startup interrupted by a shutdown request") from None
        if self._state is LifecycleState.STARTING:
            self._transition(report.state)
        return report

    # ---------------------------------------------------------------- shutdown
    def request_shutdown(self, reason: str = "requested") -> None:
        """Fail readiness now and start the drain; safe to call more than once.

        Called by the signal handlers; call it yourself to stop a worker. The drain delay
        only applies when the service was serving (READY or DEGRADED): a service that never
        became ready was never in the endpoints, so there is nothing to drain.
        """
        loop = self._bind_loop()
        if self._requested:
            return
        self._requested = True
        was_serving = self._state.serving
        tracer = trace.get_tracer("flowtel.lifecycle", tracer_provider=self._tracer_provider)
        self._shutdown_t0 = self._clock()
        self._shutdown_span = tracer.start_span(
            semconv.SPAN_SHUTDOWN,
            context=trace.set_span_in_context(trace.INVALID_SPAN),
            attributes={semconv.LIFECYCLE_STATE: self._state.value,
                        semconv.SHUTDOWN_REASON: reason},
        )  # fmt: skip
        if self._startup_task is not None and not self._startup_task.done():
            self._startup_task.cancel()
        if self._state is not LifecycleState.DRAINING:
            self._transition(LifecycleState.DRAINING)
        drain = self.drain_s if was_serving else 0.0
        _log.info("shutdown requested (%s); draining for %.1fs", reason, drain)
        self._drain_handle = loop.call_later(drain, self._end_drain)

    def end_drain(self) -> None:
        """End the drain now (a second signal does this)."""
        if self._drain_handle is not None:
            self._drain_handle.cancel()
        self._end_drain()

    async def wait_for_stop(self) -> None:
        """Return once a shutdown was requested and the drain is over."""
        await self._drained.wait()

    async def shutdown(self) -> None:
        """Drain (if requested), run the hooks, move to STOPPED and flush telemetry.

        Never raises: a failing or hanging hook is logged, traced and given up on after its
        timeout. Safe to call more than once; later calls wait for the first.
        """
        if self._shutdown_task is None:
            self._shutdown_task = asyncio.ensure_future(self._shutdown())
        await asyncio.shield(self._shutdown_task)

    async def _shutdown(self) -> None:
        if not self._requested:
            self.request_shutdown("exit")
            self.end_drain()  # nothing asked to drain: the server or worker already stopped
        await self._drained.wait()
        span = self._shutdown_span or trace.INVALID_SPAN
        try:
            order = self.hook_order()
        except StartupError as exc:  # pragma: no cover - validated at start()
            _log.error("%s; running hooks in reverse registration order", exc)
            order = self._hooks.fallback_order()
        outcome = await self._hooks.run(order, trace.set_span_in_context(span))
        self._transition(LifecycleState.STOPPED)
        span.set_attribute(semconv.SHUTDOWN_OUTCOME, outcome.value)
        if outcome is not ShutdownOutcome.SUCCESS:
            span.set_status(Status(StatusCode.ERROR, "a shutdown hook failed"))
        span.end()
        meter = metrics.get_meter("flowtel.lifecycle", meter_provider=self._meter_provider)
        spec = semconv.metric(semconv.METRIC_SHUTDOWN_DURATION)
        meter.create_histogram(spec.name, unit=spec.unit, description=spec.description).record(
            self._clock() - self._shutdown_t0, {semconv.SHUTDOWN_OUTCOME: outcome.value}
        )
        budget = self.flush_timeout_s
        flush = self._flush
        result = await self._flusher.run(lambda: flush(budget), budget + 1.0, "telemetry")
        if result.error is not None:
            _log.warning("telemetry flush failed: %s", result.error)
        stragglers = detach_stragglers()
        if stragglers:
            _log.warning("%d cancelled checks ignored cancellation; abandoned", stragglers)
        _log.info("stopped (%s) in %.3fs", outcome.value, self._clock() - self._shutdown_t0)

    def _end_drain(self) -> None:
        if not self._requested or self._drained.is_set():
            return
        self._drained.set()
        drained_s = self._clock() - self._shutdown_t0
        if self._shutdown_span is not None:  # the drain actually served, after any shortening
            self._shutdown_span.set_attribute(semconv.SHUTDOWN_DRAIN, drained_s)
        _log.info("drain finished after %.1fs", drained_s)
        for callback in self._drain_callbacks:
            try:
                callback()
            except Exception:
                _log.exception("drain callback failed")

    # ---------------------------------------------------------------- signals
    def install_signal_handlers(self) -> SignalMode:
        """Take over SIGTERM/SIGINT for graceful shutdown; call on the loop, in the main thread.

        Under uvicorn its own ``handle_exit`` is wrapped (see :mod:`flowtel._signals`);
        otherwise asyncio handlers are added. Off the main thread nothing happens.
        """
        self._bind_loop()
        return self._signals.install()

    def remove_signal_handlers(self) -> None:
        """Give SIGTERM/SIGINT back to whoever had them before."""
        self._signals.remove()

    def add_drain_callback(self, callback: Callable[[], object]) -> None:
        """Call ``callback`` on the loop when the drain ends (e.g. to stop the server)."""
        self._drain_callbacks.append(callback)

    # ---------------------------------------------------------------- internals
    def _bind_loop(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if self._loop is None or self._loop.is_closed():
            self._loop = loop
        return loop

    def _transition(self, to: LifecycleState) -> None:
        current = self._state
        if to not in _ALLOWED[current]:
            _log.warning("ignored lifecycle transition %s -> %s", current.value, to.value)
            return
        self._state = to
        _log.info("lifecycle %s -> %s", current.value, to.value)
        span = self._shutdown_span
        if span is not None and span.is_recording():
            span.add_event(
                semconv.EVENT_LIFECYCLE_TRANSITION,
                {semconv.LIFECYCLE_FROM: current.value, semconv.LIFECYCLE_TO: to.value},
            )

    def _state_observations(self) -> Iterable[Observation]:
        current = self._state
        return [
            Observation(1 if state is current else 0, {semconv.LIFECYCLE_STATE: state.value})
            for state in LifecycleState
        ]


_STATE_GAUGE: SharedGauge[Lifecycle] = SharedGauge(
    "flowtel.lifecycle", semconv.METRIC_LIFECYCLE_STATE, Lifecycle._state_observations
)
