"""Startup checks: a dependency graph of checks run concurrently, traced, and reported.

A service should become ready only when what it depends on is. Each check is a sync or async
function (it may return a dict of details). The :class:`StartupOrchestrator` validates the graph
before anything runs, then runs every check whose dependencies succeeded concurrently (lower
``priority`` first when ``max_concurrency`` forces a choice), each attempt bounded by
``timeout_s`` and retried with exponential backoff and jitter. Total startup time is therefore
the critical path through the graph, not the sum of the checks.

Attempts run bounded (see :mod:`flowtel.lifecycle._bounded`): a sync check on a daemon thread of
its own, an async one as its own task; one that overruns is abandoned, never awaited. A check
that raises ``SystemExit``, ``KeyboardInterrupt``, ``GeneratorExit`` or a ``CancelledError`` of
its own has *failed* (no retry): it neither ends the process nor fakes a shutdown request.

Telemetry: one ``flowtel.startup`` span with a child ``flowtel.startup.check`` span per attempt,
``flowtel.startup.retry`` events, and the startup / per-check duration histograms.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Final, TypeVar, overload

from opentelemetry import metrics, trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from flowtel import semconv
from flowtel.exceptions import ConfigurationError, StartupError
from flowtel.lifecycle._attempts import CheckAttempts
from flowtel.lifecycle._bounded import BoundedRunner
from flowtel.lifecycle._graph import dependency_order
from flowtel.lifecycle._outcomes import CheckOutcome, WorkKind
from flowtel.lifecycle._registration import check_keywords, register, seconds
from flowtel.lifecycle._report import (
    CheckFunc,
    CheckResult,
    StartupCheck,
    StartupReport,
    critical_path,
)
from flowtel.lifecycle._state import LifecycleState

__all__ = [
    "CheckOutcome",
    "CheckResult",
    "StartupCheck",
    "StartupOrchestrator",
    "StartupReport",
    "default_orchestrator",
    "register_startup_check",
    "startup_report",
]

_log = logging.getLogger("flowtel.startup")

F = TypeVar("F", bound=CheckFunc)

_POLICY: Final = ("name", "priority", "timeout_s", "depends_on", "retries", "backoff_s",
                  "backoff_max_s", "critical")  # fmt: skip


class StartupOrchestrator:
    """Holds startup checks and runs them as a dependency graph.

    Use the process-wide one through :func:`register_startup_check`, or make your own when you
    avoid module-level registries. :meth:`run` may be called once; it is not thread-safe and must
    run on the event loop that serves the application.

    Args:
        max_concurrency: most checks running at once; ``None`` runs every ready check. When it
            must choose, the lower ``priority`` number starts first.
        jitter: fraction (0..1) of each backoff delay that is randomised, so replicas that fail
            together do not retry together.
        tracer_provider: where spans go; the global provider when ``None``.
        meter_provider: where metrics go; the global provider when ``None``.
        clock: monotonic seconds; injectable so tests control timing.
        sleep: the backoff sleep; injectable for tests.
        rng: randomness for jitter; injectable for tests.
    """

    def __init__(
        self,
        *,
        max_concurrency: int | None = None,
        jitter: float = 0.5,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        if max_concurrency is not None and max_concurrency < 1:
            raise ConfigurationError("max_concurrency", max_concurrency, "an int >= 1 or None")
        if not 0.0 <= jitter <= 1.0:
            raise ConfigurationError("jitter", jitter, "a float between 0 and 1")
        self._checks: dict[str, StartupCheck] = {}
        self._max_concurrency = max_concurrency
        self._tracer = trace.get_tracer("flowtel.startup", tracer_provider=tracer_provider)
        meter = metrics.get_meter("flowtel.startup", meter_provider=meter_provider)
        startup, check = (
            semconv.metric(semconv.METRIC_STARTUP_DURATION),
            semconv.metric(semconv.METRIC_STARTUP_CHECK_DURATION),
        )
        self._startup_hist = meter.create_histogram(
            startup.name, unit=startup.unit, description=startup.description
        )
        self._check_hist = meter.create_histogram(
            check.name, unit=check.unit, description=check.description
        )
        self._clock = clock
        self._attempts = CheckAttempts(
            self._tracer,
            self._check_hist,
            BoundedRunner(WorkKind.STARTUP_CHECK, meter_provider, clock=clock),
            clock=clock,
            sleep=sleep,
            rng=rng or random.Random(),
            jitter=jitter,
        )
        self._report: StartupReport | None = None
        self._started = False

    # ---------------------------------------------------------------- registration
    @property
    def checks(self) -> tuple[StartupCheck, ...]:
        """The registered checks, in registration order."""
        return tuple(self._checks.values())

    @property
    def report(self) -> StartupReport | None:
        """The report of the finished run, or ``None`` before startup has finished."""
        return self._report

    def add(
        self,
        func: CheckFunc,
        *,
        name: str | None = None,
        priority: int = 100,
        timeout_s: float = 30.0,
        depends_on: Iterable[str] = (),
        retries: int = 0,
        backoff_s: float = 1.0,
        backoff_max_s: float = 30.0,
        critical: bool = True,
    ) -> StartupCheck:
        """Register ``func`` as a check.

        Args:
            func: sync or async callable without arguments; may return a mapping of details.
                A sync check runs on a daemon thread of its own so it never blocks the event
                loop, and a hung one never holds the process at exit.
            name: unique check name; defaults to the function's name.
            priority: lower runs first when the orchestrator must choose.
            timeout_s: bound on each attempt; an attempt still running then is abandoned.
            depends_on: names of checks that must succeed before this one starts.
            retries: extra attempts after the first failure or timeout.
            backoff_s: delay before the first retry; doubles per retry up to ``backoff_max_s``.
            backoff_max_s: cap of the backoff delay.
            critical: a critical check that does not succeed fails startup; a non-critical one
                leaves the service DEGRADED.

        Raises:
            ConfigurationError: a bad value, or a name already registered.
        """
        check_name = name or getattr(func, "__name__", None) or repr(func)
        if check_name in self._checks:
            raise ConfigurationError("name", check_name, "a name not already registered")
        if not callable(func):
            raise ConfigurationError("func", func, "a callable without arguments")
        timeout = seconds("timeout_s", timeout_s, zero_ok=False)
        if not isinstance(retries, int) or isinstance(retries, bool) or not 0 <= retries <= 1000:
            raise ConfigurationError("retries", retries, "an int between 0 and 1000")
        backoff = seconds("backoff_s", backoff_s, zero_ok=True)
        backoff_max = seconds("backoff_max_s", backoff_max_s, zero_ok=True)
        deps = (depends_on,) if isinstance(depends_on, str) else tuple(depends_on)
        check = StartupCheck(
            check_name, func, priority, timeout, deps, retries, backoff, backoff_max, critical
        )
        self._checks[check_name] = check
        return check

    def check(self, name: str | None = None, **policy: Any) -> Callable[[F], F]:
        """Decorator form of :meth:`add`; returns the function unchanged."""
        check_keywords("StartupOrchestrator.check", policy, _POLICY)

        def decorate(func: F) -> F:
            self.add(func, name=name, **policy)
            return func

        return decorate

    def validate(self) -> list[str]:
        """Check the graph and return the check names in a valid start order.

        Raises:
            StartupError: a check depends on an unknown check, or the dependencies form a cycle;
                the message names the checks involved.
        """
        return dependency_order(
            {name: check.depends_on for name, check in self._checks.items()}, "startup check"
        )

    # ---------------------------------------------------------------- running
    async def run(self) -> StartupReport:
        """Run the checks once and return the report (also kept in :attr:`report`).

        Never raises for a failing check: the outcome is in the report's ``state``
        (READY, DEGRADED or FAILED). Raises :class:`StartupError` only for an invalid graph,
        before anything runs, or when called twice.
        """
        if self._started:
            raise StartupError("StartupOrchestrator.run() was already called")
        self.validate()
        self._started = True
        started_at = time.time()
        t0 = self._clock()
        with self._tracer.start_as_current_span(
            semconv.SPAN_STARTUP, kind=SpanKind.INTERNAL, end_on_exit=True
        ) as root:
            results = await self._run_graph(root, t0)
            report = self._build_report(results, started_at, t0)
            root.set_attribute(semconv.LIFECYCLE_STATE, report.state.value)
            root.add_event(
                semconv.EVENT_LIFECYCLE_TRANSITION,
                {
                    semconv.LIFECYCLE_FROM: LifecycleState.STARTING.value,
                    semconv.LIFECYCLE_TO: report.state.value,
                },
            )
            if report.state is LifecycleState.FAILED:
                failed = report.failed_critical
                root.set_status(Status(StatusCode.ERROR, f"critical checks failed: {failed}"))
        self._startup_hist.record(report.duration_s, {semconv.LIFECYCLE_STATE: report.state.value})
        self._report = report
        _log.info(
            "startup %s in %.3fs (critical path: %s)",
            report.state.value,
            report.duration_s,
            " -> ".join(report.critical_path) or "-",
        )
        return report

    async def _run_graph(self, root: Span, t0: float) -> dict[str, CheckResult]:
        checks = self._checks
        order = {name: i for i, name in enumerate(checks)}
        results: dict[str, CheckResult] = {}
        started: set[str] = set()
        running: dict[asyncio.Task[CheckResult], str] = {}
        ready: list[tuple[int, int, str]] = []
        root_ctx = trace.set_span_in_context(root)
        try:
            while True:
                changed = True
                while changed:  # skip dependants of anything that did not succeed, transitively
                    changed = False
                    for name, check in checks.items():
                        if name in started or name in results:
                            continue
                        bad = [d for d in check.depends_on if d in results and not results[d].ok]
                        if bad:
                            at = self._clock() - t0
                            results[name] = self._attempts.skipped(check, bad, at, root_ctx)
                            changed = True
                        elif all(d in results for d in check.depends_on):
                            started.add(name)
                            heapq.heappush(ready, (check.priority, order[name], name))
                limit = self._max_concurrency or len(checks) or 1
                while ready and len(running) < limit:
                    _, _, name = heapq.heappop(ready)
                    task = asyncio.create_task(self._attempts.run(checks[name], t0, root_ctx))
                    running[task] = name
                if not running:
                    return results
                done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    results[running.pop(task)] = task.result()
        finally:
            for task in running:  # each stops at once: the work itself is abandoned, not awaited
                task.cancel()
            if running:
                await asyncio.gather(*running, return_exceptions=True)

    def _build_report(
        self, results: dict[str, CheckResult], started_at: float, t0: float
    ) -> StartupReport:
        ordered = tuple(results[name] for name in self._checks if name in results)
        if any(c.critical and not c.ok for c in ordered):
            state = LifecycleState.FAILED
        elif all(c.ok for c in ordered):
            state = LifecycleState.READY
        else:
            state = LifecycleState.DEGRADED
        duration = max((c.end_s for c in ordered), default=self._clock() - t0)
        return StartupReport(state, started_at, duration, ordered, critical_path(results))


_default = StartupOrchestrator()


def default_orchestrator() -> StartupOrchestrator:
    """The process-wide orchestrator that :func:`register_startup_check` fills."""
    return _default


@overload
def register_startup_check(func: F, /) -> F: ...
@overload
def register_startup_check(name: str, func: F, /, **policy: Any) -> F: ...
@overload
def register_startup_check(
    name: str | None = None,
    /,
    *,
    priority: int = 100,
    timeout_s: float = 30.0,
    depends_on: Iterable[str] = (),
    retries: int = 0,
    backoff_s: float = 1.0,
    backoff_max_s: float = 30.0,
    critical: bool = True,
) -> Callable[[F], F]: ...
@overload
def register_startup_check(
    *,
    name: str | None = None,
    priority: int = 100,
    timeout_s: float = 30.0,
    depends_on: Iterable[str] = (),
    retries: int = 0,
    backoff_s: float = 1.0,
    backoff_max_s: float = 30.0,
    critical: bool = True,
) -> Callable[[F], F]: ...
def register_startup_check(*args: Any, **policy: Any) -> Any:
    """Register a startup check on the process-wide orchestrator.

    Bare (``@register_startup_check``), called (``@register_startup_check(name=..., ...)``) or
    direct (``register_startup_check(func, ...)``); the keywords are those of
    :meth:`StartupOrchestrator.add`. ``add_k8s_probes`` and ``managed_lifecycle`` run these
    checks; the function is returned unchanged.

    Raises:
        TypeError: an unknown keyword (the message names the accepted ones and the closest).
    """
    return register("register_startup_check", _default.add, _POLICY, args, policy)


def startup_report() -> StartupReport | None:
    """The process-wide startup timeline, or ``None`` until startup has finished."""
    return _default.report
