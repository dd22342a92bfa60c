"""Lifecycle work (checks, hooks, the final flush) run so that it can never hold the process.

Why not ``asyncio.to_thread``: its timeout stops the *waiting*, not the thread, and both
``asyncio.run`` and uvicorn join the loop's default executor without a timeout at exit
(Python 3.11), so one hung sync check kept a SIGTERM'd pod alive until SIGKILL; a few hung
attempts also filled that shared executor, starving healthy checks. Here every sync call gets
its own daemon thread (exit never joins it) and every async call its own task; the caller waits
at most ``timeout_s``. Work still running after that is *abandoned*: a thread is left to finish
or hang on its own, a task that ignores cancellation is detached from the loop so the loop's
teardown does not wait for it either. Each overrun is logged, counted on
``flowtel.lifecycle.timeouts`` and reported by the caller as ``outcome=timeout``.

A ``BaseException`` from the work (``SystemExit``, ``KeyboardInterrupt``, ``GeneratorExit``,
or a ``CancelledError`` nobody asked for) is carried back as :class:`WorkAborted`, an ordinary
exception: it fails that piece of work instead of killing the event loop or the server.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, Final

from opentelemetry import metrics

from flowtel import semconv
from flowtel.lifecycle._outcomes import WorkKind

__all__ = ["BoundedRunner", "WorkAborted", "WorkResult", "detach_stragglers"]

_log = logging.getLogger("flowtel.lifecycle")

GRACE_S: Final = 0.1
"""How long cancelled async work gets to stop before it is abandoned."""

_KEEP: Final = 256
_abandoned: deque[asyncio.Future[Any]] = deque(maxlen=_KEEP)
"""Strong references to abandoned tasks, so they are not collected while pending."""
_cancelled: set[asyncio.Future[Any]] = set()
"""Work cancelled because its caller was cancelled; detached at shutdown if still pending."""


class WorkAborted(Exception):
    """The work raised a ``BaseException`` that is not an ``Exception``; ``original`` is it."""

    def __init__(self, original: BaseException) -> None:
        super().__init__(f"{type(original).__name__}: {original}".rstrip(": "))
        self.original = original


@dataclass(frozen=True, slots=True)
class WorkResult:
    """How one call ended: a value, an error, or a timeout (``abandoned`` when still running).

    ``ended_at`` is the runner's clock when the work itself returned or raised (not when the
    caller got round to looking), ``None`` on a timeout.
    """

    value: Any = None
    error: Exception | None = None
    timed_out: bool = False
    abandoned: bool = False
    ended_at: float | None = None


class BoundedRunner:
    """Runs one kind of lifecycle work, each call bounded by its own timeout.

    Must be used on the event loop thread. Tracks, per name, abandoned work that is still
    running, so a caller can refuse to start a second copy (:meth:`busy`).

    Args:
        kind: what is run, for logs and the ``flowtel.lifecycle.timeouts`` counter.
        meter_provider: where that counter goes; the global provider when ``None``.
        clock: monotonic seconds for :attr:`WorkResult.ended_at`, injectable for tests.
    """

    def __init__(
        self,
        kind: WorkKind,
        meter_provider: metrics.MeterProvider | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.kind = kind
        self._meter_provider = meter_provider
        self._clock = clock
        self._running: dict[str, Callable[[], bool]] = {}

    def busy(self, name: str) -> bool:
        """True while an abandoned call named ``name`` is still running."""
        running = self._running.get(name)
        if running is None:
            return False
        if running():
            return True
        del self._running[name]
        return False

    async def run(self, func: Callable[[], Any], timeout_s: float, name: str) -> WorkResult:
        """Call ``func`` (sync on a daemon thread, async as a task) and wait at most ``timeout_s``.

        Never raises for what ``func`` does; raises ``CancelledError`` only when the caller is
        cancelled, after cancelling the work.
        """
        loop = asyncio.get_running_loop()
        thread: list[threading.Thread] = []
        ended: list[float] = []
        work = loop.create_task(_work(func, thread, self.kind, name, self._clock, ended))
        try:
            done, _ = await asyncio.wait({work}, timeout=timeout_s)
        except asyncio.CancelledError:
            work.cancel()
            _cancelled.add(work)
            work.add_done_callback(_cancelled.discard)
            loop.call_later(GRACE_S, _detach, work)
            raise
        if done:
            return _result(work, ended[0] if ended else self._clock())
        work.cancel()
        with suppress(asyncio.CancelledError):
            await asyncio.wait({work}, timeout=GRACE_S)

        def running() -> bool:
            return (bool(thread) and thread[0].is_alive()) or not work.done()

        abandoned = running()
        if abandoned:
            self._running[name] = running
            _detach(work)
        self._count(name, timeout_s, abandoned)
        return WorkResult(timed_out=True, abandoned=abandoned)

    def _count(self, name: str, timeout_s: float, abandoned: bool) -> None:
        _log.warning(
            "%s %r overran its %.3gs timeout%s",
            self.kind.value.replace("_", " "),
            name,
            timeout_s,
            "; abandoned, still running" if abandoned else "",
        )
        try:
            meter = metrics.get_meter("flowtel.lifecycle", meter_provider=self._meter_provider)
            spec = semconv.metric(semconv.METRIC_LIFECYCLE_TIMEOUTS)
            meter.create_counter(spec.name, unit=spec.unit, description=spec.description).add(
                1,
                {
                    semconv.LIFECYCLE_WORK: self.kind.value,
                    semconv.LIFECYCLE_WORK_NAME: name,
                    semconv.LIFECYCLE_ABANDONED: abandoned,
                },
            )
        except Exception:  # telemetry about telemetry must not fail the lifecycle
            _log.debug("could not count a lifecycle timeout", exc_info=True)


async def _work(
    func: Callable[[], Any],
    thread: list[threading.Thread],
    kind: WorkKind,
    name: str,
    clock: Callable[[], float],
    ended: list[float],
) -> Any:
    """The task behind one call: ``func`` itself when async, else a thread's result."""
    try:
        if inspect.iscoroutinefunction(func):
            value = await func()
        else:
            value = await _in_thread(func, thread, f"flowtel-{kind.value}-{name}"[:60])
            if inspect.isawaitable(value):
                value = await value
        ended.append(clock())
        return value
    except (SystemExit, KeyboardInterrupt, GeneratorExit) as exc:
        ended.append(clock())
        raise WorkAborted(exc) from exc
    except asyncio.CancelledError as exc:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise  # we cancelled it (timeout or shutdown)
        ended.append(clock())
        raise WorkAborted(exc) from exc  # the work cancelled itself: a failure, not a shutdown
    except Exception:
        ended.append(clock())
        raise


