"""flowtel.logging with an in-memory pipeline: translation, formatters, filter, installation."""

from __future__ import annotations

import io
import json
import logging
import sys

import pytest
from opentelemetry import trace
from opentelemetry._logs import SeverityNumber
from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY, attach, detach, set_value
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter

import flowtel
from flowtel import semconv
from flowtel._core._scrub import REDACTED
from flowtel.exceptions import ConfigurationError
from flowtel.logs import (
    ConsoleFormatter,
    JsonFormatter,
    OTelLogHandler,
    TraceContextFilter,
    current_span_id,
    current_trace_id,
    instrument_logging,
    uninstrument_logging,
)
from tests.logs.conftest import SERVICE, Piped

log = logging.getLogger("app.orders")


def _otel_handlers() -> list[logging.Handler]:
    return [h for h in logging.getLogger().handlers if isinstance(h, OTelLogHandler)]


def _record(msg: str = "hello", **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("app.x", logging.INFO, __file__, 1, msg, (), None)
    record.__dict__.update(extra)
    return record


class TestTranslation:
    def test_record_carries_current_span_ids_and_flags(self, pipeline: Piped) -> None:
        """A record logged inside a span carries that span's trace id, span id and flags."""
        pipe, capture = pipeline
        with pipe.tracer.start_as_current_span("op") as span:
            log.info("inside")
        (got,) = capture.logs
        ctx = span.get_span_context()
        assert got.log_record.trace_id == ctx.trace_id
        assert got.log_record.span_id == ctx.span_id
        assert got.log_record.trace_flags is not None and got.log_record.trace_flags.sampled

    def test_severity_number_and_text_per_level(self, pipeline: Piped) -> None:
        """Each stdlib level maps to the OTel severity number and display text."""
        _, capture = pipeline
        for level in (logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR, 50, 25):
            log.log(level, "lvl %s", level)
        got = [(r.log_record.severity_number, r.log_record.severity_text) for r in capture.logs]
        assert got == [
            (SeverityNumber.INFO, "INFO"),
            (SeverityNumber.WARN, "WARN"),
            (SeverityNumber.ERROR, "ERROR"),
            (SeverityNumber.FATAL, "FATAL"),
            (SeverityNumber.INFO4, "Level 25"),
        ]

    def test_code_location_logger_and_extras_become_attributes(self, pipeline: Piped) -> None:
        """Logger name, file, function, line and extra fields are attributes."""
        _, capture = pipeline
        log.info("placed", extra={"order_id": 42, "items": ["a", "b"], "obj": object})
        attrs = capture.logs[0].log_record.attributes or {}
        assert attrs[semconv.LOG_LOGGER] == "app.orders"
        assert (
            attrs[semconv.CODE_FUNCTION] == "test_code_location_logger_and_extras_become_attributes"
        )
        assert attrs[semconv.CODE_FILEPATH] == __file__
        assert isinstance(attrs[semconv.CODE_LINENO], int)
        assert attrs["order_id"] == 42
        assert list(attrs["items"]) == ["a", "b"]  # type: ignore[arg-type]
        assert attrs["obj"] == str(object)

    def test_exception_fields(self, pipeline: Piped) -> None:
        """logger.exception carries the exception type, message and stack trace."""
        _, capture = pipeline

        def fail() -> None:
            raise KeyError("missing-key")

        try:
            fail()
        except KeyError:
            log.exception("lookup failed")
        attrs = capture.logs[0].log_record.attributes or {}
        assert attrs[semconv.EXCEPTION_TYPE] == "KeyError"
        assert attrs[semconv.EXCEPTION_MESSAGE] == "'missing-key'"
        stack = str(attrs[semconv.EXCEPTION_STACKTRACE])
        assert "in fail" in stack and stack.rstrip().endswith("KeyError: 'missing-key'")

    def test_secrets_scrubbed_in_body_extras_and_exception(self, pipeline: Piped) -> None:
        """Secrets are scrubbed by key and by shape everywhere in the record."""
        _, capture = pipeline
        try:
            raise RuntimeError("connect postgres://app:s3cr3t-pw@db/x failed")
        except RuntimeError:
            log.exception(
                "login password=hunter2 with Bearer abcdef123456",
                extra={"api_key": "k-123", "note": "token=zzz999"},
            )
        record = capture.logs[0].log_record
        attrs = record.attributes or {}
        dumped = json.dumps({"body": record.body, **{k: str(v) for k, v in attrs.items()}})
        for secret in ("hunter2", "abcdef123456", "k-123", "zzz999", "s3cr3t-pw"):
            assert secret not in dumped
        assert attrs["api_key"] == REDACTED

    def test_below_level_is_not_exported(self, pipeline: Piped) -> None:
        """DEBUG records are not exported at the default INFO level."""
        _, capture = pipeline
        log.debug("noise")
        assert capture.logs == []

    def test_custom_level(self) -> None:
        """log_level=WARNING exports WARNING and above only."""
        logs = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]
        telemetry = flowtel.configure_telemetry(
            exporter="none", log_exporters=[logs], log_level="WARNING", force=True
        )
        log.info("no")
        log.warning("yes")
        telemetry.shutdown()
        assert [r.log_record.body for r in logs.get_finished_logs()] == ["yes"]

    def test_bad_level_fails_fast(self, pipeline: Piped) -> None:
        """An unknown level raises ConfigurationError naming log_level and the accepted values."""
        pipe, _ = pipeline
        with pytest.raises(ConfigurationError) as info:
            instrument_logging(pipe.logger_provider, level="LOUD")
        assert info.value.option == "log_level" and "WARNING" in info.value.accepted


