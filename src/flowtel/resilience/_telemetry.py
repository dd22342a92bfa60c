"""Metrics and span events emitted by the resilience strategies.

Instrument resolution: a strategy built with ``meter_provider=P`` always records to ``P``
(tests use this with an SDK ``InMemoryMetricReader``). Without one, every recording looks up
the *current* global provider in a small cache, so instruments follow the global provider if
it is replaced (``configure_telemetry(force=True)``). Before any global provider is set the
lookup lands on OpenTelemetry's proxy provider, whose instruments forward to the real provider
once it is set; the SDK de-duplicates same-named instruments, so nothing is counted twice.

Gauges are observable instruments whose callbacks walk a ``WeakSet`` of live breakers and
limiters: a breaker reports its state from the moment it is created, and a discarded breaker
simply stops reporting.

Threading contract: every function here may be called from any thread or from the event loop,
never blocks, and never raises into the caller (failures are logged once and dropped).
"""

from __future__ import annotations

import functools
import logging
import threading
import weakref
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol, TypeVar

from opentelemetry import metrics, trace
from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation
from opentelemetry.util.types import AttributeValue

from flowtel import semconv
from flowtel._core._gauge import PROXY, on_rebind, owns
from flowtel._core._proxy import global_meter_provider
from flowtel._core._values import qualified_type_name

__all__ = [
    "CallOutcome",
    "ResilienceEvent",
    "Strategy",
    "bind_global_provider",
    "error_type",
    "operation_name",
    "record_attempt",
    "record_call",
    "record_event",
    "record_wait",
    "register_breaker",
    "register_limiter",
    "span_event",
]

_log = logging.getLogger("flowtel.resilience")
_SCOPE = "flowtel.resilience"


class Strategy(StrEnum):
    """Which resilience strategy produced a signal (``flowtel.resilience.strategy``)."""

    RETRY = "retry"
    TIMEOUT = "timeout"
    RATE_LIMIT = "rate_limit"
    CIRCUIT_BREAKER = "circuit_breaker"


class ResilienceEvent(StrEnum):
    """Values of ``flowtel.resilience.event`` on the events counter."""

    RETRY = "retry"
    TIMEOUT = "timeout"
    CIRCUIT_OPENED = "circuit_opened"
    CIRCUIT_HALF_OPENED = "circuit_half_opened"
    CIRCUIT_CLOSED = "circuit_closed"
    REJECTED = "rejected"
    RATE_LIMITED = "rate_limited"


class CallOutcome(StrEnum):
    """How a call through a strategy ended (``flowtel.resilience.outcome``)."""

    SUCCESS = "success"
    SUCCESS_AFTER_RETRY = "success_after_retry"
    FAILED = "failed"
    FAILED_AFTER_RETRY = "failed_after_retry"
    NOT_PERMITTED = "not_permitted"


class _Breaker(Protocol):
    name: str
    meter_provider: MeterProvider | None

    def _gauge_states(self) -> Iterable[tuple[str, int]]: ...

    def _gauge_rates(self) -> tuple[float | None, float | None]: ...


class _Limiter(Protocol):
    name: str
    meter_provider: MeterProvider | None

    def _gauge_permits(self) -> tuple[float, float]: ...


_F = TypeVar("_F", bound=Callable[..., None])
_warned: set[str] = set()


