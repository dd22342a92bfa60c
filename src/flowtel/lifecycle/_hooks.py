"""Shutdown hooks: registered with dependencies, run one at a time in reverse order, bounded.

Each hook runs through a :class:`~flowtel.lifecycle._bounded.BoundedRunner`: a sync hook on a
daemon thread of its own, an async one as its own task. A hook still running at its
``timeout_s`` is abandoned (``outcome=timeout``, counted on ``flowtel.lifecycle.timeouts``), so
one hung hook delays exit by its timeout and no more.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from opentelemetry import metrics, trace
from opentelemetry._logs import get_logger_provider
from opentelemetry.trace import Status, StatusCode

from flowtel import semconv
from flowtel._core._telemetry import HUB
from flowtel._core._values import qualified_type_name
from flowtel.exceptions import ConfigurationError
from flowtel.lifecycle._bounded import BoundedRunner, WorkAborted
from flowtel.lifecycle._graph import dependency_order
from flowtel.lifecycle._outcomes import ShutdownOutcome, WorkKind
from flowtel.lifecycle._registration import seconds

__all__ = ["HOOK_KEYWORDS", "HookFunc", "ShutdownHook", "ShutdownHooks", "flush_telemetry"]

_log = logging.getLogger("flowtel.lifecycle")

HookFunc = Callable[[], Any]
"""A shutdown hook: sync or async, no arguments. Sync hooks run on a daemon thread."""

H = TypeVar("H", bound=HookFunc)

HOOK_KEYWORDS: Final = ("name", "timeout_s", "depends_on")


@dataclass(frozen=True, slots=True)
class ShutdownHook:
    """A shutdown hook; ``depends_on`` names hooks that must still be up while it runs."""

    name: str
    func: HookFunc
    timeout_s: float
    depends_on: tuple[str, ...]


class ShutdownHooks:
    """The hooks of one lifecycle. Call on the event loop thread."""

    def __init__(
        self,
        tracer_provider: trace.TracerProvider | None,
        meter_provider: metrics.MeterProvider | None,
    ) -> None:
        self._hooks: dict[str, ShutdownHook] = {}
        self._tracer_provider = tracer_provider
        self._runner = BoundedRunner(WorkKind.SHUTDOWN_HOOK, meter_provider)

    def add(
        self,
        func: HookFunc,
        *,
        name: str | None = None,
        timeout_s: float = 5.0,
        depends_on: Iterable[str] = (),
    ) -> ShutdownHook:
        """Register ``func``; see :meth:`Lifecycle.register_shutdown_hook`."""
        hook_name = name or getattr(func, "__name__", None) or repr(func)
        if hook_name in self._hooks:
            raise ConfigurationError("name", hook_name, "a hook name not already registered")
        if not callable(func):
            raise ConfigurationError("func", func, "a callable without arguments")
        timeout = seconds("timeout_s", timeout_s, zero_ok=False)
        deps = (depends_on,) if isinstance(depends_on, str) else tuple(depends_on)
        hook = ShutdownHook(hook_name, func, timeout, deps)
        self._hooks[hook_name] = hook
        return hook

    def order(self) -> list[str]:
        """Hook names in the order they run: a hook before the hooks it depends on.

        Raises:
            StartupError: unknown dependency or a cycle among hooks.
        """
        graph = {name: hook.depends_on for name, hook in self._hooks.items()}
        return list(reversed(dependency_order(graph, "shutdown hook")))

    def fallback_order(self) -> list[str]:
        """Reverse registration order, for a graph that turned invalid after start."""
        return list(reversed(self._hooks))

    async def run(self, order: list[str], context: Any) -> ShutdownOutcome:
        """Run the hooks named in ``order``, one at a time; never raises."""
        outcome = ShutdownOutcome.SUCCESS
        for name in order:
            if await self._run(self._hooks[name], context) is not ShutdownOutcome.SUCCESS:
                outcome = ShutdownOutcome.FAILED
        return outcome

    async def _run(self, hook: ShutdownHook, context: Any) -> ShutdownOutcome:
        tracer = trace.get_tracer("flowtel.lifecycle", tracer_provider=self._tracer_provider)
        with tracer.start_as_current_span(
            semconv.SPAN_SHUTDOWN_HOOK,
            context=context,
            attributes={semconv.SHUTDOWN_HOOK: hook.name},
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            result = await self._runner.run(hook.func, hook.timeout_s, hook.name)
            outcome = ShutdownOutcome.SUCCESS
            if result.timed_out:
                outcome = ShutdownOutcome.TIMEOUT  # the runner logged and counted it
                span.set_status(Status(StatusCode.ERROR, f"timed out after {hook.timeout_s}s"))
            elif result.error is not None:
                outcome = ShutdownOutcome.FAILED
                error = result.error
                cause = error.original if isinstance(error, WorkAborted) else error
                _log.error("shutdown hook %r failed", hook.name, exc_info=error)
                error_type = qualified_type_name(type(cause))
                span.set_attribute(semconv.ERROR_TYPE, error_type)
                span.set_status(Status(StatusCode.ERROR, error_type))
            span.set_attribute(semconv.SHUTDOWN_OUTCOME, outcome.value)
            return outcome


def flush_telemetry(timeout_s: float) -> bool:
    """Flush flowtel's pipelines if configured, else the global OTel providers (bounded)."""
    current = HUB.current
    if current is not None:
        return current.force_flush(timeout_s)
    ok = True
    deadline = time.monotonic() + timeout_s
    for provider in (trace.get_tracer_provider(), metrics.get_meter_provider(),
                     get_logger_provider()):  # fmt: skip
        force_flush: Callable[..., Any] | None = getattr(provider, "force_flush", None)
        if force_flush is None:
            continue
        remaining_ms = max(1, int((deadline - time.monotonic()) * 1000))
        try:
            ok = bool(force_flush(remaining_ms)) and ok
        except Exception:
            _log.warning("force_flush failed on %r", provider, exc_info=True)
            ok = False
    return ok