class TestFeedbackGuard:
    @pytest.mark.parametrize(
        "name", ["opentelemetry.sdk._shared_internal", "grpc._channel", "urllib3.connectionpool"]
    )
    def test_exporter_stack_loggers_never_exported(self, pipeline: Piped, name: str) -> None:
        """Records from the SDK, gRPC and urllib3 loggers are not exported."""
        _, capture = pipeline
        logging.getLogger(name).error("export failed")
        log.error("app")
        assert [r.log_record.body for r in capture.logs] == ["app"]

    def test_records_logged_during_export_are_dropped(self, pipeline: Piped) -> None:
        """Records logged while the SDK exports (suppressed context) are not exported."""
        _, capture = pipeline
        token = attach(set_value(_SUPPRESS_INSTRUMENTATION_KEY, True))
        try:
            log.error("from inside an export")
        finally:
            detach(token)
        assert capture.logs == []

    def test_processor_that_logs_does_not_recurse(self, pipeline: Piped) -> None:
        """A log processor that itself logs produces no second record and no recursion."""
        from opentelemetry.sdk._logs import LogRecordProcessor, ReadWriteLogRecord

        class Chatty(LogRecordProcessor):
            def on_emit(self, log_record: ReadWriteLogRecord) -> None:
                logging.getLogger("app.chatty").warning("saw a record")

            def shutdown(self) -> None: ...

            def force_flush(self, timeout_millis: int = 30000) -> bool:
                return True

        pipe, capture = pipeline
        pipe.logger_provider.add_log_record_processor(Chatty())
        log.warning("one")
        assert [r.log_record.body for r in capture.logs] == ["one"]

    def test_broken_extra_never_raises(self, pipeline: Piped) -> None:
        """An extra whose str() raises still yields a record and never raises to the caller."""

        class Nasty:
            def __str__(self) -> str:
                raise RuntimeError("no")

        _, capture = pipeline
        log.warning("still here", extra={"nasty": Nasty()})
        assert capture.logs[0].log_record.attributes["nasty"] == "<unprintable Nasty>"  # type: ignore[index]


