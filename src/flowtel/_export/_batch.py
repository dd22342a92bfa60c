"""Batch processors for spans and log records with bounded memory, flush and shutdown.

Why not the SDK's ``BatchSpanProcessor``: its ``force_flush`` ignores the timeout and exports
the whole queue synchronously, its ``shutdown()`` (which ``TracerProvider.shutdown()`` calls
without a timeout) waits up to 30 s, and its queue-full drop count is approximate under
concurrency (the "queue full" check and the evicting append are not atomic). These processors
keep the SDK's settings (``OTEL_BSP_*`` / ``OTEL_BLRP_*`` semantics) and add:

- an exact drop count: an item is either queued or counted as ``queue_full``, never silently
  evicted; every queued item is later exported, counted as failed, or counted as lost at
  shutdown (``exported + dropped == ended`` holds at every quiescent point);
- bounded memory: at most ``max_queue_size`` items, plus one per thread racing on the check;
- ``force_flush(timeout)`` that waits at most ``timeout`` (exports continue in the background);
- ``shutdown()`` bounded by the :class:`~flowtel._export_guard.ExportGuard` budget; whatever is
  still queued at the deadline is dropped and counted as ``shutdown_timeout``;
- an item that ends after ``shutdown()`` (a span started before a reconfiguration, a log record
  after ``Telemetry.shutdown()``) is counted as ``after_shutdown``, also when it races the
  shutdown itself;
- fork safety: a child process starts with an empty queue and its own worker thread.
"""

from __future__ import annotations

import copy
import logging
import os
import threading
import weakref
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Final, Generic, TypeVar

from opentelemetry.context import Context
from opentelemetry.sdk._logs import LogRecordProcessor, ReadableLogRecord, ReadWriteLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter

from flowtel._core._options import (
    DEFAULT_BATCH_MAX_EXPORT_BATCH_SIZE,
    DEFAULT_BATCH_MAX_QUEUE_SIZE,
    DEFAULT_BATCH_SCHEDULE_DELAY_S,
)
from flowtel._export._guard import ExportGuard, LossReason, TelemetrySignal
from flowtel._export._guarded import GuardedLogExporter, GuardedSpanExporter
from flowtel.exceptions import ConfigurationError

if TYPE_CHECKING:
    from flowtel._export._guard import Signal

__all__ = ["BoundedBatchLogRecordProcessor", "BoundedBatchSpanProcessor"]

_logger = logging.getLogger("flowtel.export")

DEFAULT_MAX_QUEUE_SIZE: Final = DEFAULT_BATCH_MAX_QUEUE_SIZE
DEFAULT_MAX_EXPORT_BATCH_SIZE: Final = DEFAULT_BATCH_MAX_EXPORT_BATCH_SIZE
DEFAULT_SCHEDULE_DELAY_S: Final = DEFAULT_BATCH_SCHEDULE_DELAY_S
_EXPORTER_SHUTDOWN_RESERVE_S: Final = 0.03

_T = TypeVar("_T")


class _FlushMarker:
    """Queued behind pending items; the worker sets ``done`` once everything before it left."""

    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done = threading.Event()