def _in_thread(
    func: Callable[[], Any], holder: list[threading.Thread], thread_name: str
) -> asyncio.Future[Any]:
    """Run ``func`` on a new daemon thread (with the caller's context); a future of its result."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()

    def settle(ok: bool, value: Any) -> None:
        if future.done():  # the caller stopped waiting
            return
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)

    def target() -> None:
        try:
            ok, value = True, func()
        except Exception as exc:
            ok, value = False, exc
        except BaseException as exc:  # SystemExit & co. must not end up raised on the loop
            ok, value = False, WorkAborted(exc)
        with suppress(RuntimeError):  # the loop is closed: nobody waits any more
            loop.call_soon_threadsafe(settle, ok, value)

    ctx = contextvars.copy_context()
    thread = threading.Thread(target=ctx.run, args=(target,), name=thread_name, daemon=True)
    holder.append(thread)
    thread.start()
    return future


def _result(work: asyncio.Task[Any], ended_at: float) -> WorkResult:
    if work.cancelled():  # cancelled from outside without our asking: count as a failure
        return WorkResult(error=WorkAborted(asyncio.CancelledError()), ended_at=ended_at)
    error = work.exception()
    if error is None:
        return WorkResult(value=work.result(), ended_at=ended_at)
    if not isinstance(error, Exception):  # pragma: no cover - _work converts these
        error = WorkAborted(error)
    return WorkResult(error=error, ended_at=ended_at)


def _detach(work: asyncio.Future[Any]) -> None:
    """Let the loop's teardown skip ``work`` if it is still pending (it ignored cancellation).

    ``asyncio.run`` and uvicorn cancel every remaining task at exit and wait for all of them
    without a timeout; a task that swallows ``CancelledError`` would hang that forever. The
    standard library has no public call to forget a task, so the private one is used when it
    exists; without it, nothing changes.
    """
    if work.done():
        return
    work.add_done_callback(_consume)
    _abandoned.append(work)
    unregister = getattr(asyncio.tasks, "_unregister_task", None)
    if unregister is not None:
        with suppress(Exception):
            unregister(work)


def _consume(work: asyncio.Future[Any]) -> None:
    if not work.cancelled():
        work.exception()  # retrieved, so asyncio does not log "never retrieved"


def detach_stragglers() -> int:
    """Detach cancelled work that is still pending; called at the end of shutdown."""
    stragglers = [w for w in list(_cancelled) if not w.done()]
    for work in stragglers:
        _detach(work)
    _cancelled.clear()
    return len(stragglers)
