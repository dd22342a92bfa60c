"""Readiness checks: run in the background on an interval, cached, never per probe request.

A probe that calls the database on every request turns a slow database into a storm of
probe timeouts and restarts. Here each check runs on its own ``interval_s`` with a
``timeout_s``; ``/ready`` only reads the cached result. A check that raises or hangs is a
failure, never a 500 or a hung probe. A sync check runs in a worker thread; if it is still hung
at its next turn it is not started again (one thread per check at most) and counts as failed.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from opentelemetry import metrics
from opentelemetry.metrics import Observation

from flowtel import semconv
from flowtel._core._gauge import SharedGauge
from flowtel._core._scrub import current_scrubber
from flowtel._core._values import safe_str
from flowtel.exceptions import ConfigurationError

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
    """

    name: str
    ok: bool | None = None
    duration_s: float = 0.0
    last_error: str | None = None
    checked_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view for ``/health``."""
        return {
            "status": "unknown" if self.ok is None else ("pass" if self.ok else "fail"),
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
        self._busy: set[str] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._meter_provider = meter_provider
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
        if interval_s <= 0:
            raise ConfigurationError("interval_s", interval_s, "a number of seconds > 0")
        if timeout_s <= 0:
            raise ConfigurationError("timeout_s", timeout_s, "a number of seconds > 0")
        check = ReadinessCheck(check_name, func, float(interval_s), float(timeout_s))
        self._checks[check_name] = check
        self._status[check_name] = ReadinessStatus(check_name)
        return check

    def check(self, name: str | None = None, **schedule: Any) -> Callable[[R], R]:
        """Decorator form of :meth:`add`; returns the function unchanged."""

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
        if name in self._busy:
            error = "previous run still hung"
        else:
            deadline = asyncio.timeout(check.timeout_s)
            try:
                async with deadline:
                    value = await self._call(check)
                if value is False:
                    error = "check returned False"
            except Exception as exc:
                if deadline.expired():
                    error = f"timed out after {check.timeout_s}s"
                else:
                    error = current_scrubber().scrub_text(f"{type(exc).__name__}: {safe_str(exc)}")
        status = ReadinessStatus(name, error is None, self._clock() - start, error, time.time())
        previous = self._status.get(name)
        if previous is not None and previous.ok is not False and error is not None:
            _log.warning("readiness check %r failing: %s", name, error)
        self._status[name] = status
        return status

    async def _call(self, check: ReadinessCheck) -> Any:
        if inspect.iscoroutinefunction(check.func):
            return await check.func()
        busy = self._busy

        def run() -> Any:
            busy.add(check.name)
            try:
                return check.func()
            finally:
                busy.discard(check.name)

        return await asyncio.get_running_loop().run_in_executor(None, run)

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


def register_readiness_check(
    name: str | None = None, *, interval_s: float = 5.0, timeout_s: float = 2.0
) -> Callable[[R], R]:
    """Decorator: register a readiness check on the process-wide monitor.

    ``add_k8s_probes`` starts the monitor once startup has finished and ``/ready`` reads it.
    """

    def decorate(func: R) -> R:
        with _lock:
            _default.add(func, name=name, interval_s=interval_s, timeout_s=timeout_s)
        return func

    return decorate
