"""ErrorRateProcessor on its own: windows, concurrency, cardinality, faults and configuration."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.trace import Status, StatusCode

from flowtel import semconv
from flowtel.errors import ErrorRateProcessor, get_error_stats
from flowtel.exceptions import ConfigurationError

from .conftest import FakeClock, Pipeline, metric_points


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def tracer_provider() -> Iterator[TracerProvider]:
    provider = TracerProvider()
    yield provider
    provider.shutdown()


def emit(
    provider: TracerProvider,
    n: int,
    *,
    failed: int = 0,
    op: str = "op",
    component: str = "comp",
    error_type: str = "E",
) -> None:
    tracer = provider.get_tracer("test")
    attributes = {semconv.COMPONENT: component, semconv.OPERATION: op}
    for i in range(n):
        span = tracer.start_span(op, attributes=attributes)
        if i < failed:
            span.set_attribute(semconv.ERROR_TYPE, error_type)
            span.set_status(Status(StatusCode.ERROR))
        span.end()


class TestWindow:
    def test_old_buckets_leave_short_windows(
        self, clock: FakeClock, tracer_provider: TracerProvider
    ) -> None:
        """Calls older than the requested minutes (plus one bucket) are not counted."""
        processor = ErrorRateProcessor(window_minutes=60, clock=clock)
        tracer_provider.add_span_processor(processor)
        emit(tracer_provider, 10, failed=5)
        clock.advance(10 * 60)
        emit(tracer_provider, 20)
        recent = processor.stats(last_minutes=5)
        assert (recent.total, recent.errors) == (20, 0)
        both = processor.stats(last_minutes=15)
        assert (both.total, both.errors, dict(both.by_type)) == (30, 5, {"E": 5})

    def test_everything_expires_after_the_window(
        self, clock: FakeClock, tracer_provider: TracerProvider
    ) -> None:
        """After window_minutes plus one bucket without calls, all counts are gone."""
        processor = ErrorRateProcessor(window_minutes=60, clock=clock)
        tracer_provider.add_span_processor(processor)
        emit(tracer_provider, 10, failed=3)
        clock.advance(59 * 60)
        assert processor.stats(last_minutes=60).total == 10
        clock.advance(2 * 60)
        stats = processor.stats(last_minutes=60)
        assert (stats.total, stats.errors, dict(stats.by_operation)) == (0, 0, {})
        emit(tracer_provider, 4, failed=1)
        assert (processor.stats().total, processor.stats().errors) == (4, 1)

    def test_window_covers_at_least_the_request(self, clock: FakeClock) -> None:
        """An old enough processor covers the requested minutes, at most one bucket more."""
        processor = ErrorRateProcessor(window_minutes=60, clock=clock)
        clock.advance(2 * 3600 + 17)
        window = processor.stats(last_minutes=15).window
        assert timedelta(minutes=15) <= window < timedelta(minutes=16)
        longest = processor.stats(last_minutes=600).window
        assert timedelta(minutes=60) <= longest <= timedelta(minutes=61)

    def test_young_processor_reports_its_age(self, clock: FakeClock) -> None:
        """The window covered never reaches back before the processor existed."""
        processor = ErrorRateProcessor(window_minutes=60, clock=clock)
        clock.advance(90)
        assert processor.stats(last_minutes=15).window == timedelta(seconds=90)

    def test_gauge_follows_the_window(
        self, clock: FakeClock, tracer_provider: TracerProvider
    ) -> None:
        """The error-rate gauge per window drops to 0 once failures leave that window."""
        reader = InMemoryMetricReader()
        meters = MeterProvider(metric_readers=[reader])
        processor = ErrorRateProcessor(
            meter=meters.get_meter("t"), clock=clock, gauge_windows_minutes=(1, 15)
        )
        tracer_provider.add_span_processor(processor)
        emit(tracer_provider, 10, failed=2)
        clock.advance(5 * 60)
        rates = metric_points(reader, semconv.METRIC_ERROR_RATE)
        key = {semconv.COMPONENT: "comp"}
        assert rates[frozenset({**key, semconv.ERROR_RATE_WINDOW: "1m"}.items())] == 0.0
        assert rates[frozenset({**key, semconv.ERROR_RATE_WINDOW: "15m"}.items())] == 0.2
        meters.shutdown()


class TestConcurrency:
    def test_threads_lose_no_counts(self, tracer_provider: TracerProvider) -> None:
        """Eight threads ending spans at once are all counted exactly."""
        processor = ErrorRateProcessor()
        tracer_provider.add_span_processor(processor)
        start = threading.Barrier(8)

        def work(n: int) -> None:
            start.wait(timeout=10)
            emit(tracer_provider, 2000, failed=n * 10, op=f"op{n % 3}")

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(work, range(8)))
        stats = processor.stats()
        assert (stats.total, stats.errors) == (16_000, sum(n * 10 for n in range(8)))

    def test_asyncio_tasks_lose_no_counts(self, tracer_provider: TracerProvider) -> None:
        """Interleaved spans of 100 asyncio tasks are all counted exactly."""
        processor = ErrorRateProcessor()
        tracer_provider.add_span_processor(processor)
        tracer = tracer_provider.get_tracer("async")

        async def task(n: int) -> None:
            for i in range(20):
                with tracer.start_as_current_span("step") as span:
                    await asyncio.sleep(0)  # yield to the other tasks mid-span
                    if (n + i) % 10 == 0:
                        span.set_status(Status(StatusCode.ERROR))

        async def main() -> None:
            await asyncio.gather(*(task(n) for n in range(100)))

        asyncio.run(main())
        stats = processor.stats()
        assert (stats.total, stats.errors, dict(stats.by_type)) == (2000, 200, {"_OTHER": 200})

    def test_span_ended_on_another_thread(self, tracer_provider: TracerProvider) -> None:
        """A span started on one thread and ended on another is counted under its own key."""
        processor = ErrorRateProcessor()
        tracer_provider.add_span_processor(processor)
        span = tracer_provider.get_tracer("t").start_span(
            "handoff", attributes={semconv.COMPONENT: "worker", semconv.OPERATION: "job"}
        )
        span.set_status(Status(StatusCode.ERROR))
        worker = threading.Thread(target=span.end)
        worker.start()
        worker.join(timeout=10)
        stats = processor.stats()
        assert dict(stats.by_operation)[("worker", "job")].errors == 1


class TestCardinality:
    def test_overflow_folds_into_other_and_warns_once(
        self, make_pipeline: Callable[..., Pipeline], caplog: pytest.LogCaptureFixture
    ) -> None:
        """Pairs beyond max_keys are counted under ('_other', '_other') with a single warning."""
        pipeline = make_pipeline(error_max_keys=10)
        with caplog.at_level(logging.WARNING, logger="flowtel.errors"):
            for n in range(25):
                emit(pipeline.tracer_provider, 4, failed=1, op=f"op{n}")
        stats = get_error_stats()
        assert len(stats.by_operation) == 11
        other = stats.by_operation[("_other", "_other")]
        assert (other.total, other.errors, stats.total, stats.errors) == (60, 15, 100, 25)
        assert len([r for r in caplog.records if "error_max_keys" in r.getMessage()]) == 1
        calls = metric_points(pipeline.metrics, semconv.METRIC_OPERATION_CALLS)
        operations = {dict(attrs)[semconv.OPERATION] for attrs in calls}
        assert len(operations) == 11 and "_other" in operations
        assert sum(calls.values()) == 100

    def test_error_types_per_operation_are_bounded(self, tracer_provider: TracerProvider) -> None:
        """More than 16 error types on one operation fold into _OTHER."""
        processor = ErrorRateProcessor()
        tracer_provider.add_span_processor(processor)
        for n in range(20):
            emit(tracer_provider, 1, failed=1, error_type=f"E{n}")
        by_type = processor.stats().by_type
        assert len(by_type) == 17 and by_type["_OTHER"] == 4

    def test_memory_does_not_grow_with_volume(self, tracer_provider: TracerProvider) -> None:
        """Counting 4x more spans over the same keys allocates no more memory.

        Measured after a flush: up to one batch of spans waits to be counted (a constant).
        """
        import tracemalloc

        processor = ErrorRateProcessor()
        tracer_provider.add_span_processor(processor)
        emit(tracer_provider, 1000, failed=10)
        tracemalloc.start()
        emit(tracer_provider, 1000, failed=10)
        processor.force_flush()
        first = tracemalloc.get_traced_memory()[0]
        emit(tracer_provider, 4000, failed=40)
        processor.force_flush()
        second = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        assert second - first < 16_384
        assert processor.stats().total == 6000

    def test_queue_is_bounded_between_batches(self, tracer_provider: TracerProvider) -> None:
        """At most one batch waits uncounted; a query always counts what waits first."""
        from flowtel.errors import _processor as errors_module

        processor = ErrorRateProcessor()
        tracer_provider.add_span_processor(processor)
        for n in range(1, 3 * errors_module._BATCH):
            emit(tracer_provider, 1)
            assert len(processor._pending) < errors_module._BATCH
            if n % 17 == 0:
                assert processor.stats().total == n
                assert not processor._pending


class TestFaults:
    def test_on_end_never_raises(
        self, tracer_provider: TracerProvider, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A failure inside on_end is logged once and never reaches span.end()."""
        clock = FakeClock()
        broken = True

        def flaky_clock() -> float:
            if broken:
                raise OSError("clock unavailable")
            return clock()

        broken = False
        processor = ErrorRateProcessor(clock=flaky_clock)
        tracer_provider.add_span_processor(processor)
        broken = True
        with caplog.at_level(logging.ERROR, logger="flowtel.errors"):
            emit(tracer_provider, 3)
        assert len([r for r in caplog.records if "could not count" in r.getMessage()]) == 1
        broken = False
        emit(tracer_provider, 2)
        assert processor.stats().total == 2

    def test_bare_readable_span_is_counted(self) -> None:
        """A span without scope, timestamps or attributes counts under ('', name)."""
        processor = ErrorRateProcessor(meter=MeterProvider().get_meter("t"))
        processor.on_end(ReadableSpan(name="bare"))
        assert processor.stats().by_operation[("", "bare")].total == 1


