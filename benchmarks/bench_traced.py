"""@traced / span() cost versus raw OpenTelemetry on the same provider, measured in one run.

SPECIAL CONFIGURATION, not the defaults: error aggregation is off (``error_window_minutes=None``)
and both sides share one provider feeding a null exporter, to isolate what the decorator itself
costs; the sampled-out rows also show ``count_unsampled=False``. The headline figures, on the
defaults and through flowtel's own export pipeline, come from ``bench_defaults.py``.

Run: ``python benchmarks/bench_traced.py``. Prints per-call nanoseconds (best of N repeats,
interleaved so both sides see the same machine state) and the ratio flowtel / raw.
The spans go through a BatchSpanProcessor to an exporter that does nothing, so the cost measured is
what the application thread pays.
"""

from __future__ import annotations

import gc
import statistics
import sys
import timeit
from collections.abc import Callable, Sequence

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

import flowtel

N = 20_000
REPEATS = 7


class NullExporter(SpanExporter):
    """Accepts and forgets every batch."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


def best_ns(fn: Callable[[], object], number: int = N) -> float:
    return min(timeit.repeat(fn, number=number, repeat=1)) / number * 1e9


def compare(label: str, raw: Callable[[], object], ours: Callable[[], object]) -> float:
    raw_t, our_t = [], []
    for _ in range(REPEATS):  # interleave to cancel drift
        gc.collect()
        raw_t.append(best_ns(raw))
        gc.collect()
        our_t.append(best_ns(ours))
    r, o = min(raw_t), min(our_t)
    ratio = o / r
    print(
        f"{label:<44} raw {r:8.0f} ns   flowtel {o:8.0f} ns   ratio {ratio:.2f}x"
        f"   (median ratio {statistics.median(our_t) / statistics.median(raw_t):.2f}x)"
    )
    return ratio


def configure(sample_rate: float, count_unsampled: bool) -> flowtel.Telemetry:
    return flowtel.configure_telemetry(
        service_name="bench",
        exporter="none",
        logging=False,
        error_window_minutes=None,
        sample_rate=sample_rate,
        count_unsampled=count_unsampled,
        span_processors=[BatchSpanProcessor(NullExporter(), max_queue_size=1 << 16)],
        force=True,
    )


def main() -> int:
    results: dict[str, float] = {}

    # --- sampled, recorded and exported ------------------------------------------------------
    tel = configure(1.0, True)
    tracer = tel.tracer_provider.get_tracer("bench")

    def work() -> int:
        return 1

    @flowtel.traced
    def traced_work() -> int:
        return 1

    def raw_sync() -> int:
        with tracer.start_as_current_span("work"):
            return work()

    print("(special configuration: error aggregation off, shared provider, null exporter)")
    results["sync"] = compare("sync function, sampled", raw_sync, traced_work)

    # The same comparison with raw OTel given the attributes @traced adds (code.*): the
    # attribute cleaning in the SDK's span constructor is what the raw baseline does not pay.
    from flowtel.tracing._site import _Site

    same_attributes = dict(_Site(work, None, None, None, None, False, False).attributes)

    def raw_sync_attrs() -> int:
        with tracer.start_as_current_span("work", attributes=same_attributes):
            return work()

    results["sync_same_attributes"] = compare(
        "sync function, raw given the same attributes", raw_sync_attrs, traced_work
    )

    async def awork() -> int:
        return 1

    @flowtel.traced
    async def traced_awork() -> int:
        return 1

    async def raw_async() -> int:
        with tracer.start_as_current_span("work"):
            return await awork()

    def drive(coro_fn: Callable[[], object]) -> Callable[[], object]:
        def run() -> object:
            coro = coro_fn()
            try:
                coro.send(None)  # type: ignore[attr-defined]
            except StopIteration as stop:
                return stop.value
            raise RuntimeError("coroutine suspended")

        return run

    results["async"] = compare("async function, sampled", drive(raw_async), drive(traced_awork))

    def raw_cm() -> None:
        with tracer.start_as_current_span("work"):
            pass

    def flowtel_cm() -> None:
        with flowtel.span("work"):
            pass

    results["span_cm"] = compare("span() context manager, sampled", raw_cm, flowtel_cm)
    tel.shutdown()

    # --- sampled out --------------------------------------------------------------------------
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

    raw_off = TracerProvider(sampler=ALWAYS_OFF, shutdown_on_exit=False)
    raw_off.add_span_processor(BatchSpanProcessor(NullExporter()))
    raw_off_tracer = raw_off.get_tracer("bench")

    def raw_sampled_out() -> int:
        with raw_off_tracer.start_as_current_span("work"):
            return work()

    configure(0.0, False)

    @flowtel.traced
    def traced_out() -> int:
        return 1

    results["sampled_out"] = compare(
        "sync, sampled out (count_unsampled=False)", raw_sampled_out, traced_out
    )
    tel2 = configure(0.0, True)

    @flowtel.traced
    def traced_out_recorded() -> int:
        return 1

    results["sampled_out_recorded"] = compare(
        "sync, sampled out (count_unsampled=True)", raw_sampled_out, traced_out_recorded
    )
    tel2.shutdown()
    raw_off.shutdown()
    print()
    for key, ratio in results.items():
        print(f"RATIO {key} {ratio:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
