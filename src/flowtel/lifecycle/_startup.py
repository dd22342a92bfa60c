"""Startup checks: a dependency graph of checks run concurrently, traced, and reported.

A service should become ready only when what it depends on is. Each check is a sync or async
function (it may return a dict of details). The :class:`StartupOrchestrator` validates the graph
before anything runs, then runs every check whose dependencies succeeded concurrently (lower
``priority`` first when ``max_concurrency`` forces a choice), each attempt bounded by
``timeout_s`` and retried with exponential backoff and jitter. Total startup time is therefore
the critical path through the graph, not the sum of the checks.

Telemetry: one ``flowtel.startup`` span with a child ``flowtel.startup.check`` span per attempt,
``flowtel.startup.retry`` events, and the startup / per-check duration histograms.
"""

from __future__ import annotations

import asyncio
import heapq
import inspect
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar, overload

from opentelemetry import metrics, trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from flowtel import semconv
from flowtel._core._scrub import REDACTED, current_scrubber
from flowtel._core._values import exception_attributes, qualified_type_name, safe_str
from flowtel.exceptions import ConfigurationError, StartupError
from flowtel.lifecycle._graph import dependency_order
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

CheckFunc = Callable[[], Any]
"""A startup check: sync or async, no arguments; it may return a mapping of details."""

F = TypeVar("F", bound=CheckFunc)


class CheckOutcome(StrEnum):
    """How a startup check (or one attempt of it) ended."""

    SUCCESS = "success"
    FAILED = "failed"
    TIMEOUT = "timeout"
    SKIPPED = "skipped"


@dataclass(frozen=True, slots=True)
class StartupCheck:
    """A registered check and its policy; see :meth:`StartupOrchestrator.add` for the fields."""

    name: str
    func: CheckFunc
    priority: int = 100
    timeout_s: float = 30.0
    depends_on: tuple[str, ...] = ()
    retries: int = 0
    backoff_s: float = 1.0
    backoff_max_s: float = 30.0
    critical: bool = True


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One check in the startup timeline. Times are seconds since startup began."""

    name: str
    priority: int
    critical: bool
    depends_on: tuple[str, ...]
    outcome: CheckOutcome
    attempts: int
    start_s: float
    end_s: float
    details: Mapping[str, Any] = field(default_factory=dict)
    error: str | None = None

    @property
    def duration_s(self) -> float:
        """Wall time from first attempt to final outcome, backoff included."""
        return self.end_s - self.start_s

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view (for /health, logs, and the docs)."""
        return {
            "name": self.name,
            "priority": self.priority,
            "critical": self.critical,
            "depends_on": list(self.depends_on),
            "outcome": self.outcome.value,
            "attempts": self.attempts,
            "start_s": round(self.start_s, 6),
            "end_s": round(self.end_s, 6),
            "duration_s": round(self.duration_s, 6),
            "details": dict(self.details),
            "error": self.error,
        }


