"""8 threads x 10,000 spans into a slow collector: memory stays bounded, the loss count is exact."""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable

from opentelemetry.sdk.trace import ReadableSpan

from flowtel._export._batch import queued
from flowtel._export._guard import LossReason, TelemetrySignal
from tests.faults.conftest import Pipeline, span_exporter
from tests.support.otlp_receiver import OtlpGrpcReceiver

THREADS = 8
SPANS_PER_THREAD = 10_000
TOTAL = THREADS * SPANS_PER_THREAD
MAX_QUEUE = 2048
TRACES = TelemetrySignal.TRACES


class TestQueueOverflow:
    """The queue overflows under load; nothing grows without bound and nothing goes uncounted."""

    def test_eight_threads_overflow_exact_and_bounded(
        self, otlp_grpc: OtlpGrpcReceiver, make_pipeline: Callable[..., Pipeline]
    ) -> None:
        """exported + counted lost == 80,000 exactly; queue <= max + threads; live spans bounded."""
        otlp_grpc.delay_s = 0.05  # a slow collector: the queue must overflow
        pipeline = make_pipeline(
            span_exporter("grpc", otlp_grpc.endpoint),
            shutdown_timeout_s=20.0,
            max_queue_size=MAX_QUEUE,
            max_export_batch_size=512,
        )
        tracer = pipeline.provider.get_tracer("load")
        high_water = [0]
        errors: list[BaseException] = []
        start = threading.Barrier(THREADS)

        def worker() -> None:
            try:
                start.wait()
                for i in range(SPANS_PER_THREAD):
                    with tracer.start_as_current_span("load") as span:
                        span.set_attribute("i", i)
                    if i % 500 == 0:
                        high_water[0] = max(high_water[0], queued(pipeline.processor))
            except BaseException as exc:  # surfaced below; a thread must not hide it
                errors.append(exc)

        threads = [threading.Thread(target=worker) for _ in range(THREADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        live_spans = sum(isinstance(o, ReadableSpan) for o in gc.get_objects())
        assert errors == []
        assert not any(t.is_alive() for t in threads)

        otlp_grpc.delay_s = 0.0
        assert pipeline.processor.force_flush(20_000)
        exported = len(otlp_grpc.spans())
        dropped = pipeline.guard.dropped(TRACES)
        pipeline.shutdown_s()
        assert pipeline.guard.dropped(TRACES) == dropped  # flush had drained everything
        assert exported + dropped == TOTAL
        assert pipeline.guard.dropped(TRACES, LossReason.QUEUE_FULL) == dropped > 0
        assert high_water[0] <= MAX_QUEUE + THREADS
        # Memory: the spans alive when the load stops are the queue plus one batch in flight,
        # not the 80,000 produced.
        assert 0 < live_spans <= MAX_QUEUE + THREADS + 2 * 512, live_spans
