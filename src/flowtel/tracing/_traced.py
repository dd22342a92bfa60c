"""``@traced`` and ``span()``: the two ways application code makes spans.

Both start spans with the SDK's ``start_span`` and manage the context token directly rather than
through ``start_as_current_span``: its generator-based context manager costs about 40% of a span.
An escaping exception is recorded (exception event, status ERROR, ``error.type``) and the span is
ended *inside* the ``except`` block, so span processors' ``on_end`` sees the live exception in
``sys.exc_info()`` (the Sentry bridge relies on that). Instrumentation errors are logged once and
the user's function runs regardless.
"""

from __future__ import annotations

import functools
import inspect
import logging
import sys
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator, Mapping, Sequence
from contextvars import Token
from types import TracebackType
from typing import Any, Final, ParamSpec, TypeVar, cast, overload

from opentelemetry import context as context_api
from opentelemetry import trace as trace_api
from opentelemetry.context import Context
from opentelemetry.trace import Span, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from flowtel import semconv
from flowtel._core._scrub import current_scrubber
from flowtel._core._telemetry import HUB as _HUB
from flowtel._core._values import exception_attributes, to_attribute

__all__ = ["SpanScope", "span", "traced"]

P = ParamSpec("P")
R = TypeVar("R")

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

            self.preset = _provider.preset_attributes(current.tracer_provider, self.attributes)
            self.span_class = SDK_SPAN_CLASS
        self.generation = gen

    def start_plain(self) -> Span:
        """Start this site's span when it has no per-call attributes."""
        if _HUB.generation != self.generation:
            self.refresh()
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


def _wrap_function(fn: Callable[P, R], site: _Site) -> Callable[P, R]:
    # The hot path: names are bound locally and the plain case (no recorded arguments or
    # return value) skips the per-call attribute and return-value handling.
    attach = context_api.attach
    detach = context_api.detach
    in_context = trace_api.set_span_in_context
    plain = site.signature is None and not site.record_return

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            if plain:
                span = site.start_plain()
                token = attach(in_context(span))
            else:
                span, token = site.start(args, kwargs)
        except Exception:
            _report_internal(site.name)
            return fn(*args, **kwargs)
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            _end_failed(span, token, exc)
            raise
        if plain:
            try:
                detach(token)
                span.end()
            except Exception:
                _report_internal("span end")
        else:
            site.finish(span, token, result)
        return result

    return wrapper


def _wrap_coroutine(fn: Callable[P, Awaitable[R]], site: _Site) -> Callable[P, Awaitable[R]]:
    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            span, token = site.start(args, kwargs)
        except Exception:
            _report_internal(site.name)
            return await fn(*args, **kwargs)
        try:
            result = await fn(*args, **kwargs)
        except BaseException as exc:
            _end_failed(span, token, exc)
            raise
        site.finish(span, token, result)
        return result

    return wrapper


