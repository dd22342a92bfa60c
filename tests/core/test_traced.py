"""@traced and span(): names, attributes, error semantics, all callable kinds."""

from __future__ import annotations

import asyncio
import gc
import inspect
import threading

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

import flowtel
from flowtel import semconv


def by_name(exporter: InMemorySpanExporter, name: str):  # type: ignore[no-untyped-def]
    found = [s for s in exporter.get_finished_spans() if s.name == name]
    assert found, f"no span {name!r} in {[s.name for s in exporter.get_finished_spans()]}"
    return found[0]


class TestNamingAndAttributes:
    def test_bare_decorator_names_span_module_qualname(self, spans: InMemorySpanExporter) -> None:
        """A bare @traced names the span module.qualname and adds code.* attributes."""

        @flowtel.traced
        def work() -> int:
            return 1

        assert work() == 1
        span = spans.get_finished_spans()[0]
        assert (
            span.name
            == f"{__name__}.TestNamingAndAttributes.test_bare_decorator_names_span_module_qualname.<locals>.work"
        )
        attrs = span.attributes or {}
        assert attrs[semconv.CODE_FUNCTION] == span.name
        assert attrs[semconv.CODE_FILEPATH] == __file__
        assert attrs[semconv.CODE_LINENO] == work.__wrapped__.__code__.co_firstlineno  # type: ignore[attr-defined]
        assert span.instrumentation_scope is not None
        assert span.instrumentation_scope.name == __name__

    def test_name_component_operation_attributes(self, spans: InMemorySpanExporter) -> None:
        """@traced(name, component, operation, attributes) sets all of them."""

        @flowtel.traced(
            "custom",
            component="DesignOps",
            operation="token_extraction",
            attributes={"team": "a", "api_key": "sk-123"},
        )
        def work() -> None:
            pass

        work()
        attrs = by_name(spans, "custom").attributes or {}
        assert attrs[semconv.COMPONENT] == "DesignOps"
        assert attrs[semconv.OPERATION] == "token_extraction"
        assert attrs["team"] == "a"
        assert attrs["api_key"] == "[REDACTED]"

    def test_positional_name_equals_keyword_name(self, spans: InMemorySpanExporter) -> None:
        """@traced("n") and @traced(name="n") are the same."""

        @flowtel.traced(name="kw")
        def a() -> None:
            pass

        a()
        assert by_name(spans, "kw")

    def test_record_args_all_and_selected(self, spans: InMemorySpanExporter) -> None:
        """record_args=True records every argument; a list records only those; secrets scrubbed."""

        @flowtel.traced("all", record_args=True, record_return=True)
        def f(user: str, password: str, n: int = 3) -> dict[str, int]:
            return {"n": n}

        @flowtel.traced("some", record_args=["user"])
        def g(user: str, n: int) -> None:
            pass

        f("bob", "hunter2")
        g("eve", 5)
        attrs = by_name(spans, "all").attributes or {}
        assert attrs["flowtel.arg.user"] == "bob"
        assert attrs["flowtel.arg.password"] == "[REDACTED]"
        assert attrs["flowtel.arg.n"] == 3
        assert attrs[semconv.RETURN_VALUE] == "{'n': 3}"
        some = by_name(spans, "some").attributes or {}
        assert some["flowtel.arg.user"] == "eve"
        assert "flowtel.arg.n" not in some
        assert "hunter2" not in repr([dict(s.attributes or {}) for s in spans.get_finished_spans()])

    def test_hostile_argument_values_are_safe(self, spans: InMemorySpanExporter) -> None:
        """Values whose repr raises, bytes, huge strings and lone surrogates never break a call."""

        class Evil:
            def __repr__(self) -> str:
                raise RuntimeError("no repr")

        @flowtel.traced("hostile", record_args=True)
        def f(a: object, b: bytes, c: str, d: str) -> str:
            return "ok"

        assert f(Evil(), b"\x00\xff", "x" * 100_000, "bad\udcff") == "ok"
        attrs = by_name(spans, "hostile").attributes or {}
        assert "repr() failed" in str(attrs["flowtel.arg.a"])
        assert attrs["flowtel.arg.b"] == "<2 bytes>"
        assert len(str(attrs["flowtel.arg.c"])) <= 1100
        str(attrs["flowtel.arg.d"]).encode("utf-8")  # encodable