def _never_raises(fn: _F) -> _F:
    """Telemetry must not break the host: log the first failure per function, then drop."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        try:
            fn(*args, **kwargs)
        except Exception:
            if fn.__name__ not in _warned:
                _warned.add(fn.__name__)
                _log.warning(
                    "flowtel.resilience telemetry failed in %s", fn.__name__, exc_info=True
                )

    return wrapper  # type: ignore[return-value]


def operation_name(fn: Callable[..., Any]) -> str:
    """Default ``flowtel.operation`` for a decorated callable: its qualified name."""
    name = getattr(fn, "__qualname__", None)
    return name if isinstance(name, str) else type(fn).__qualname__


def error_type(exc: BaseException) -> str:
    """Fully qualified exception type; builtins keep their bare name (``TimeoutError``)."""
    return qualified_type_name(type(exc))


# Live breakers and limiters, observed by the gauge callbacks of every provider.
_breakers: weakref.WeakSet[_Breaker] = weakref.WeakSet()
_limiters: weakref.WeakSet[_Limiter] = weakref.WeakSet()


class _CallTable:
    """Call counts by (outcome, strategy, operation), read by an observable counter.

    Why not a synchronous counter: ``Counter.add`` hashes and validates its attributes on every
    call, which costs more than a closed breaker's own bookkeeping. Counting in a dict under a
    lock and reporting at collection time exports the same cumulative sums for a fraction of
    the cost. Memory is bounded by the number of distinct operations.
    """

    __slots__ = ("_counts", "_lock")

    def __init__(self) -> None:
        self._counts: dict[tuple[str, str, str], int] = {}
        self._lock = threading.Lock()

    def add(self, key: tuple[str, str, str]) -> None:
        with self._lock:
            self._counts[key] = self._counts.get(key, 0) + 1

    def snapshot(self) -> list[tuple[tuple[str, str, str], int]]:
        with self._lock:
            return list(self._counts.items())


_global_calls = _CallTable()
_provider_calls: weakref.WeakKeyDictionary[MeterProvider, _CallTable] = weakref.WeakKeyDictionary()


def _call_tables(provider: MeterProvider) -> list[_CallTable]:
    """The call tables ``provider``'s observable counter reports (see ``_gauge.owns``)."""
    current = global_meter_provider()
    tables = []
    if provider is PROXY or provider is current:
        tables.append(_global_calls)
    own = _provider_calls.get(current if provider is PROXY else provider)
    if own is not None:
        tables.append(own)
    return tables


@dataclass(frozen=True, slots=True)
class _Instruments:
    events: metrics.Counter
    attempt_duration: metrics.Histogram
    limiter_wait: metrics.Histogram


_cache: weakref.WeakKeyDictionary[MeterProvider, _Instruments] = weakref.WeakKeyDictionary()
_cache_lock = threading.Lock()


def _create(provider: MeterProvider) -> _Instruments:
    meter = provider.get_meter(_SCOPE)

    def counter(name: str) -> metrics.Counter:
        d = semconv.metric(name)
        return meter.create_counter(d.name, unit=d.unit, description=d.description)

    def histogram(name: str) -> metrics.Histogram:
        d = semconv.metric(name)
        return meter.create_histogram(
            d.name,
            unit=d.unit,
            description=d.description,
            # seconds-scale buckets: the SDK default bounds (0, 5, 10, ...) suit milliseconds
            explicit_bucket_boundaries_advisory=list(semconv.DURATION_BUCKETS_S),
        )

    def gauge(name: str, callback: Callable[[CallbackOptions], Iterable[Observation]]) -> None:
        d = semconv.metric(name)
        meter.create_observable_gauge(
            d.name, callbacks=[callback], unit=d.unit, description=d.description
        )

    def breaker_states(_: CallbackOptions) -> Iterable[Observation]:
        for b in list(_breakers):
            if owns(provider, b.meter_provider):
                for state, value in b._gauge_states():
                    yield Observation(
                        value, {semconv.RESILIENCE_NAME: b.name, semconv.CIRCUIT_STATE: state}
                    )

    def breaker_rate(index: int) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def observe(_: CallbackOptions) -> Iterable[Observation]:
            for b in list(_breakers):
                rate = b._gauge_rates()[index] if owns(provider, b.meter_provider) else None
                if rate is not None:
                    yield Observation(rate, {semconv.RESILIENCE_NAME: b.name})

        return observe

    def limiter_value(index: int) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def observe(_: CallbackOptions) -> Iterable[Observation]:
            for lim in list(_limiters):
                if owns(provider, lim.meter_provider):
                    yield Observation(
                        lim._gauge_permits()[index], {semconv.RESILIENCE_NAME: lim.name}
                    )

        return observe

    def call_counts(_: CallbackOptions) -> Iterable[Observation]:
        for table in _call_tables(provider):
            for (outcome, strategy, operation), count in table.snapshot():
                yield Observation(
                    count,
                    {
                        semconv.RESILIENCE_OUTCOME: outcome,
                        semconv.RESILIENCE_STRATEGY: strategy,
                        semconv.OPERATION: operation,
                    },
                )

    calls = semconv.metric(semconv.METRIC_RESILIENCE_CALLS)
    meter.create_observable_counter(
        calls.name, callbacks=[call_counts], unit=calls.unit, description=calls.description
    )
    gauge(semconv.METRIC_CIRCUIT_STATE, breaker_states)
    gauge(semconv.METRIC_CIRCUIT_FAILURE_RATE, breaker_rate(0))
    gauge(semconv.METRIC_CIRCUIT_SLOW_CALL_RATE, breaker_rate(1))
    gauge(semconv.METRIC_RATE_LIMITER_PERMITS, limiter_value(0))
    gauge(semconv.METRIC_RATE_LIMITER_RATE, limiter_value(1))
    return _Instruments(
        events=counter(semconv.METRIC_RESILIENCE_EVENTS),
        attempt_duration=histogram(semconv.METRIC_RESILIENCE_ATTEMPT_DURATION),
        limiter_wait=histogram(semconv.METRIC_RATE_LIMITER_WAIT),
    )