@dataclass(frozen=True, slots=True)
class StartupReport:
    """The startup timeline: every check, the resulting state and the critical path."""

    state: LifecycleState
    started_at: float
    duration_s: float
    checks: tuple[CheckResult, ...]
    critical_path: tuple[str, ...]

    def check(self, name: str) -> CheckResult:
        """The result of the check called ``name``."""
        for result in self.checks:
            if result.name == name:
                return result
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view of the whole report."""
        return {
            "state": self.state.value,
            "started_at": self.started_at,
            "duration_s": round(self.duration_s, 6),
            "sum_of_checks_s": round(sum(c.duration_s for c in self.checks), 6),
            "critical_path": list(self.critical_path),
            "checks": [c.to_dict() for c in self.checks],
        }


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
        self._jitter = jitter
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
        self._sleep = sleep
        self._rng = rng or random.Random()
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
                A sync check runs in a worker thread so it never blocks the event loop.
            name: unique check name; defaults to the function's name.
            priority: lower runs first when the orchestrator must choose.
            timeout_s: bound on each attempt.
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
        if timeout_s <= 0:
            raise ConfigurationError("timeout_s", timeout_s, "a number of seconds > 0")
        if retries < 0:
            raise ConfigurationError("retries", retries, "an int >= 0")
        if backoff_s < 0 or backoff_max_s < 0:
            raise ConfigurationError("backoff_s", backoff_s, "seconds >= 0")
        deps = (depends_on,) if isinstance(depends_on, str) else tuple(depends_on)
        check = StartupCheck(
            check_name, func, priority, float(timeout_s), deps, retries, backoff_s,
            backoff_max_s, critical,
        )  # fmt: skip
        self._checks[check_name] = check
        return check

    def check(self, name: str | None = None, **policy: Any) -> Callable[[F], F]:
        """Decorator form of :meth:`add`; returns the function unchanged."""

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
                failed = [c.name for c in report.checks if c.critical and not _ok(c)]
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
                        bad = [d for d in check.depends_on if d in results and not _ok(results[d])]
                        if bad:
                            results[name] = self._skipped(check, bad, self._clock() - t0, root_ctx)
                            changed = True
                        elif all(d in results for d in check.depends_on):
                            started.add(name)
                            heapq.heappush(ready, (check.priority, order[name], name))
                limit = self._max_concurrency or len(checks) or 1
                while ready and len(running) < limit:
                    _, _, name = heapq.heappop(ready)
                    task = asyncio.create_task(self._run_check(checks[name], t0, root_ctx))
                    running[task] = name
                if not running:
                    return results
                done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    results[running.pop(task)] = task.result()
        finally:
            for task in running:
                task.cancel()
            if running:
                await asyncio.gather(*running, return_exceptions=True)

    async def _run_check(self, check: StartupCheck, t0: float, ctx: Any) -> CheckResult:
        start = self._clock() - t0
        outcome, error = CheckOutcome.FAILED, None
        details: Mapping[str, Any] = {}
        attempt = 0
        for attempt in range(1, check.retries + 2):
            outcome, details, error, exc_type = await self._attempt(check, attempt, ctx)
            if outcome is CheckOutcome.SUCCESS or attempt > check.retries:
                break
            delay = self._backoff(check, attempt)
            trace.get_current_span(ctx).add_event(
                semconv.EVENT_STARTUP_RETRY,
                {
                    semconv.STARTUP_CHECK: check.name,
                    semconv.STARTUP_ATTEMPT: attempt,
                    semconv.ERROR_TYPE: exc_type,
                    semconv.STARTUP_DELAY: delay,
                },
            )
            _log.warning("startup check %r attempt %d %s; retrying in %.2fs: %s",
                         check.name, attempt, outcome.value, delay, error)  # fmt: skip
            await self._sleep(delay)
        end = self._clock() - t0
        self._check_hist.record(
            end - start, {semconv.STARTUP_CHECK: check.name, semconv.STARTUP_OUTCOME: outcome.value}
        )
        return CheckResult(
            check.name, check.priority, check.critical, check.depends_on, outcome, attempt,
            start, end, details, error,
        )  # fmt: skip

    async def _attempt(
        self, check: StartupCheck, attempt: int, ctx: Any
    ) -> tuple[CheckOutcome, Mapping[str, Any], str | None, str]:
        attributes = _check_attributes(check, attempt)
        with self._tracer.start_as_current_span(
            semconv.SPAN_STARTUP_CHECK,
            context=ctx,
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            deadline = asyncio.timeout(check.timeout_s)
            try:
                async with deadline:
                    value = await call_sync_or_async(check.func)
            except Exception as exc:
                if deadline.expired():
                    message = f"timed out after {check.timeout_s}s"
                    _record_failure(span, CheckOutcome.TIMEOUT, exc, message)
                    return CheckOutcome.TIMEOUT, {}, message, qualified_type_name(type(exc))
                message = current_scrubber().scrub_text(f"{type(exc).__name__}: {safe_str(exc)}")
                _record_failure(span, CheckOutcome.FAILED, exc, message)
                return CheckOutcome.FAILED, {}, message, qualified_type_name(type(exc))
            span.set_attribute(semconv.STARTUP_OUTCOME, CheckOutcome.SUCCESS.value)
            span.set_status(Status(StatusCode.OK))
            details = _scrub_details(value) if isinstance(value, Mapping) else {}
            return CheckOutcome.SUCCESS, details, None, ""

    def _backoff(self, check: StartupCheck, attempt: int) -> float:
        base = min(check.backoff_max_s, check.backoff_s * 2.0 ** (attempt - 1))
        return base * (1.0 - self._jitter * self._rng.random())

    def _skipped(self, check: StartupCheck, bad: list[str], at: float, ctx: Any) -> CheckResult:
        error = f"dependency not satisfied: {', '.join(bad)}"
        attributes = _check_attributes(check, 0)
        attributes[semconv.STARTUP_OUTCOME] = CheckOutcome.SKIPPED.value
        tracer = self._tracer
        span = tracer.start_span(semconv.SPAN_STARTUP_CHECK, context=ctx, attributes=attributes)
        span.end()
        self._check_hist.record(
            0.0, {semconv.STARTUP_CHECK: check.name, semconv.STARTUP_OUTCOME: "skipped"}
        )
        return CheckResult(
            check.name, check.priority, check.critical, check.depends_on, CheckOutcome.SKIPPED,
            0, at, at, {}, error,
        )  # fmt: skip

    def _build_report(
        self, results: dict[str, CheckResult], started_at: float, t0: float
    ) -> StartupReport:
        ordered = tuple(results[name] for name in self._checks if name in results)
        if any(c.critical and not _ok(c) for c in ordered):
            state = LifecycleState.FAILED
        elif all(_ok(c) for c in ordered):
            state = LifecycleState.READY
        else:
            state = LifecycleState.DEGRADED
        duration = max((c.end_s for c in ordered), default=self._clock() - t0)
        return StartupReport(state, started_at, duration, ordered, _critical_path(results))


def _ok(result: CheckResult) -> bool:
    return result.outcome is CheckOutcome.SUCCESS


def _critical_path(results: Mapping[str, CheckResult]) -> tuple[str, ...]:
    """Walk back from the check that ended last through the dependency that ended last."""
    ran = [r for r in results.values() if r.attempts > 0]
    if not ran:
        return ()
    node: CheckResult | None = max(ran, key=lambda r: r.end_s)
    path: list[str] = []
    while node is not None:
        path.append(node.name)
        deps = [results[d] for d in node.depends_on if d in results]
        node = max(deps, key=lambda r: r.end_s) if deps else None
    return tuple(reversed(path))


_MAX_DETAILS = 32


def _scrub_details(details: Mapping[Any, Any]) -> dict[str, Any]:
    """A bounded, JSON-ready, secret-free copy of what a check returned (it reaches /health)."""
    scrubber = current_scrubber()
    out: dict[str, Any] = {}
    for key, value in list(details.items())[:_MAX_DETAILS]:
        name = str(key)
        if scrubber.key_is_secret(name):
            out[name] = REDACTED
        elif value is None or isinstance(value, bool | int | float):
            out[name] = value
        else:
            out[name] = scrubber.scrub_text(str(value))
    return out


def _check_attributes(check: StartupCheck, attempt: int) -> dict[str, Any]:
    return {
        semconv.STARTUP_CHECK: check.name,
        semconv.STARTUP_PRIORITY: check.priority,
        semconv.STARTUP_ATTEMPT: attempt,
        semconv.STARTUP_TIMEOUT: check.timeout_s,
        semconv.STARTUP_CRITICAL: check.critical,
    }


def _record_failure(span: Span, outcome: CheckOutcome, exc: BaseException, message: str) -> None:
    event = exception_attributes(exc, current_scrubber(), escaped=True)  # it ended the attempt
    event[semconv.EXCEPTION_MESSAGE] = message  # the check's own wording ("timed out after 2s")
    span.set_attribute(semconv.STARTUP_OUTCOME, outcome.value)
    span.set_attribute(semconv.ERROR_TYPE, event[semconv.EXCEPTION_TYPE])
    span.add_event(semconv.EVENT_EXCEPTION, event)
    span.set_status(Status(StatusCode.ERROR, message))


async def call_sync_or_async(func: Callable[[], Any]) -> Any:
    """Await ``func()``: coroutine functions on the loop, anything else in a worker thread (and
    an awaitable it returns is awaited too). Shared by startup checks and shutdown hooks."""
    if inspect.iscoroutinefunction(func):
        return await func()
    value = await asyncio.to_thread(func)
    if inspect.isawaitable(value):
        return await value
    return value


_default = StartupOrchestrator()


def default_orchestrator() -> StartupOrchestrator:
    """The process-wide orchestrator that :func:`register_startup_check` fills."""
    return _default


@overload
def register_startup_check(func: F, /) -> F: ...
@overload
def register_startup_check(
    func: None = None,
    /,
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
def register_startup_check(func: F | None = None, /, **policy: Any) -> F | Callable[[F], F]:
    """Register a startup check on the process-wide orchestrator (decorator, with or without args).

    Keyword arguments are those of :meth:`StartupOrchestrator.add`. ``add_k8s_probes`` and
    ``managed_lifecycle`` run these checks; the decorated function is returned unchanged.
    """
    if func is not None:
        _default.add(func)
        return func
    return _default.check(**policy)


def startup_report() -> StartupReport | None:
    """The process-wide startup timeline, or ``None`` until startup has finished."""
    return _default.report
