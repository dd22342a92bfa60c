"""Readiness checks: run in the background on an interval, cached, never per probe request.

A probe that calls the database on every request turns a slow database into a storm of
probe timeouts and restarts. Here each check runs on its own ``interval_s`` with a
``timeout_s``; ``/ready`` only reads the cached result. A check that raises or hangs is a
failure, never a 500 or a hung probe. A sync check runs on a daemon thread of its own (never the
loop's shared executor, so hung checks cannot starve healthy ones or hold the process at exit);
if it is still hung at its next turn it is not started again (one thread per check at most) and
counts as a timeout.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final, TypeVar, overload

from opentelemetry import metrics
from opentelemetry.metrics import Observation

from flowtel import semconv
from flowtel._core._gauge import SharedGauge
from flowtel._core._scrub import current_scrubber
from flowtel._core._values import safe_str
from flowtel.exceptions import ConfigurationError
from flowtel.lifecycle._bounded import BoundedRunner, WorkAborted
from flowtel.lifecycle._outcomes import ProbeOutcome, WorkKind
from flowtel.lifecycle._registration import check_keywords, register, seconds

__all__ = [
    "ReadinessCheck",
    "ReadinessMonitor",
    "ReadinessStatus",
    "default_readiness",
    "register_readiness_check",
]

_log = logging.getLogger("flowtel.readiness")

ReadinessFunc = Callable[[], Any]
"""A readiness check: sync or async, no arguments; passes unless it raises or returns False."""

R = TypeVar("R", bound=ReadinessFunc)

_SCHEDULE: Final = ("name", "interval_s", "timeout_s")


@dataclass(frozen=True, slots=True)
class ReadinessCheck:
    """A registered readiness check and its schedule."""

    name: str
    func: ReadinessFunc
    interval_s: float
    timeout_s: float


@dataclass(frozen=True, slots=True)
class ReadinessStatus:
    """The cached result of a readiness check.

    ``ok`` is ``None`` until the first run finished; ``checked_at`` is wall-clock epoch seconds.
    ``outcome`` says how the last run ended (``TIMEOUT`` when it overran ``timeout_s``).
    """

    name: str
    ok: bool | None = None
    duration_s: float = 0.0
    last_error: str | None = None
    checked_at: float | None = None
    outcome: ProbeOutcome = ProbeOutcome.UNKNOWN

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view for ``/health``."""
        status = ProbeOutcome.UNKNOWN if self.ok is None else ProbeOutcome.PASS
        if self.ok is False:
            status = ProbeOutcome.FAIL
        return {
            "status": status.value,
            "outcome": self.outcome.value,
            "duration_s": round(self.duration_s, 6),
            "last_error": self.last_error,
            "checked_at": self.checked_at,
        }