def _wrap_generator(
    fn: Callable[P, Generator[Any, Any, Any]], site: _Site
) -> Callable[P, Generator[Any, Any, Any]]:
    """The span covers the whole iteration; the context is attached only while the body runs."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> Generator[Any, Any, Any]:
        try:
            span, token = site.start(args, kwargs)
            ctx = trace_api.set_span_in_context(span)
        except Exception:
            _report_internal(site.name)
            return (yield from fn(*args, **kwargs))
        try:
            gen = fn(*args, **kwargs)
        except BaseException as exc:
            _end_failed(span, token, exc)
            raise
        context_api.detach(token)
        to_send: Any = None
        to_throw: BaseException | None = None
        while True:
            token = context_api.attach(ctx)
            try:
                if to_throw is not None:
                    item = gen.throw(to_throw)
                    to_throw = None
                else:
                    item = gen.send(to_send)
            except StopIteration as stop:
                site.finish(span, token, stop.value)
                return stop.value
            except BaseException as exc:
                _end_failed(span, token, exc)
                raise
            context_api.detach(token)
            try:
                to_send = yield item
            except GeneratorExit:
                # Abandoned or closed by the consumer: not an error, but the span must end.
                token = context_api.attach(ctx)
                try:
                    gen.close()
                finally:
                    site.finish(span, token, None)
                raise
            except BaseException as exc:
                to_throw = exc

    return wrapper


def _wrap_async_generator(
    fn: Callable[P, AsyncGenerator[Any, Any]], site: _Site
) -> Callable[P, AsyncGenerator[Any, Any]]:
    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> AsyncGenerator[Any, Any]:
        try:
            span, token = site.start(args, kwargs)
            ctx = trace_api.set_span_in_context(span)
        except Exception:
            _report_internal(site.name)
            async for item in fn(*args, **kwargs):
                yield item
            return
        try:
            agen = fn(*args, **kwargs)
        except BaseException as exc:
            _end_failed(span, token, exc)
            raise
        context_api.detach(token)
        to_send: Any = None
        to_throw: BaseException | None = None
        while True:
            token = context_api.attach(ctx)
            try:
                if to_throw is not None:
                    item = await agen.athrow(to_throw)
                    to_throw = None
                else:
                    item = await agen.asend(to_send)
            except StopAsyncIteration:
                site.finish(span, token, None)
                return
            except BaseException as exc:
                _end_failed(span, token, exc)
                raise
            context_api.detach(token)
            try:
                to_send = yield item
            except GeneratorExit:
                token = context_api.attach(ctx)
                try:
                    await agen.aclose()
                finally:
                    site.finish(span, token, None)
                raise
            except BaseException as exc:
                to_throw = exc

    return wrapper


def _decorate(fn: Any, site_args: tuple[Any, ...]) -> Any:
    if isinstance(fn, classmethod | staticmethod):
        return type(fn)(_decorate(fn.__func__, site_args))
    site = _Site(fn, *site_args)
    if inspect.isasyncgenfunction(fn):
        return _wrap_async_generator(fn, site)
    if inspect.isgeneratorfunction(fn):
        return _wrap_generator(fn, site)
    if inspect.iscoroutinefunction(fn):
        return _wrap_coroutine(fn, site)
    return _wrap_function(fn, site)


@overload
def traced(fn: Callable[P, R], /) -> Callable[P, R]: ...


@overload
def traced(
    span_name: str | None = None,
    /,
    *,
    name: str | None = None,
    component: str | None = None,
    operation: str | None = None,
    attributes: Mapping[str, object] | None = None,
    record_args: bool | Sequence[str] = False,
    record_return: bool = False,
) -> Callable[[Callable[P, R]], Callable[P, R]]: ...


def traced(
    fn_or_name: Any = None,
    /,
    *,
    name: str | None = None,
    component: str | None = None,
    operation: str | None = None,
    attributes: Mapping[str, object] | None = None,
    record_args: bool | Sequence[str] = False,
    record_return: bool = False,
) -> Any:
    """Trace every call of a function, coroutine, generator or async generator.

    Usable bare (``@traced``), with a name (``@traced("name")``) or with keywords. The span name
    defaults to ``module.qualname``. ``record_args`` records all (``True``) or the named arguments
    as ``flowtel.arg.<name>``; values are converted safely and scrubbed of secrets. The wrapper
    keeps the signature, ``__wrapped__`` and ``inspect.iscoroutinefunction``.

    Args:
        name: span name.
        component: ``flowtel.component`` (groups error statistics and dashboards).
        operation: ``flowtel.operation`` (defaults to the span name in statistics).
        attributes: static attributes added to every span (scrubbed once, at decoration).
        record_args: ``False``, ``True`` or the names of the arguments to record.
        record_return: record the return value as ``flowtel.return``.
    """
    if isinstance(record_args, str):
        record_args = [record_args]
    if callable(fn_or_name) or isinstance(fn_or_name, classmethod | staticmethod):
        return _decorate(fn_or_name, (name, component, operation, attributes, record_args, False))
    span_name = fn_or_name if isinstance(fn_or_name, str) else name
    site_args = (span_name, component, operation, attributes, record_args, record_return)
    return lambda fn: _decorate(fn, site_args)


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


class SpanScope:
    """What ``span()`` returns: a sync and async context manager around one span.

    Not reusable: each ``with`` needs a new ``span()`` call.
    """

    __slots__ = ("_attributes", "_name", "_scope", "_span", "_token")

    def __init__(self, name: str, scope: str, attributes: dict[str, AttributeValue]) -> None:
        self._name = name
        self._scope = scope
        self._attributes = attributes
        self._span: Span = trace_api.INVALID_SPAN
        self._token: Token[Context] | None = None

    def __enter__(self) -> Span:
        try:
            tracer = _tracer_for(self._scope)
            self._span = tracer.start_span(self._name, attributes=self._attributes)
            self._token = context_api.attach(trace_api.set_span_in_context(self._span))
        except Exception:
            _report_internal("span()")
            self._span = trace_api.INVALID_SPAN
            self._token = None
        return self._span

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._token is None:
            return
        if exc is not None:
            _end_failed(self._span, self._token, exc)
        else:
            try:
                context_api.detach(self._token)
                self._span.end()
            except Exception:
                _report_internal("span()")

    async def __aenter__(self) -> Span:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)


def span(
    name: str,
    *,
    component: str | None = None,
    operation: str | None = None,
    **attributes: object,
) -> SpanScope:
    """Open a span: ``with flowtel.span("name", key=value) as s:`` (or ``async with``).

    Same error semantics as ``@traced``. Attribute values are converted safely and scrubbed.
    The instrumentation scope is the caller's module.
    """
    try:
        scope = sys._getframe(1).f_globals.get("__name__", "flowtel")
        scrubber = current_scrubber()
        attrs: dict[str, AttributeValue] = {
            key: to_attribute(key, value, scrubber) for key, value in attributes.items()
        }
        if component:
            attrs[semconv.COMPONENT] = component
        if operation:
            attrs[semconv.OPERATION] = operation
    except Exception:
        _report_internal("span()")
        scope, attrs = "flowtel", {}
    return SpanScope(name, cast(str, scope), attrs)