class TestConfiguration:
    @pytest.mark.parametrize(
        ("option", "kwargs"),
        [
            ("error_window_minutes", {"window_minutes": 0}),
            ("error_window_minutes", {"window_minutes": -5}),
            ("error_window_minutes", {"window_minutes": "60"}),
            ("error_window_minutes", {"window_minutes": float("inf")}),
            ("error_max_keys", {"max_keys": 0}),
            ("error_max_keys", {"max_keys": 2.5}),
            ("error_max_keys", {"max_keys": True}),
            ("bucket_s", {"bucket_s": 0}),
            ("gauge_windows_minutes", {"window_minutes": 10, "gauge_windows_minutes": (15,)}),
        ],
    )
    def test_bad_options_fail_fast(self, option: str, kwargs: dict[str, object]) -> None:
        """A bad constructor option raises ConfigurationError naming the option."""
        with pytest.raises(ConfigurationError) as raised:
            ErrorRateProcessor(**kwargs)  # type: ignore[arg-type]
        assert raised.value.option == option

    @pytest.mark.parametrize("last_minutes", [0, -1, float("nan"), "15"])
    def test_bad_last_minutes_fails_fast(self, last_minutes: object) -> None:
        """stats() rejects a non-positive or non-numeric window."""
        with pytest.raises(ConfigurationError, match="last_minutes"):
            ErrorRateProcessor().stats(last_minutes=last_minutes)  # type: ignore[arg-type]


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
def test_forked_child_counts_and_answers_while_parent_held_the_lock(
    tracer_provider: TracerProvider,
) -> None:
    """A fork while another thread holds the processor's lock must not hang the child."""
    import os

    processor = ErrorRateProcessor()
    tracer_provider.add_span_processor(processor)
    emit(tracer_provider, 10, failed=1)
    processor._lock.acquire()  # as if the metric reader were collecting at fork time
    try:
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: count more spans (past a batch) and query; report the total
            import signal

            signal.alarm(20)  # a hung child dies instead of outliving the test
            try:
                emit(tracer_provider, 100, failed=2)
                stats = processor.stats()
                os.write(write, f"{stats.total} {stats.errors}".encode())
            finally:
                os._exit(0)
    finally:
        processor._lock.release()
    os.close(write)
    with os.fdopen(read) as pipe:
        reply = pipe.read()
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status)
    assert reply == "110 3"
    assert processor.stats().total == 10  # the parent's counts are its own


def test_public_property_path_counts_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    """On an SDK whose ReadableSpan layout differs from the probe's, on_end reads the public
    properties instead of the fields; the counts are the same either way."""
    from flowtel.errors import _processor as errors_module

    assert errors_module.DIRECT_READS  # this SDK: the fast path is in use
    results = []
    for direct in (True, False):
        monkeypatch.setattr(errors_module, "DIRECT_READS", direct)
        processor = ErrorRateProcessor()
        provider = TracerProvider()
        provider.add_span_processor(processor)
        emit(provider, 150, failed=15, error_type="TimeoutError")
        tracer = provider.get_tracer("scope-as-component")
        span = tracer.start_span("unnamed-operation")
        span.set_status(Status(StatusCode.ERROR))
        span.end()
        stats = processor.stats()
        results.append((stats.total, stats.errors, dict(stats.by_type), dict(stats.by_operation),
                        stats.entries.total, stats.entries.errors))  # fmt: skip
        provider.shutdown()
    assert results[0] == results[1]
    assert results[0][0] == 151 and results[0][2]["TimeoutError"] == 15
    assert ("scope-as-component", "unnamed-operation") in results[0][3]