class ReadinessMonitor:
    """Runs readiness checks in the background and keeps their latest results.

    :meth:`start` and :meth:`stop` must be called on the event loop; :meth:`ok` and
    :meth:`statuses` are cheap reads, safe from any request handler.

    Args:
        meter_provider: where the ``flowtel.readiness.check.status`` gauge goes.
        clock: monotonic seconds for durations, injectable for tests.
    """

    def __init__(
        self,
        *,
        meter_provider: metrics.MeterProvider | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._checks: dict[str, ReadinessCheck] = {}
        self._status: dict[str, ReadinessStatus] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._meter_provider = meter_provider
        self._runner = BoundedRunner(WorkKind.READINESS_CHECK, meter_provider)
        self._clock = clock

    @property
    def checks(self) -> tuple[ReadinessCheck, ...]:
        """The registered checks."""
        return tuple(self._checks.values())

    def add(
        self,
        func: ReadinessFunc,
        *,
        name: str | None = None,
        interval_s: float = 5.0,
        timeout_s: float = 2.0,
    ) -> ReadinessCheck:
        """Register ``func``; it fails when it raises, returns ``False`` or exceeds ``timeout_s``.

        Raises:
            ConfigurationError: a bad interval or timeout, or a name already registered.
        """
        check_name = name or getattr(func, "__name__", None) or repr(func)
        if check_name in self._checks:
            raise ConfigurationError("name", check_name, "a name not already registered")
        if not callable(func):
            raise ConfigurationError("func", func, "a callable without arguments")
        interval = seconds("interval_s", interval_s, zero_ok=False)
        timeout = seconds("timeout_s", timeout_s, zero_ok=False)
        check = ReadinessCheck(check_name, func, interval, timeout)
        self._checks[check_name] = check
        self._status[check_name] = ReadinessStatus(check_name)
        return check

    def check(self, name: str | None = None, **schedule: Any) -> Callable[[R], R]:
        """Decorator form of :meth:`add`; returns the function unchanged."""
        check_keywords("ReadinessMonitor.check", schedule, _SCHEDULE)

        def decorate(func: R) -> R:
            self.add(func, name=name, **schedule)
            return func

        return decorate

    def ok(self) -> bool:
        """True when every check has run and its latest run passed."""
        return all(s.ok is True for s in self._status.values())

    def statuses(self) -> dict[str, ReadinessStatus]:
        """The latest result of every check."""
        return dict(self._status)

    def start(self) -> None:
        """Start one background loop per check; the first run happens at once."""
        if self._tasks:
            return
        _STATUS_GAUGE.add(self, self._meter_provider)
        self._tasks = [asyncio.ensure_future(self._loop(c)) for c in self._checks.values()]

    async def stop(self) -> None:
        """Cancel the background loops."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def run_once(self, name: str) -> ReadinessStatus:
        """Run one check now and cache its result (the background loop calls this)."""
        check = self._checks[name]
        start = self._clock()
        error: str | None = None
        outcome = ProbeOutcome.FAIL
        if self._runner.busy(name):
            error, outcome = "previous run still hung", ProbeOutcome.TIMEOUT
        else:
            result = await self._runner.run(check.func, check.timeout_s, name)
            if result.timed_out:
                error, outcome = f"timed out after {check.timeout_s}s", ProbeOutcome.TIMEOUT
            elif result.error is not None:
                exc = result.error
                cause = exc.original if isinstance(exc, WorkAborted) else exc
                error = current_scrubber().scrub_text(f"{type(cause).__name__}: {safe_str(cause)}")
            elif result.value is False:
                error = "check returned False"
            else:
                outcome = ProbeOutcome.PASS
        status = ReadinessStatus(
            name, error is None, self._clock() - start, error, time.time(), outcome
        )
        previous = self._status.get(name)
        if previous is not None and previous.ok is not False and error is not None:
            _log.warning("readiness check %r failing: %s", name, error)
        self._status[name] = status
        return status

    async def _loop(self, check: ReadinessCheck) -> None:
        while True:
            try:
                await self.run_once(check.name)
            except Exception:  # pragma: no cover - run_once does not raise; keep the loop alive
                _log.exception("readiness loop for %r", check.name)
            await asyncio.sleep(check.interval_s)

    def _observations(self) -> Iterable[Observation]:
        return [
            Observation(1 if s.ok else 0, {semconv.READINESS_CHECK: name})
            for name, s in list(self._status.items())
            if s.ok is not None
        ]


_STATUS_GAUGE: SharedGauge[ReadinessMonitor] = SharedGauge(
    "flowtel.readiness", semconv.METRIC_READINESS_CHECK_STATUS, ReadinessMonitor._observations
)
_default = ReadinessMonitor()
_lock = threading.Lock()


def default_readiness() -> ReadinessMonitor:
    """The process-wide monitor that :func:`register_readiness_check` fills."""
    return _default


@overload
def register_readiness_check(func: R, /) -> R: ...
@overload
def register_readiness_check(name: str, func: R, /, **schedule: Any) -> R: ...
@overload
def register_readiness_check(
    name: str | None = None, /, *, interval_s: float = 5.0, timeout_s: float = 2.0
) -> Callable[[R], R]: ...
@overload
def register_readiness_check(
    *, name: str | None = None, interval_s: float = 5.0, timeout_s: float = 2.0
) -> Callable[[R], R]: ...
def register_readiness_check(*args: Any, **schedule: Any) -> Any:
    """Register a readiness check on the process-wide monitor.

    Bare (``@register_readiness_check``), called (``@register_readiness_check(interval_s=10)``,
    ``@register_readiness_check("db")``) or direct (``register_readiness_check(func, ...)``).
    ``add_k8s_probes`` starts the monitor once startup has finished and ``/ready`` reads it.

    Raises:
        TypeError: an unknown keyword (the message names the accepted ones and the closest).
    """

    def add(func: ReadinessFunc, **kwargs: Any) -> ReadinessCheck:
        with _lock:
            return _default.add(func, **kwargs)

    return register("register_readiness_check", add, _SCHEDULE, args, schedule)