class TestInstallation:
    def test_install_twice_keeps_one_handler(self, pipeline: Piped) -> None:
        """A second install replaces the first: one handler, one exported record."""
        pipe, capture = pipeline
        instrument_logging(pipe.logger_provider)
        assert len(_otel_handlers()) == 1
        log.warning("once")
        assert len(capture.logs) == 1

    def test_existing_root_handler_output_unchanged(self) -> None:
        """An existing root handler prints what it printed before; the record is exported once."""
        root = logging.getLogger()
        root.setLevel(logging.WARNING)
        stream = io.StringIO()
        mine = logging.StreamHandler(stream)
        mine.setFormatter(logging.Formatter("%(levelname)s %(message)s %(trace_id)s"))
        root.addHandler(mine)
        logs = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]
        telemetry = flowtel.configure_telemetry(exporter="none", log_exporters=[logs], force=True)
        with flowtel.span("op"):
            log.info("info-line")
            log.warning("warn-line")
            trace_id = current_trace_id()
        assert stream.getvalue().splitlines() == [f"WARNING warn-line {trace_id}"]
        assert [r.log_record.body for r in logs.get_finished_logs()] == ["info-line", "warn-line"]
        telemetry.shutdown()
        assert root.level == logging.WARNING and mine.level == logging.NOTSET
        assert mine.filters == []
        root.removeHandler(mine)

    def test_uninstall_removes_everything(self, pipeline: Piped) -> None:
        """After uninstall, no flowtel handler remains and records are not exported."""
        _, capture = pipeline
        uninstrument_logging()
        log.warning("after")
        assert _otel_handlers() == [] and capture.logs == []

    def test_json_logs_adds_stdout_handler(
        self, pipeline: Piped, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """json_logs=True prints one JSON line per record on stdout."""
        pipe, _ = pipeline
        instrument_logging(pipe.logger_provider, json_logs=True, service_name=SERVICE)
        log.warning("to stdout", extra={"n": 1})
        uninstrument_logging()  # writes out what the non-blocking writer still holds
        (line,) = capsys.readouterr().out.splitlines()
        assert json.loads(line)["message"] == "to stdout"

    def test_json_logs_reuses_existing_console_handler(
        self, pipeline: Piped, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """With a console handler already on root, it gets the JSON formatter: one line, not two."""
        pipe, _ = pipeline
        root = logging.getLogger()
        console = logging.StreamHandler(sys.stderr)
        root.addHandler(console)
        instrument_logging(pipe.logger_provider, json_logs=True, service_name=SERVICE)
        log.warning("once")
        out = capsys.readouterr()
        (line,) = out.err.splitlines()
        assert out.out == "" and json.loads(line)["service.name"] == SERVICE
        uninstrument_logging()
        assert console.formatter is None
        root.removeHandler(console)


class TestJsonFormatter:
    def test_fields_and_order(self, pipeline: Piped) -> None:
        """A JSON line has timestamp, level, logger, message, ids, service.name, then extras."""
        pipe, _ = pipeline
        record = _record("paid %s", order_id=7)
        record.args = (12,)
        with pipe.tracer.start_as_current_span("op"):
            TraceContextFilter().filter(record)
            trace_id, span_id = current_trace_id(), current_span_id()
        doc = json.loads(JsonFormatter(SERVICE).format(record))
        assert list(doc) == [
            "timestamp",
            "level",
            "logger",
            "message",
            "trace_id",
            "span_id",
            "service.name",
            "order_id",
        ]
        assert doc["message"] == "paid 12" and doc["trace_id"] == trace_id
        assert doc["span_id"] == span_id and doc["timestamp"].endswith("Z")

    def test_one_line_even_with_newlines_and_exceptions(self) -> None:
        """Multi-line messages and tracebacks still render as a single parseable line."""
        try:
            raise ValueError("bad\nvalue")
        except ValueError:
            record = logging.LogRecord("x", 40, __file__, 1, "a\nb", (), sys.exc_info())
        line = JsonFormatter().format(record)
        assert "\n" not in line
        doc = json.loads(line)
        assert doc["exception.type"] == "ValueError" and "Traceback" in doc["exception.stacktrace"]
        assert doc["trace_id"] is None and "service.name" not in doc

    def test_extras_scrubbed_recursively(self) -> None:
        """Secret keys are redacted at any depth; secret-shaped text is scrubbed."""
        record = _record(
            "dsn=postgres://u:pw1234@h/db", cfg={"db": {"password": "p"}, "url": "x?token=abc"}
        )
        doc = json.loads(JsonFormatter().format(record))
        assert doc["cfg"] == {"db": {"password": REDACTED}, "url": f"x?token={REDACTED}"}
        assert "pw1234" not in doc["message"]

    def test_unserialisable_and_colliding_extras(self) -> None:
        """Odd extra values become strings; extras named like fixed keys are prefixed."""
        record = _record(level="custom", when={1, 2}, blob=b"\x00", ratio=float("nan"))
        line = JsonFormatter().format(record)
        doc = json.loads(line, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))
        assert doc["ratio"] == "nan"
        assert doc["level"] == "INFO" and doc["extra.level"] == "custom"
        assert sorted(doc["when"]) == [1, 2] and doc["blob"] == str(b"\x00")


class TestConsoleFormatter:
    def test_short_trace_id(self, pipeline: Piped) -> None:
        """The console format shows the first 8 hex digits of the trace id."""
        pipe, _ = pipeline
        record = _record("hi", k=1)
        with pipe.tracer.start_as_current_span("op"):
            TraceContextFilter().filter(record)
            short = (current_trace_id() or "")[:8]
        line = ConsoleFormatter().format(record)
        assert line.endswith(f"INFO  app.x: hi k=1 [trace {short}]")

    def test_no_span_no_trace_suffix(self) -> None:
        """Outside a span the console line carries no trace suffix."""
        assert "[trace" not in ConsoleFormatter().format(_record())


class TestTraceContextFilter:
    def test_third_party_format_string(self, pipeline: Piped) -> None:
        """Any root handler can use %(trace_id)s/%(span_id)s, for third-party loggers too."""
        pipe, _ = pipeline
        stream = io.StringIO()
        handler = logging.StreamHandler(stream)
        handler.setFormatter(logging.Formatter("%(name)s %(trace_id)s %(span_id)s"))
        handler.addFilter(TraceContextFilter())
        logging.getLogger("thirdparty.lib").addHandler(handler)
        with pipe.tracer.start_as_current_span("op"):
            logging.getLogger("thirdparty.lib").warning("x")
            expected = f"thirdparty.lib {current_trace_id()} {current_span_id()}"
        logging.getLogger("thirdparty.lib").warning("outside")
        logging.getLogger("thirdparty.lib").removeHandler(handler)
        assert stream.getvalue().splitlines() == [expected, "thirdparty.lib  "]

    def test_explicit_extra_trace_id_wins(self, pipeline: Piped) -> None:
        """extra={'trace_id': ...} neither raises nor is overwritten."""
        pipe, _ = pipeline
        record = _record(trace_id="mine", span_id="also-mine")
        with pipe.tracer.start_as_current_span("op"):
            TraceContextFilter().filter(record)
            log.warning("x", extra={"trace_id": "mine"})
        assert record.trace_id == "mine" and record.span_id == "also-mine"  # type: ignore[attr-defined]

    def test_helpers_outside_span(self) -> None:
        """current_trace_id()/current_span_id() are None outside a span."""
        assert trace.get_current_span().get_span_context().is_valid is False
        assert current_trace_id() is None and current_span_id() is None


class TestConfigureOptions:
    def test_console_mode_prints_short_trace_id(self, capsys: pytest.CaptureFixture[str]) -> None:
        """exporter="console" prints a record under the span that was current, same trace id."""
        telemetry = flowtel.configure_telemetry(
            service_name=SERVICE, exporter="console", force=True
        )
        with flowtel.span("checkout"):
            log.info("order placed", extra={"order_id": 42})
            short = (current_trace_id() or "")[:8]
        telemetry.shutdown()
        lines = capsys.readouterr().out.splitlines()
        assert any(
            line.startswith(f"{short} ")
            and line.endswith("│ " + line.split("│ ", 1)[-1])
            and line.endswith("order placed order_id=42")
            for line in lines
        )
        assert any(line.startswith(f"{short} ") and "checkout" in line for line in lines)

    def test_json_logs_option(self, capsys: pytest.CaptureFixture[str]) -> None:
        """json_logs=True prints JSON lines carrying service.name and the span's ids."""
        telemetry = flowtel.configure_telemetry(
            service_name=SERVICE, exporter="none", json_logs=True, force=True
        )
        with flowtel.span("checkout"):
            log.warning("slow", extra={"elapsed_s": 2.5})
            ids = current_trace_id(), current_span_id()
        telemetry.shutdown()
        (line,) = capsys.readouterr().out.splitlines()
        doc = json.loads(line)
        assert (doc["trace_id"], doc["span_id"]) == ids
        assert doc["service.name"] == SERVICE and doc["elapsed_s"] == 2.5

    def test_logging_false_installs_nothing(self) -> None:
        """logging=False leaves the root logger alone."""
        telemetry = flowtel.configure_telemetry(exporter="none", logging=False, force=True)
        assert _otel_handlers() == []
        telemetry.shutdown()

    def test_reconfigure_keeps_one_handler_and_old_shutdown_is_harmless(self) -> None:
        """A forced reconfigure replaces the handler; the old handle's shutdown leaves it."""
        first = flowtel.configure_telemetry(exporter="none", force=True)
        second = flowtel.configure_telemetry(exporter="none", force=True)
        first.shutdown()
        assert len(_otel_handlers()) == 1
        second.shutdown()
        assert _otel_handlers() == []


class TestBounds:
    def test_huge_message_is_cut(self, pipeline: Piped) -> None:
        """A message above 16 KiB is exported cut, with a marker, in OTLP and JSON alike."""
        _, capture = pipeline
        log.warning("x" * 100_000)
        body = str(capture.logs[0].log_record.body)
        assert len(body) < 17_000 and body.endswith("...[truncated]")
        record = _record("y" * 100_000)
        assert len(json.loads(JsonFormatter().format(record))["message"]) < 17_000


class TestQueueHandler:
    def test_span_context_survives_a_queue_listener_thread(self, pipeline: Piped) -> None:
        """Behind QueueHandler/QueueListener the record keeps the span it was logged in."""
        import logging.handlers
        import queue

        pipe, capture = pipeline
        uninstrument_logging()  # only the queued path below exports
        records: queue.Queue[logging.LogRecord] = queue.Queue()
        front = logging.handlers.QueueHandler(records)
        front.addFilter(TraceContextFilter())
        listener = logging.handlers.QueueListener(records, OTelLogHandler(pipe.logger_provider))
        queued = logging.getLogger("app.queued")
        queued.addHandler(front)
        queued.propagate = False
        queued.setLevel(logging.INFO)
        listener.start()
        try:
            with flowtel.span("op") as span:
                queued.info("via queue")
        finally:
            listener.stop()
            queued.removeHandler(front)
            queued.propagate = True
        (got,) = capture.logs
        assert got.log_record.span_id == span.get_span_context().span_id
