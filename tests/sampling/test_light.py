"""Sampled-out ``@traced`` calls are counted without an SDK span, and nothing else changes.

At ``sample_rate=0.1`` flowtel decides the sampling of a ``@traced`` call itself, exactly as its
sampler would, and counts a sampled-out call directly (``flowtel.tracing._light``). What users
see must be what they saw with a recorded-but-not-sampled SDK span: exact error statistics,
complete exported traces at the configured rate, and processors that want sampled-out spans
still get them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import flowtel

ROOTS = 3000


@flowtel.traced(component="shop", operation="price")
def price() -> int:
    return 1


@flowtel.traced(component="shop", operation="reserve")
def reserve(n: int) -> None:
    if n % 10 == 0:
        raise ValueError(f"out of stock: {n}")


@flowtel.traced(component="shop", operation="checkout")
def checkout(n: int) -> None:
    price()
    reserve(n)


def _run() -> int:
    failed = 0
    for n in range(1, ROOTS + 1):
        try:
            checkout(n)
        except ValueError:
            failed += 1
    return failed


class SeesEverySpan(SpanProcessor):
    """A processor of the user's own that counts every span that ends, sampled or not."""

    def __init__(self) -> None:
        self.ended = 0

    def on_end(self, span: ReadableSpan) -> None:
        self.ended += 1


class TestCountedWithoutSdkSpans:
    def test_statistics_stay_exact_and_exported_traces_complete(
        self, configure: Callable[..., flowtel.Telemetry]
    ) -> None:
        """Every call is counted at both levels; about 10 % of traces are exported, whole."""
        exporter = InMemorySpanExporter()
        configure(sample_rate=0.1, span_exporters=[exporter])
        failed = _run()
        stats = flowtel.get_error_stats()
        assert (stats.entries.total, stats.entries.errors) == (ROOTS, failed)
        assert (stats.operations.total, stats.operations.errors) == (3 * ROOTS, 2 * failed)
        assert dict(stats.entries.by_type) == {"ValueError": failed}
        spans = exporter.get_finished_spans()
        per_trace = Counter(s.context.trace_id for s in spans)
        assert set(per_trace.values()) == {3}  # a trace is exported whole or not at all
        assert 0.1 * ROOTS - 100 <= len(per_trace) <= 0.1 * ROOTS + 100  # +-6 sigma
        assert all(s.context.trace_flags.sampled for s in spans)

    def test_a_processor_of_the_users_still_sees_every_span(
        self, configure: Callable[..., flowtel.Telemetry]
    ) -> None:
        """Light counting switches itself off when a processor might want sampled-out spans."""
        mine = SeesEverySpan()
        configure(sample_rate=0.1, span_processors=[mine])
        failed = _run()
        assert mine.ended == 3 * ROOTS
        stats = flowtel.get_error_stats()
        assert (stats.entries.total, stats.entries.errors) == (ROOTS, failed)

    def test_a_failing_sampled_out_call_is_recorded_after_all(
        self, configure: Callable[..., flowtel.Telemetry], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The exception of a sampled-out call reaches the error statistics with its type and
        message handling, through the same recorded (not sampled) span as before."""
        recorded: list[Any] = []
        from flowtel.tracing import _site

        original = _site.record_exception

        def spy(span: Any, exc: BaseException, *, escaped: bool = True) -> None:
            recorded.append((span.is_recording(), span.get_span_context().trace_flags.sampled))
            original(span, exc, escaped=escaped)

        monkeypatch.setattr(_site, "record_exception", spy)
        configure(sample_rate=0.0)
        with pytest.raises(ValueError):
            checkout(10)
        assert recorded == [(True, False), (True, False)]  # reserve, then checkout
        stats = flowtel.get_error_stats()
        assert (stats.entries.total, stats.entries.errors) == (1, 1)

    def test_inside_a_sampled_out_call_the_span_does_not_record(
        self, configure: Callable[..., flowtel.Telemetry]
    ) -> None:
        """As with a dropping sampler, a sampled-out call runs under a non-recording span,
        unless a processor of the user's wants sampled-out spans: then it records."""
        from opentelemetry import trace

        seen: list[bool] = []

        @flowtel.traced
        def look() -> None:
            seen.append(trace.get_current_span().is_recording())

        configure(sample_rate=0.0)
        look()
        configure(sample_rate=0.0, span_processors=[SeesEverySpan()])
        look()
        assert seen == [False, True]

    def test_a_handled_error_counts_under_the_sampled_out_call(
        self, configure: Callable[..., flowtel.Telemetry]
    ) -> None:
        """record_error() inside a sampled-out call is attributed to that call's component and
        operation, as inside a recorded one."""
        from flowtel.errors import record_error

        @flowtel.traced(component="search", operation="query")
        def query() -> None:
            try:
                raise ConnectionResetError("cache unavailable")
            except ConnectionResetError as exc:
                record_error(exc)

        configure(sample_rate=0.0)
        for _ in range(3):
            query()
        stats = flowtel.get_error_stats(component="search", operation="query")
        assert (stats.total, stats.errors, stats.handled) == (3, 0, 3)
