"""Observable gauges fed by many live objects, on whichever MeterProvider each reports to.

Why: an observable instrument's name may exist once per provider. When two lifecycle or
readiness objects each create "their" gauge on the same provider, the SDK hands the second one
the first's instrument and its callback is dropped: the second object never reports. So each
metric gets one instrument per provider whose callback walks every live object that reports
there. An object is held as long as the instrument that reports it would be: one given a
provider until that provider is gone, one following the global provider for good (as a bound
callback on the proxy provider would be).

Which provider an object reports to: the one it was given, else the global one. A gauge created
while the global is still OpenTelemetry's proxy is forwarded by the proxy to the real provider
once that is set, so it reports the objects that follow the global provider (:func:`owns`).
Every ``configure_telemetry()`` calls :func:`bind_global_provider` (through
``_proxy.after_install``) so objects that follow the global provider are reported by a newly
installed one from its first export.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar

from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation

from flowtel import semconv
from flowtel._core._compat import API_PROXY_METER_PROVIDER
from flowtel._core._proxy import after_install, global_meter_provider

__all__ = ["PROXY", "SharedGauge", "bind_global_provider", "on_rebind", "owns"]

S = TypeVar("S")


PROXY = API_PROXY_METER_PROVIDER
"""The API's proxy MeterProvider (the global one until a real provider is set)."""


def owns(provider: MeterProvider, item_provider: MeterProvider | None) -> bool:
    """Whether instruments created on ``provider`` report an item recording to ``item_provider``
    (None: the global provider)."""
    current = global_meter_provider()
    if provider is PROXY:
        return item_provider is None or item_provider is current
    return (item_provider or current) is provider


class SharedGauge(Generic[S]):
    """One observable gauge per provider for ``metric_name``, reporting every live source.

    Args:
        scope: instrumentation scope (meter name).
        metric_name: a metric defined in :mod:`flowtel.semconv` (unit, description).
        observe: a source's observations.
    """

    def __init__(
        self, scope: str, metric_name: str, observe: Callable[[S], Iterable[Observation]]
    ) -> None:
        self._scope = scope
        self._spec = semconv.metric(metric_name)
        self._observe = observe
        self._following: dict[int, S] = {}  # sources that report to the global provider
        self._bound: weakref.WeakKeyDictionary[MeterProvider, dict[int, S]] = (
            weakref.WeakKeyDictionary()
        )  # sources given a provider, kept while it lives
        self._providers: weakref.WeakSet[MeterProvider] = weakref.WeakSet()
        self._lock = threading.Lock()
        _gauges.add(self)
        after_install(bind_global_provider)

    def add(self, source: S, meter_provider: MeterProvider | None = None) -> None:
        """Report ``source`` on ``meter_provider`` (None: the global provider)."""
        with self._lock:
            if meter_provider is None:
                self._following[id(source)] = source
            else:
                self._bound.setdefault(meter_provider, {})[id(source)] = source
        self._ensure(meter_provider or global_meter_provider())

    def _ensure(self, provider: MeterProvider) -> None:
        with self._lock:
            if provider in self._providers:
                return
            self._providers.add(provider)
        spec = self._spec
        provider.get_meter(self._scope).create_observable_gauge(
            spec.name,
            callbacks=[self._callback(provider)],
            unit=spec.unit,
            description=spec.description,
        )

    def _callback(self, provider: MeterProvider) -> Callable[[CallbackOptions], list[Observation]]:
        target = weakref.ref(provider)

        def observe(options: CallbackOptions) -> list[Observation]:
            resolved = target()
            if resolved is None:
                return []
            with self._lock:
                groups: list[tuple[MeterProvider | None, list[S]]] = [
                    (None, list(self._following.values()))
                ]
                groups += [(p, list(bound.values())) for p, bound in self._bound.items()]
            out: list[Observation] = []
            for item_provider, sources in groups:
                if owns(resolved, item_provider):
                    for source in sources:
                        out.extend(self._observe(source))
            return out

        return observe

    def bind_global(self) -> None:
        """Create the gauge on the current global provider if a source follows it."""
        if self._following:
            self._ensure(global_meter_provider())


_gauges: weakref.WeakSet[SharedGauge[Any]] = weakref.WeakSet()


_rebinders: list[Callable[[], None]] = []


def on_rebind(rebind: Callable[[], None]) -> None:
    """Have :func:`bind_global_provider` also call ``rebind`` (once per function).

    Features register when they create their first instrument-owning object, so that the
    assembler never needs to import a feature a service does not use.
    """
    if rebind not in _rebinders:
        _rebinders.append(rebind)
    after_install(bind_global_provider)


def bind_global_provider() -> None:
    """After a new global MeterProvider is installed: put every gauge with sources that follow
    the global provider on it now, not at their next start."""
    for gauge in list(_gauges):
        gauge.bind_global()
    for rebind in list(_rebinders):
        rebind()