class TestCallableKinds:
    def test_preserves_signature_wrapped_and_coroutine_flag(self) -> None:
        """The wrapper keeps signature, __wrapped__ and iscoroutinefunction."""

        async def coro(a: int, *, b: str = "x") -> int:
            return a

        wrapped = flowtel.traced(coro)
        assert inspect.iscoroutinefunction(wrapped)
        assert inspect.signature(wrapped) == inspect.signature(coro)
        assert wrapped.__wrapped__ is coro  # type: ignore[attr-defined]
        assert wrapped.__name__ == "coro"

    def test_coroutine_span_is_parent_of_inner_spans(self, spans: InMemorySpanExporter) -> None:
        """An async @traced function is the parent of spans opened inside it."""

        @flowtel.traced("outer")
        async def outer() -> int:
            async with flowtel.span("inner"):
                await asyncio.sleep(0)
            return 5

        assert asyncio.run(outer()) == 5
        outer_span, inner_span = by_name(spans, "outer"), by_name(spans, "inner")
        assert inner_span.parent is not None
        assert inner_span.parent.span_id == outer_span.context.span_id
        assert inner_span.context.trace_id == outer_span.context.trace_id

    def test_methods_classmethods_staticmethods(self, spans: InMemorySpanExporter) -> None:
        """Instance, class and static methods are all traced and still bind correctly."""

        class Service:
            factor = 2

            @flowtel.traced
            def method(self, x: int) -> int:
                return x * self.factor

            @flowtel.traced
            @classmethod
            def cm(cls, x: int) -> int:
                return x * cls.factor

            @classmethod
            @flowtel.traced
            def cm2(cls, x: int) -> int:
                return x + cls.factor

            @flowtel.traced
            @staticmethod
            def sm(x: int) -> int:
                return x + 1

        svc = Service()
        assert (svc.method(3), Service.cm(3), Service.cm2(3), Service.sm(3)) == (6, 6, 5, 4)
        names = [s.name.rsplit(".", 1)[-1] for s in spans.get_finished_spans()]
        assert names == ["method", "cm", "cm2", "sm"]

    def test_generator_span_covers_iteration(self, spans: InMemorySpanExporter) -> None:
        """A generator's span covers the whole iteration and is parent of spans made inside."""

        @flowtel.traced("gen")
        def gen(n: int):  # type: ignore[no-untyped-def]
            for i in range(n):
                with flowtel.span(f"item{i}"):
                    pass
                yield i

        assert list(gen(3)) == [0, 1, 2]
        parent = by_name(spans, "gen")
        for i in range(3):
            child = by_name(spans, f"item{i}")
            assert child.parent is not None and child.parent.span_id == parent.context.span_id
        assert trace.get_current_span() is trace.INVALID_SPAN

    def test_abandoned_generator_ends_span_without_leaking_context(
        self, spans: InMemorySpanExporter
    ) -> None:
        """A generator dropped half-way ends its span (not an error) and leaks no context."""

        @flowtel.traced("abandoned")
        def gen():  # type: ignore[no-untyped-def]
            yield 1
            yield 2

        it = gen()
        assert next(it) == 1
        assert trace.get_current_span() is trace.INVALID_SPAN  # context restored between items
        del it
        gc.collect()
        span = by_name(spans, "abandoned")
        assert span.status.status_code is not StatusCode.ERROR
        assert trace.get_current_span() is trace.INVALID_SPAN

    def test_generator_send_and_throw_forwarded(self, spans: InMemorySpanExporter) -> None:
        """send() and throw() reach the wrapped generator."""

        @flowtel.traced("echo")
        def echo():  # type: ignore[no-untyped-def]
            received = []
            while True:
                try:
                    value = yield len(received)
                    received.append(value)
                except KeyError:
                    yield "caught"

        it = echo()
        assert next(it) == 0
        assert it.send("a") == 1
        assert it.throw(KeyError("k")) == "caught"
        it.close()
        assert by_name(spans, "echo").status.status_code is not StatusCode.ERROR

    def test_async_generator_and_abandonment(self, spans: InMemorySpanExporter) -> None:
        """Async generators: span covers iteration; aclose()/abandonment ends it cleanly."""

        @flowtel.traced("agen")
        async def agen(n: int):  # type: ignore[no-untyped-def]
            for i in range(n):
                yield i

        async def main() -> list[int]:
            out = [i async for i in agen(3)]
            it = agen(10)
            await it.__anext__()
            assert trace.get_current_span() is trace.INVALID_SPAN
            await it.aclose()
            return out

        assert asyncio.run(main()) == [0, 1, 2]
        assert len([s for s in spans.get_finished_spans() if s.name == "agen"]) == 2

    def test_async_generator_garbage_collected_ends_span(self, spans: InMemorySpanExporter) -> None:
        """An async generator abandoned without aclose() is finalised by the loop; span ends."""

        @flowtel.traced("agen_gc")
        async def agen():  # type: ignore[no-untyped-def]
            yield 1
            yield 2

        async def main() -> None:
            it = agen()
            await it.__anext__()
            del it
            gc.collect()
            await asyncio.sleep(0)

        asyncio.run(main())  # asyncio.run shuts down async generators before returning
        assert by_name(spans, "agen_gc")


