"""flowtel's log handler versus raw OpenTelemetry's LoggingHandler, measured in one run.

Run: ``python benchmarks/bench_logging.py``. Prints per-record microseconds for one
``logger.info("... %d", i, extra={...})`` inside a span (best of N repeats, interleaved) and the
ratio flowtel / raw. Both handlers feed the same LoggerProvider with a BatchLogRecordProcessor and
an exporter that does nothing, so the number is what the application thread pays. flowtel does
more per record (scrubbing the message and extras, code location, exception fields), which is
what the ratio shows.
"""

from __future__ import annotations

import gc
import logging
import statistics
import timeit
import warnings
from collections.abc import Sequence

from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler, ReadableLogRecord
from opentelemetry.sdk._logs.export import (
    BatchLogRecordProcessor,
    LogRecordExporter,
    LogRecordExportResult,
)
from opentelemetry.sdk.trace import TracerProvider

from flowtel.logs import OTelLogHandler

N = 5_000
REPEATS = 5


class NullExporter(LogRecordExporter):
    """Accepts and forgets every batch."""

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        return LogRecordExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


def per_record_us(logger: logging.Logger, number: int = N) -> float:
    counter = iter(range(10**9))

    def one() -> None:
        logger.info("order %d placed", next(counter), extra={"order_id": 7, "region": "eu"})

    return timeit.timeit(one, number=number) / number * 1e6


def main() -> None:
    provider = LoggerProvider(shutdown_on_exit=False)
    provider.add_log_record_processor(BatchLogRecordProcessor(NullExporter(), max_queue_size=N * 2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        raw_handler: logging.Handler = LoggingHandler(logger_provider=provider)
    handlers: dict[str, logging.Handler] = {
        "raw": raw_handler,
        "flowtel": OTelLogHandler(provider),
    }
    loggers: dict[str, logging.Logger] = {}
    for name, handler in handlers.items():
        logger = logging.getLogger(f"bench.{name}")
        logger.propagate = False
        logger.setLevel(logging.INFO)
        logger.addHandler(handler)
        loggers[name] = logger
    tracer = TracerProvider().get_tracer("bench")
    times: dict[str, list[float]] = {name: [] for name in loggers}
    with tracer.start_as_current_span("request"):
        for _ in range(REPEATS):  # interleave to cancel drift
            for name, logger in loggers.items():
                gc.collect()
                times[name].append(per_record_us(logger))
                provider.force_flush()
    raw, ours = min(times["raw"]), min(times["flowtel"])
    print(f"records per run: {N}, repeats: {REPEATS}")
    print(f"raw OTel LoggingHandler   {raw:8.1f} us/record")
    print(f"flowtel OTelLogHandler    {ours:8.1f} us/record")
    median = statistics.median(times["flowtel"]) / statistics.median(times["raw"])
    print(f"ratio flowtel / raw       {ours / raw:8.2f}x   (median ratio {median:.2f}x)")
    provider.shutdown()


if __name__ == "__main__":
    main()
