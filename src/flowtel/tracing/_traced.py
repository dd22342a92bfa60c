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
import sys
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator, Mapping, Sequence
from contextvars import Token
from types import TracebackType
from typing import Any, ParamSpec, TypeVar, cast, overload

from opentelemetry import context as context_api
from opentelemetry import trace as trace_api
from opentelemetry.context import Context
from opentelemetry.trace import Span
from opentelemetry.util.types import AttributeValue

from flowtel import semconv
from flowtel._core._scrub import current_scrubber
from flowtel._core._values import to_attribute
from flowtel.tracing._site import _end_failed, _report_internal, _Site, _tracer_for

__all__ = ["SpanScope", "span", "traced"]

P = ParamSpec("P")
R = TypeVar("R")


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
