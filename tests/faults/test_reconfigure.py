"""Reconfiguration is transactional and every loss is counted (issue 16, points 2, 3 and 6).

Through ``configure_telemetry`` and the OTLP/HTTP test receiver: a failed rebuild leaves the
old pipeline exporting; spans that end on a closed pipeline are counted as ``after_shutdown``;
under concurrent tracing across ten reconfigurations, exported + counted == ended.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from opentelemetry import trace
from opentelemetry._logs import LogRecord, get_logger

import flowtel
from flowtel.exceptions import ConfigurationError
from tests.support.polling import wait_until


def _otlp(otlp_http: Any, **extra: Any) -> dict[str, Any]:
    return {"exporter": "otlp", "otlp_endpoint": otlp_http.endpoint,
            "otlp_protocol": "http/protobuf", "batch_schedule_delay_s": 0.05, **extra}  # fmt: skip


def _traced(name: str, n: int = 1) -> None:
    tracer = trace.get_tracer("reconfigure-test")
    for _ in range(n):
        with tracer.start_as_current_span(name):
            pass


def _dropped(handles: list[flowtel.Telemetry], reason: str | None = None) -> int:
    return sum(h.export_guard.dropped("traces", reason) for h in handles if h.export_guard)


class TestFailedRebuild:
    def test_busy_prometheus_port_keeps_the_old_pipeline(
        self, configure: Callable[..., flowtel.Telemetry], otlp_http: Any
    ) -> None:
        """A rebuild that cannot bind its port raises naming it; the old pipeline still exports."""
        old = configure(**_otlp(otlp_http))
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen()
            port = busy.getsockname()[1]
            with pytest.raises(ConfigurationError, match="prometheus_port"):
                configure(**_otlp(otlp_http, prometheus_port=port, prometheus_host="127.0.0.1"))
        with pytest.warns(RuntimeWarning, match="already called"):
            assert flowtel.configure_telemetry() is old  # still the current handle
        _traced("after-failed-rebuild")
        assert old.force_flush(5)
        assert otlp_http.wait_for_span("after-failed-rebuild")

    def test_bad_reader_is_rejected_before_anything_changes(
        self, configure: Callable[..., flowtel.Telemetry], otlp_http: Any
    ) -> None:
        """metric_readers=[object()] is a ConfigurationError naming the element; old one works."""
        old = configure(**_otlp(otlp_http))
        with pytest.raises(ConfigurationError, match=r"metric_readers\[0\]"):
            configure(**_otlp(otlp_http, metric_readers=[object()]))
        with pytest.raises(ConfigurationError, match=r"span_processors\[0\]"):
            configure(**_otlp(otlp_http, span_processors=[object()]))
        _traced("after-bad-reader")
        assert old.force_flush(5)
        assert otlp_http.wait_for_span("after-bad-reader")

    def test_same_prometheus_port_is_handed_over(
        self, configure: Callable[..., flowtel.Telemetry]
    ) -> None:
        """Reconfiguring with the same prometheus_port works and keeps the endpoint serving."""
        first = configure(exporter="none", prometheus_port=0, prometheus_host="127.0.0.1")
        port = first.prometheus_port
        assert port is not None
        second = configure(exporter="none", prometheus_port=port, prometheus_host="127.0.0.1")
        assert second.prometheus_port == port
        assert httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).status_code == 200
        second.shutdown(1.0)
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=1)


class TestLossAfterShutdown:
    def test_spans_and_logs_after_shutdown_are_counted(
        self, configure: Callable[..., flowtel.Telemetry], otlp_http: Any
    ) -> None:
        """Every span and log record ending after Telemetry.shutdown() is counted, with reason."""
        telemetry = configure(**_otlp(otlp_http))
        telemetry.shutdown(1.0)
        _traced("too-late", 25)
        get_logger("reconfigure-test").emit(LogRecord(body="too late"))
        guard = telemetry.export_guard
        assert guard is not None
        assert guard.dropped("traces", "after_shutdown") == 25
        assert guard.dropped("logs", "after_shutdown") == 1

    def test_shutdown_never_raises_into_the_host(
        self, configure: Callable[..., flowtel.Telemetry], otlp_http: Any
    ) -> None:
        """A huge or NaN timeout is clamped instead of raising OverflowError."""
        telemetry = configure(**_otlp(otlp_http))
        started = time.monotonic()
        assert telemetry.force_flush(1e10) in (True, False)
        assert telemetry.shutdown(float("nan")) in (True, False)
        assert time.monotonic() - started < 5


class TestConcurrentReconfiguration:
    def test_every_span_is_exported_or_counted(
        self, configure: Callable[..., flowtel.Telemetry], otlp_http: Any
    ) -> None:
        """4 threads trace through 10 reconfigurations: exported + counted == ended."""
        handles = [configure(**_otlp(otlp_http, shutdown_timeout_s=2.0))]
        stop = threading.Event()
        ended = [0] * 4

        def trace_loop(index: int) -> None:
            tracer = trace.get_tracer("ledger")
            while not stop.is_set():
                with tracer.start_as_current_span("ledger"):
                    os.sched_yield()  # let a reconfiguration land between start and end
                ended[index] += 1

        threads = [threading.Thread(target=trace_loop, args=(i,), daemon=True) for i in range(4)]
        for thread in threads:
            thread.start()
        for _ in range(10):
            before = sum(ended)  # swap only once the threads have traced on this pipeline
            wait_until(lambda b=before: sum(ended) >= b + 100, timeout_s=10, what="tracing")
            handles.append(configure(**_otlp(otlp_http, shutdown_timeout_s=2.0)))
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
        assert handles[-1].force_flush(5)
        total = sum(ended)

        def balanced() -> bool:
            exported = len(otlp_http.spans_by_name("ledger"))
            return exported + _dropped(handles) == total

        with contextlib.suppress(AssertionError):  # the assertion below says what is missing
            wait_until(balanced, timeout_s=15, what="every span exported or counted")
        exported = len(otlp_http.spans_by_name("ledger"))
        counted = _dropped(handles)
        print(f"\nended {total}: exported {exported} + counted {counted} "
              f"(after_shutdown {_dropped(handles, 'after_shutdown')})")  # fmt: skip
        assert exported + counted == total
        assert total > 1000  # the threads really traced through the swaps