def _instruments(provider: MeterProvider | None) -> _Instruments:
    resolved = provider if provider is not None else global_meter_provider()
    found = _cache.get(resolved)
    if found is None:
        with _cache_lock:
            found = _cache.get(resolved)
            if found is None:
                found = _cache[resolved] = _create(resolved)
    return found


@_never_raises
def bind_global_provider() -> None:
    """Create the instruments on the current global provider now, not at the next call.

    ``configure_telemetry()`` calls this after installing a new global MeterProvider, so idle
    breakers and limiters are reported by the new provider's gauges from the first export.
    """
    if _breakers or _limiters:
        _instruments(None)


@_never_raises
def register_breaker(breaker: _Breaker) -> None:
    """Start reporting ``breaker``'s gauges (state, failure and slow-call rates)."""
    _breakers.add(breaker)
    on_rebind(bind_global_provider)
    _instruments(breaker.meter_provider)


@_never_raises
def register_limiter(limiter: _Limiter) -> None:
    """Start reporting ``limiter``'s available-permits and rate gauges."""
    _limiters.add(limiter)
    on_rebind(bind_global_provider)
    _instruments(limiter.meter_provider)


@_never_raises
def record_event(
    provider: MeterProvider | None,
    event: ResilienceEvent,
    strategy: Strategy,
    operation: str,
    err: str | None = None,
) -> None:
    """Count one resilience event."""
    attrs: dict[str, AttributeValue] = {
        semconv.RESILIENCE_EVENT: event.value,
        semconv.RESILIENCE_STRATEGY: strategy.value,
        semconv.OPERATION: operation,
    }
    if err is not None:
        attrs[semconv.ERROR_TYPE] = err
    _instruments(provider).events.add(1, attrs)


@_never_raises
def record_call(
    provider: MeterProvider | None, outcome: CallOutcome, strategy: Strategy, operation: str
) -> None:
    """Count one call through a strategy by outcome."""
    if provider is None:
        table = _global_calls
        _instruments(None)  # the global provider may have changed since the last call
    else:
        found = _provider_calls.get(provider)
        if found is None:
            _instruments(provider)
            with _cache_lock:
                found = _provider_calls.setdefault(provider, _CallTable())
        table = found
    table.add((outcome.value, strategy.value, operation))


@_never_raises
def record_attempt(
    provider: MeterProvider | None, operation: str, duration_s: float, err: str | None
) -> None:
    """Record the duration of one retry attempt."""
    attrs: dict[str, AttributeValue] = {semconv.OPERATION: operation}
    if err is not None:
        attrs[semconv.ERROR_TYPE] = err
    _instruments(provider).attempt_duration.record(duration_s, attrs)


@_never_raises
def record_wait(provider: MeterProvider | None, name: str, wait_s: float) -> None:
    """Record how long a caller waited on a rate limiter (0 when a permit was free)."""
    _instruments(provider).limiter_wait.record(wait_s, {semconv.RESILIENCE_NAME: name})


@_never_raises
def span_event(name: str, attributes: Mapping[str, AttributeValue]) -> None:
    """Add an event to the current span, if one is recording."""
    span = trace.get_current_span()
    if span.is_recording():
        span.add_event(name, dict(attributes))