class _BatchQueue(Generic[_T]):
    """A bounded FIFO drained by one daemon worker thread in batches.

    Threading contract: ``put`` is lock-free and never blocks or raises (it runs on the
    application's threads, inside ``on_end``/``on_emit``); ``flush`` and ``shutdown`` may be
    called from any thread and wait at most their budget.
    """

    def __init__(
        self,
        export: Callable[[list[_T]], object],
        *,
        signal: Signal,
        guard: ExportGuard,
        max_queue_size: int,
        max_export_batch_size: int,
        schedule_delay_s: float,
    ) -> None:
        _validate(max_queue_size, max_export_batch_size, schedule_delay_s)
        self._export = export
        self._signal = signal
        self._guard = guard
        self._max_queue_size = max_queue_size
        self._batch_size = max_export_batch_size
        self._schedule_delay_s = schedule_delay_s
        self._start()
        if hasattr(os, "register_at_fork"):
            weak_self = weakref.ref(self)

            def _after_in_child() -> None:
                queue = weak_self()
                if queue is not None:
                    queue._start()

            os.register_at_fork(after_in_child=_after_in_child)

    def _start(self) -> None:
        """(Re)create the runtime state: also runs in a forked child, whose threads are gone."""
        self._queue: deque[_T | _FlushMarker] = deque()
        self._wake = threading.Event()
        self._closed = False
        self._swept = False
        self._sweep_lock = threading.Lock()
        self._worker = threading.Thread(
            target=self._run, name=f"flowtel-batch-{self._signal}", daemon=True
        )
        self._worker.start()

    def put(self, item: _T) -> None:
        """Queue ``item`` or, when the queue is full or closed, count it as dropped."""
        if self._closed:
            self._guard.record_drop(self._signal, LossReason.AFTER_SHUTDOWN, 1)
            return
        queue = self._queue
        if len(queue) >= self._max_queue_size:
            self._guard.record_drop(self._signal, LossReason.QUEUE_FULL, 1)
            return
        queue.append(item)
        if self._closed:  # shutdown raced this call: make sure the item is counted once
            self._count_stragglers()
        elif len(queue) >= self._batch_size and not self._wake.is_set():
            self._wake.set()

    def _count_stragglers(self) -> None:
        """After the shutdown sweep, count what racing ``put`` calls left in the queue.

        The sweep and this run under one lock and each pops what it counts, so every item is
        counted exactly once, by whoever popped it; before the sweep, the sweep will count it.
        """
        with self._sweep_lock:
            if self._swept:
                self._guard.record_drop(self._signal, LossReason.AFTER_SHUTDOWN, self._pop_items())

    def _pop_items(self) -> int:
        """Empty the queue; release flush markers; return the number of items popped."""
        lost = 0
        queue = self._queue
        while True:
            try:
                item = queue.popleft()
            except IndexError:
                return lost
            if isinstance(item, _FlushMarker):
                item.done.set()
            else:
                lost += 1

    def __len__(self) -> int:
        return len(self._queue)

    def _run(self) -> None:
        while True:
            self._wake.wait(self._schedule_delay_s)
            self._wake.clear()
            closed = self._closed
            self._drain()
            if closed:
                return

    def _drain(self) -> None:
        queue = self._queue
        batch: list[_T] = []
        while True:
            try:
                item = queue.popleft()
            except IndexError:
                break
            if isinstance(item, _FlushMarker):
                if batch:
                    self._export_batch(batch)
                    batch = []
                item.done.set()
                continue
            batch.append(item)
            if len(batch) >= self._batch_size:
                self._export_batch(batch)
                batch = []
        if batch:
            self._export_batch(batch)

    def _export_batch(self, batch: list[_T]) -> None:
        try:
            self._export(batch)
        except Exception:  # the guarded exporter counts; never kill the worker
            _logger.debug("flowtel batch export raised", exc_info=True)

    def flush(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for every item queued before this call to be handled."""
        if self._closed:
            return False
        marker = _FlushMarker()
        self._queue.append(marker)
        self._wake.set()
        return marker.done.wait(max(0.0, timeout_s))

    def shutdown(self) -> None:
        """Drain within the guard's budget; count what is still queued at the deadline."""
        if self._closed:
            return
        guard = self._guard
        guard.begin_shutdown()
        self._closed = True
        self._wake.set()
        # Exports stop at the guard's export deadline, a reserve before the budget ends, so
        # the worker normally exits in time; if not, its in-flight batch is counted by the
        # guarded exporter and everything still queued is counted here.
        budget_s = guard.shutdown_remaining_s() - _EXPORTER_SHUTDOWN_RESERVE_S
        self._worker.join(max(0.0, budget_s))
        with self._sweep_lock:
            self._swept = True
            lost = self._pop_items()
        guard.record_drop(self._signal, LossReason.SHUTDOWN_TIMEOUT, lost)


def _validate(max_queue_size: int, max_export_batch_size: int, schedule_delay_s: float) -> None:
    if max_queue_size <= 0:
        raise ConfigurationError("max_queue_size", max_queue_size, "an integer > 0")
    if not 0 < max_export_batch_size <= max_queue_size:
        raise ConfigurationError(
            "max_export_batch_size", max_export_batch_size, f"an integer in 1..{max_queue_size}"
        )
    if schedule_delay_s <= 0:
        raise ConfigurationError("schedule_delay_s", schedule_delay_s, "a number of seconds > 0")


class BoundedBatchSpanProcessor(SpanProcessor):
    """Batches sampled spans to a guarded exporter; exact loss counts, bounded waits.

    Threading contract: ``on_end`` runs on application threads; it only appends to a deque
    and never blocks or raises. ``force_flush``/``shutdown`` wait at most their budget.

    Args:
        exporter: the real exporter; wrapped in a :class:`GuardedSpanExporter` unless it is one.
        guard: shared deadline and loss accounting.
        max_queue_size: spans held before new ones are dropped (``OTEL_BSP_MAX_QUEUE_SIZE``).
        max_export_batch_size: spans per export call (``OTEL_BSP_MAX_EXPORT_BATCH_SIZE``).
        schedule_delay_s: longest a span waits before export (``OTEL_BSP_SCHEDULE_DELAY``).
    """

    def __init__(
        self,
        exporter: SpanExporter,
        guard: ExportGuard,
        *,
        max_queue_size: int = DEFAULT_MAX_QUEUE_SIZE,
        max_export_batch_size: int = DEFAULT_MAX_EXPORT_BATCH_SIZE,
        schedule_delay_s: float = DEFAULT_SCHEDULE_DELAY_S,
    ) -> None:
        if not isinstance(exporter, GuardedSpanExporter):
            exporter = GuardedSpanExporter(exporter, guard)
        self.exporter: GuardedSpanExporter = exporter
        self._queue: _BatchQueue[ReadableSpan] = _BatchQueue(
            exporter.export,
            signal=TelemetrySignal.TRACES,
            guard=guard,
            max_queue_size=max_queue_size,
            max_export_batch_size=max_export_batch_size,
            schedule_delay_s=schedule_delay_s,
        )

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """Nothing to do when a span starts."""

    def on_end(self, span: ReadableSpan) -> None:
        """Queue a sampled span (or count it as dropped when the queue is full)."""
        context = span.context
        if context is not None and context.trace_flags.sampled:
            self._queue.put(span)

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Wait at most ``timeout_millis`` for queued spans to be exported; False on timeout."""
        return self._queue.flush(timeout_millis / 1000.0)

    def shutdown(self) -> None:
        """Export what fits in the guard's shutdown budget, count the rest, stop the exporter."""
        self._queue.shutdown()
        self.exporter.shutdown()


class BoundedBatchLogRecordProcessor(LogRecordProcessor):
    """Batches log records to a guarded exporter; exact loss counts, bounded waits.

    Same contract and arguments as :class:`BoundedBatchSpanProcessor` (``OTEL_BLRP_*``).
    """

    def __init__(
        self,
        exporter: LogRecordExporter,
        guard: ExportGuard,
        *,
        max_queue_size: int = DEFAULT_MAX_QUEUE_SIZE,
        max_export_batch_size: int = DEFAULT_MAX_EXPORT_BATCH_SIZE,
        schedule_delay_s: float = DEFAULT_SCHEDULE_DELAY_S,
    ) -> None:
        if not isinstance(exporter, GuardedLogExporter):
            exporter = GuardedLogExporter(exporter, guard)
        self.exporter: GuardedLogExporter = exporter
        self._queue: _BatchQueue[ReadableLogRecord] = _BatchQueue(
            exporter.export,
            signal=TelemetrySignal.LOGS,
            guard=guard,
            max_queue_size=max_queue_size,
            max_export_batch_size=max_export_batch_size,
            schedule_delay_s=schedule_delay_s,
        )

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        """Queue a read-only copy of the record, detached from its (possibly large) context."""
        try:
            api_record = copy.copy(log_record.log_record)
            api_record.context = Context()
            readable = ReadableLogRecord(
                log_record=api_record,
                resource=log_record.resource or Resource.get_empty(),
                instrumentation_scope=log_record.instrumentation_scope,
                limits=log_record.limits,
            )
        except Exception:  # never raise into the logging call
            _logger.debug("flowtel could not queue a log record", exc_info=True)
            return
        self._queue.put(readable)

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Wait at most ``timeout_millis`` for queued records to be exported; False on timeout."""
        return self._queue.flush(timeout_millis / 1000.0)

    def shutdown(self) -> None:
        """Export what fits in the guard's shutdown budget, count the rest, stop the exporter."""
        self._queue.shutdown()
        self.exporter.shutdown()


def queued(processor: BoundedBatchSpanProcessor | BoundedBatchLogRecordProcessor) -> int:
    """Items currently waiting in ``processor``'s queue (for tests and diagnostics)."""
    return len(processor._queue)
