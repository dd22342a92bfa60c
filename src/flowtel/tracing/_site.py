"""One decorated function's span settings, computed once, and how its spans start and end."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Mapping, Sequence
from contextvars import Token
from typing import Any, Final

from opentelemetry import context as context_api
from opentelemetry import trace as trace_api
from opentelemetry.context import Context
from opentelemetry.trace import Span, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from flowtel import semconv
from flowtel._core._scrub import current_scrubber
from flowtel._core._telemetry import HUB as _HUB
from flowtel._core._values import exception_attributes, to_attribute

_log = logging.getLogger("flowtel")
_NOT_ERRORS: Final = (GeneratorExit, KeyboardInterrupt, SystemExit)
_CANCELLED: type[BaseException] | None = None
_reported: set[str] = set()


def _report_internal(where: str) -> None:
    """Log an instrumentation failure once per place; never raise."""
    try:
        if where not in _reported and len(_reported) < 256:
            _reported.add(where)
            _log.warning(
                "flowtel: instrumentation error in %s (reported once)", where, exc_info=True
            )
    except Exception:  # logging itself failed: nothing more we can do safely
        pass


def _is_error(exc: BaseException) -> bool:
    global _CANCELLED
    if _CANCELLED is None:
        import asyncio

        _CANCELLED = asyncio.CancelledError
    return not isinstance(exc, _NOT_ERRORS) and not isinstance(exc, _CANCELLED)


def record_exception(span: Span, exc: BaseException, *, escaped: bool = True) -> None:
    """Record ``exc`` on ``span`` the flowtel way: scrubbed event, ERROR status, error.type."""
    if not span.is_recording():
        return
    event = exception_attributes(exc, current_scrubber(), escaped=escaped)
    span.add_event(semconv.EVENT_EXCEPTION, event)
    etype = event[semconv.EXCEPTION_TYPE]
    span.set_attribute(semconv.ERROR_TYPE, etype)
    message = event[semconv.EXCEPTION_MESSAGE]
    span.set_status(Status(StatusCode.ERROR, f"{etype!s}: {message!s}"[:512]))


def _end_failed(span: Span, token: Token[Context], exc: BaseException) -> None:
    """Detach and end a span whose body raised. Must be called from inside ``except``."""
    try:
        context_api.detach(token)
        if _is_error(exc):
            from flowtel.tracing._light import CountedSpan  # loaded already when one exists

            if isinstance(span, CountedSpan):  # a sampled-out call: record it after all
                span = span.promote()
            record_exception(span, exc)
        span.end()
    except Exception:
        _report_internal("span end")


def _write_preset(span: Span, preset: Mapping[str, AttributeValue]) -> None:
    """See ``flowtel._core._compat.write_preset``; imported on first use (the SDK is loaded by
    then: the span is an SDK span)."""
    global _write_preset
    from flowtel._core._compat import write_preset

    _write_preset = write_preset
    write_preset(span, preset)


class _Site:
    """Everything about one decorated function that can be computed once, at decoration."""

    __slots__ = (
        "arg_names",
        "attributes",
        "generation",
        "light",
        "light_scope",
        "name",
        "preset",
        "record_all_args",
        "record_return",
        "scope",
        "signature",
        "span_class",
        "tracer",
    )

    def __init__(
        self,
        fn: Callable[..., Any],
        name: str | None,
        component: str | None,
        operation: str | None,
        attributes: Mapping[str, object] | None,
        record_args: bool | Sequence[str],
        record_return: bool,
    ) -> None:
        scrubber = current_scrubber()
        self.scope: str = getattr(fn, "__module__", None) or "flowtel"
        qualname = getattr(fn, "__qualname__", getattr(fn, "__name__", "function"))
        self.name = name or f"{self.scope}.{qualname}"
        attrs: dict[str, AttributeValue] = {semconv.CODE_FUNCTION: f"{self.scope}.{qualname}"}
        code = getattr(inspect.unwrap(fn), "__code__", None)
        if code is not None:
            attrs[semconv.CODE_FILEPATH] = code.co_filename
            attrs[semconv.CODE_LINENO] = code.co_firstlineno
        if component:
            attrs[semconv.COMPONENT] = component
        if operation:
            attrs[semconv.OPERATION] = operation
        for key, value in (attributes or {}).items():
            attrs[key] = to_attribute(key, value, scrubber)
        self.attributes = attrs
        self.record_all_args = record_args is True
        self.arg_names: frozenset[str] = (
            frozenset() if isinstance(record_args, bool) else frozenset(record_args)
        )
        self.record_return = record_return
        self.signature: inspect.Signature | None = None
        if record_args:
            try:
                self.signature = inspect.signature(fn)
            except (TypeError, ValueError):
                self.signature = None
        self.generation = -1
        self.tracer: trace_api.Tracer = trace_api.get_tracer(self.scope)
        self.preset: dict[str, AttributeValue] | None = None
        """``attributes`` as the current provider stores them, when they may be written
        straight into a started span (see flowtel._provider); else None."""
        self.span_class: type | None = None
        self.light: Any = None
        """A ``_light.LightMode`` when sampled-out calls are counted without an SDK span."""
        self.light_scope: Any = None

    def get_tracer(self) -> trace_api.Tracer:
        if _HUB.generation != self.generation:
            self.refresh()
        return self.tracer

    def refresh(self) -> None:
        """Re-resolve the tracer and the attribute preset after a (re)configuration."""
        gen = _HUB.generation
        self.tracer = _tracer_for(self.scope)
        self.preset, self.span_class = None, None
        current = _HUB.current
        if current is not None and self.signature is None:
            # Loaded here, not at import: ``import flowtel`` must not import the SDK.
            from flowtel._core._compat import SDK_SPAN_CLASS
            from flowtel.tracing import _provider as _provider

            provider = current.tracer_provider
            self.preset = _provider.preset_attributes(provider, self.attributes)
            self.span_class = SDK_SPAN_CLASS
            light = getattr(provider, "light_mode", None)
            self.light = light() if light is not None else None
            if self.light is not None and self.light_scope is None:
                from opentelemetry.sdk.util.instrumentation import InstrumentationScope

                self.light_scope = InstrumentationScope(self.scope)
        else:
            self.light = None
        self.generation = gen

    def start_plain(self) -> Span:
        """Start this site's span when it has no per-call attributes."""
        if _HUB.generation != self.generation:
            self.refresh()
        light = self.light
        if light is not None:
            counted = light.start(self.name, self.attributes, self.light_scope, self.tracer)
            if counted is not None:
                return counted  # type: ignore[no-any-return]
            try:
                return self._start_sdk_span()
            finally:
                light.ids(self.tracer).prime(None)  # a root's trace id was for this span only
        return self._start_sdk_span()

    def _start_sdk_span(self) -> Span:
        preset = self.preset
        if preset is None:
            return self.tracer.start_span(self.name, attributes=self.attributes)
        span = self.tracer.start_span(self.name)
        if span.__class__ is self.span_class:
            _write_preset(span, preset)
        return span

    def call_attributes(
        self, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Mapping[str, AttributeValue]:
        if self.signature is None:
            return self.attributes
        try:
            bound = self.signature.bind_partial(*args, **kwargs)
            bound.apply_defaults()
        except TypeError:
            return self.attributes  # the call itself will raise the real TypeError
        attrs = dict(self.attributes)
        scrubber = current_scrubber()
        for arg_name, value in bound.arguments.items():
            if arg_name in ("self", "cls"):
                continue
            if self.record_all_args or arg_name in self.arg_names:
                key = semconv.ARG_PREFIX + arg_name
                attrs[key] = to_attribute(arg_name, value, scrubber)
        return attrs

    def start(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Span, Token[Context]]:
        if self.signature is None:
            span = self.start_plain()
        else:
            attributes = self.call_attributes(args, kwargs)
            span = self.get_tracer().start_span(self.name, attributes=attributes)
        return span, context_api.attach(trace_api.set_span_in_context(span))

    def finish(self, span: Span, token: Token[Context], result: object) -> None:
        try:
            context_api.detach(token)
            if self.record_return and span.is_recording():
                span.set_attribute(
                    semconv.RETURN_VALUE, to_attribute("return", result, current_scrubber())
                )
            span.end()
        except Exception:
            _report_internal("span end")


_tracers: dict[str, trace_api.Tracer] = {}
_tracers_generation = -1


def _tracer_for(scope: str) -> trace_api.Tracer:
    """A cached tracer for ``scope`` from the current provider (creating one is not cheap)."""
    global _tracers_generation
    if _tracers_generation != _HUB.generation:
        _tracers.clear()
        _tracers_generation = _HUB.generation
    tracer = _tracers.get(scope)
    if tracer is None:
        current = _HUB.current
        provider = current.tracer_provider if current is not None else None
        tracer = trace_api.get_tracer(scope, tracer_provider=provider)
        if len(_tracers) < 1024:
            _tracers[scope] = tracer
    return tracer
