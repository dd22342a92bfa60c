"""The process-wide lifecycle, its hook registration, and :func:`managed_lifecycle` for workers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Any, TypeVar, overload

from flowtel.exceptions import StartupError
from flowtel.lifecycle._hooks import HookFunc
from flowtel.lifecycle._lifecycle import Lifecycle
from flowtel.lifecycle._signals import SignalMode
from flowtel.lifecycle._startup import StartupOrchestrator
from flowtel.lifecycle._state import LifecycleState

__all__ = ["default_lifecycle", "managed_lifecycle", "register_shutdown_hook"]

H = TypeVar("H", bound=HookFunc)

_default = Lifecycle()


def default_lifecycle() -> Lifecycle:
    """The process-wide lifecycle used by ``add_k8s_probes`` and :func:`managed_lifecycle`."""
    return _default


@overload
def register_shutdown_hook(func: H, /) -> H: ...
@overload
def register_shutdown_hook(name: str, func: H, /, **policy: Any) -> H: ...
@overload
def register_shutdown_hook(
    name: str | None = None, /, *, timeout_s: float = 5.0, depends_on: Iterable[str] = ()
) -> Callable[[H], H]: ...
@overload
def register_shutdown_hook(
    *, name: str | None = None, timeout_s: float = 5.0, depends_on: Iterable[str] = ()
) -> Callable[[H], H]: ...
def register_shutdown_hook(*args: Any, **policy: Any) -> Any:
    """Register a shutdown hook on the process-wide lifecycle.

    Bare (``@register_shutdown_hook``), called (``@register_shutdown_hook(timeout_s=2)``) or
    direct (``register_shutdown_hook("db", pool.close, timeout_s=2)``); see
    :meth:`Lifecycle.register_shutdown_hook`. Returns the function unchanged.
    """
    return _default.register_shutdown_hook(*args, **policy)


@asynccontextmanager
async def managed_lifecycle(
    target: Lifecycle | StartupOrchestrator | None = None,
    *,
    drain_s: float | None = None,
    handle_signals: bool = True,
) -> AsyncIterator[Lifecycle]:
    """Run startup, yield the lifecycle, then shut down gracefully.

    ``target`` is the lifecycle to drive, or an explicit :class:`StartupOrchestrator` (a new
    :class:`Lifecycle` is made around it), or ``None`` for the process-wide lifecycle.
    ``drain_s`` overrides the lifecycle's drain delay.

    For a worker without a web server::

        async with managed_lifecycle() as lifecycle:
            while not lifecycle.should_stop:
                await handle_one_job()

    On SIGTERM the state turns DRAINING, and after ``drain_s`` :attr:`Lifecycle.should_stop`
    becomes true; when the block exits, hooks run and telemetry is flushed.

    Raises:
        StartupError: a critical check failed (after the hooks ran and telemetry was flushed,
            so the failed startup trace is exported), the graph is invalid, or a signal
            interrupted startup. Let it propagate: the process then exits non-zero.
    """
    lc = Lifecycle(target) if isinstance(target, StartupOrchestrator) else (target or _default)
    if drain_s is not None:
        lc.drain_s = drain_s
    installed = lc.install_signal_handlers() if handle_signals else SignalMode.NONE
    try:
        report = await lc.start()
        if report.state is LifecycleState.FAILED:
            failed = ", ".join(report.failed_critical)
            raise StartupError(f"critical startup checks did not succeed: {failed}")
        yield lc
    finally:
        await lc.shutdown()
        if installed is not SignalMode.NONE:
            lc.remove_signal_handlers()