class TestErrors:
    def test_escaping_exception_recorded_and_reraised(self, spans: InMemorySpanExporter) -> None:
        """An escaping exception: event, ERROR status, error.type, re-raised unchanged."""
        err = ValueError("bad input password=hunter2")

        @flowtel.traced("fails")
        def fails() -> None:
            raise err

        with pytest.raises(ValueError) as info:
            fails()
        assert info.value is err
        span = by_name(spans, "fails")
        assert span.status.status_code is StatusCode.ERROR
        assert (span.attributes or {})[semconv.ERROR_TYPE] == "ValueError"
        (event,) = [e for e in span.events if e.name == "exception"]
        attrs = event.attributes or {}
        assert attrs[semconv.EXCEPTION_TYPE] == "ValueError"
        assert "hunter2" not in str(attrs[semconv.EXCEPTION_MESSAGE])
        assert "raise err" in str(attrs[semconv.EXCEPTION_STACKTRACE])

    def test_error_type_is_fully_qualified(self, spans: InMemorySpanExporter) -> None:
        """error.type is module-qualified for non-builtin exceptions."""

        class Custom(Exception):
            pass

        with pytest.raises(Custom), flowtel.span("custom"):
            raise Custom("x")
        etype = (by_name(spans, "custom").attributes or {})[semconv.ERROR_TYPE]
        assert etype == f"{__name__}.TestErrors.test_error_type_is_fully_qualified.<locals>.Custom"

    @pytest.mark.parametrize("exc_type", [asyncio.CancelledError, KeyboardInterrupt, GeneratorExit])
    def test_control_flow_exceptions_are_not_errors(
        self, spans: InMemorySpanExporter, exc_type: type[BaseException]
    ) -> None:
        """CancelledError, KeyboardInterrupt and GeneratorExit do not mark the span as failed."""

        @flowtel.traced("ctl")
        def f() -> None:
            raise exc_type()

        with pytest.raises(exc_type):
            f()
        span = by_name(spans, "ctl")
        assert span.status.status_code is not StatusCode.ERROR
        assert not [e for e in span.events if e.name == "exception"]

    def test_cancelled_task_span_is_not_error(self, spans: InMemorySpanExporter) -> None:
        """A cancelled coroutine's span ends without ERROR."""

        @flowtel.traced("slow")
        async def slow() -> None:
            await asyncio.Event().wait()

        async def main() -> None:
            task = asyncio.create_task(slow())
            await asyncio.sleep(0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

        asyncio.run(main())
        assert by_name(spans, "slow").status.status_code is StatusCode.UNSET

    def test_span_context_manager_error_semantics(self, spans: InMemorySpanExporter) -> None:
        """with span(): same error recording, exception propagates."""
        with pytest.raises(KeyError), flowtel.span("cm", user="u", token="t0k3n") as s:
            assert s.is_recording()
            raise KeyError("k")
        span = by_name(spans, "cm")
        assert span.status.status_code is StatusCode.ERROR
        assert (span.attributes or {})["token"] == "[REDACTED]"
        assert (span.attributes or {})["user"] == "u"


class TestNeverBreaksHost:
    @pytest.mark.parametrize("hook", ["on_start", "on_end"])
    def test_broken_span_processor_never_reaches_user_code(self, hook: str) -> None:
        """A span processor that raises in on_start/on_end never breaks the traced call."""
        from opentelemetry.sdk.trace import SpanProcessor

        class Broken(SpanProcessor):
            def on_start(self, span: object, parent_context: object = None) -> None:
                if hook == "on_start":
                    raise RuntimeError("processor exploded")

            def on_end(self, span: object) -> None:
                if hook == "on_end":
                    raise RuntimeError("processor exploded")

        telemetry = flowtel.configure_telemetry(
            exporter="none", span_processors=[Broken()], logging=False, force=True
        )
        try:

            @flowtel.traced("victim")
            def f(x: int) -> int:
                return x + 1

            @flowtel.traced("victim_async")
            async def g(x: int) -> int:
                return x + 2

            assert f(1) == 2
            assert asyncio.run(g(1)) == 3
            with flowtel.span("victim_cm"):
                pass
            with pytest.raises(ValueError, match="mine"), flowtel.span("victim_cm_err"):
                raise ValueError("mine")
            assert trace.get_current_span() is trace.INVALID_SPAN
        finally:
            telemetry.shutdown()

    def test_works_before_configure_and_across_threads(self, spans: InMemorySpanExporter) -> None:
        """Spans from many threads are all recorded with distinct ids."""

        @flowtel.traced("threaded")
        def f() -> None:
            pass

        threads = [threading.Thread(target=lambda: [f() for _ in range(50)]) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        ids = {s.context.span_id for s in spans.get_finished_spans() if s.name == "threaded"}
        assert len(ids) == 200
