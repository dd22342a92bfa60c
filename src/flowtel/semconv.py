"""Every span name, span event, metric and attribute flowtel emits, defined once.

Why one module: dashboards, alert rules, docs and tests all cross-check against these
definitions, so a renamed metric breaks a test instead of silently emptying a panel.
``docs/telemetry-reference.md`` is generated from :func:`reference_markdown` and a test keeps
it in sync. Prometheus names follow the OTel→Prometheus rules (see :func:`prometheus_name`).
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any, ClassVar, Final

__all__ = [
    "ATTRIBUTES",
    "DURATION_BUCKETS_S",
    "EVENTS",
    "METRICS",
    "SPANS",
    "AttributeDef",
    "EventDef",
    "Instrument",
    "MetricDef",
    "SpanDef",
    "metric",
    "prometheus_label",
    "prometheus_name",
    "reference_markdown",
]


class Instrument(StrEnum):
    """The OpenTelemetry instrument kind behind a metric."""

    COUNTER = "counter"
    UP_DOWN_COUNTER = "updowncounter"
    HISTOGRAM = "histogram"
    GAUGE = "gauge"  # observable gauge


class _Definition(tuple[Any, ...]):
    """A definition record: a plain tuple with named fields.

    Why not ``NamedTuple``: ``namedtuple`` compiles code for every class it makes, which for
    these four cost about half a millisecond of every process start; a tuple subclass costs
    nothing to define and behaves the same (indexing, equality, hashing, ``_fields``).
    """

    __slots__ = ()
    _fields: ClassVar[tuple[str, ...]] = ()

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{name}={value!r}" for name, value in zip(self._fields, self, strict=True)
        )
        return f"{type(self).__name__}({shown})"

    def _asdict(self) -> dict[str, Any]:
        return dict(zip(self._fields, self, strict=True))


class AttributeDef(_Definition):
    """An attribute key and what it means."""

    __slots__ = ()
    _fields = ("key", "type", "description")

    def __new__(cls, key: str, type: str, description: str) -> AttributeDef:
        return tuple.__new__(cls, (key, type, description))

    @property
    def key(self) -> str:
        return str(self[0])

    @property
    def type(self) -> str:
        return str(self[1])

    @property
    def description(self) -> str:
        return str(self[2])


class MetricDef(_Definition):
    """A metric: name, instrument, UCUM unit and the attribute keys it carries."""

    __slots__ = ()
    _fields = ("name", "instrument", "unit", "description", "attributes")

    def __new__(
        cls,
        name: str,
        instrument: Instrument,
        unit: str,
        description: str,
        attributes: tuple[str, ...] = (),
    ) -> MetricDef:
        return tuple.__new__(cls, (name, instrument, unit, description, attributes))

    @property
    def name(self) -> str:
        return str(self[0])

    @property
    def instrument(self) -> Instrument:
        kind: Instrument = self[1]
        return kind

    @property
    def unit(self) -> str:
        return str(self[2])

    @property
    def description(self) -> str:
        return str(self[3])

    @property
    def attributes(self) -> tuple[str, ...]:
        keys: tuple[str, ...] = self[4]
        return keys


class _Named(_Definition):
    """A name, what it means and the attribute keys that go with it."""

    __slots__ = ()
    _fields = ("name", "description", "attributes")

    @property
    def name(self) -> str:
        return str(self[0])

    @property
    def description(self) -> str:
        return str(self[1])

    @property
    def attributes(self) -> tuple[str, ...]:
        keys: tuple[str, ...] = self[2]
        return keys


class SpanDef(_Named):
    """A span name flowtel creates itself, and the attributes it sets on it."""

    __slots__ = ()

    def __new__(cls, name: str, description: str, attributes: tuple[str, ...] = ()) -> SpanDef:
        return tuple.__new__(cls, (name, description, attributes))


class EventDef(_Named):
    """A span event name and its attributes."""

    __slots__ = ()

    def __new__(cls, name: str, description: str, attributes: tuple[str, ...] = ()) -> EventDef:
        return tuple.__new__(cls, (name, description, attributes))


# --------------------------------------------------------------------------------------------
# Attribute keys. OpenTelemetry semantic-convention keys are re-used where they exist.
# --------------------------------------------------------------------------------------------
SERVICE_NAME: Final = "service.name"
SERVICE_VERSION: Final = "service.version"
SERVICE_INSTANCE_ID: Final = "service.instance.id"
DEPLOYMENT_ENVIRONMENT: Final = "deployment.environment.name"

COMPONENT: Final = "flowtel.component"
OPERATION: Final = "flowtel.operation"
CODE_FUNCTION: Final = "code.function.name"
CODE_FILEPATH: Final = "code.file.path"
CODE_LINENO: Final = "code.line.number"
ARG_PREFIX: Final = "flowtel.arg."
RETURN_VALUE: Final = "flowtel.return"
ERROR_TYPE: Final = "error.type"
OTEL_STATUS_CODE: Final = "otel.status_code"
EXCEPTION_TYPE: Final = "exception.type"
EXCEPTION_MESSAGE: Final = "exception.message"
EXCEPTION_STACKTRACE: Final = "exception.stacktrace"
EXCEPTION_ESCAPED: Final = "exception.escaped"
ERROR_HANDLED: Final = "flowtel.error.handled"
ERROR_RATE_WINDOW: Final = "flowtel.window"
ERROR_DIMENSIONS: Final = "<error_dimensions>"  # stands for each attribute named there
HTTP_RESPONSE_STATUS_CODE: Final = "http.response.status_code"  # read: 5xx fails an entry
HTTP_STATUS_CODE_OLD: Final = "http.status_code"  # the same, before HTTP semconv 1.23
SAMPLING_DECISION: Final = "flowtel.sampling.decision"
SAMPLING_REASON: Final = "flowtel.sampling.reason"

STARTUP_CHECK: Final = "flowtel.startup.check"
STARTUP_PRIORITY: Final = "flowtel.startup.priority"
STARTUP_ATTEMPT: Final = "flowtel.startup.attempt"
STARTUP_OUTCOME: Final = "flowtel.startup.outcome"
STARTUP_TIMEOUT: Final = "flowtel.startup.timeout_s"
STARTUP_CRITICAL: Final = "flowtel.startup.critical"
STARTUP_DELAY: Final = "flowtel.startup.delay_s"
LIFECYCLE_STATE: Final = "flowtel.lifecycle.state"
LIFECYCLE_FROM: Final = "flowtel.lifecycle.from"
LIFECYCLE_TO: Final = "flowtel.lifecycle.to"
SHUTDOWN_HOOK: Final = "flowtel.shutdown.hook"
SHUTDOWN_OUTCOME: Final = "flowtel.shutdown.outcome"
SHUTDOWN_REASON: Final = "flowtel.shutdown.reason"
SHUTDOWN_DRAIN: Final = "flowtel.shutdown.drain_s"
PROBE: Final = "flowtel.probe"
PROBE_OUTCOME: Final = "flowtel.probe.outcome"
READINESS_CHECK: Final = "flowtel.readiness.check"
LIFECYCLE_WORK: Final = "flowtel.lifecycle.work"
LIFECYCLE_WORK_NAME: Final = "flowtel.lifecycle.work.name"
LIFECYCLE_ABANDONED: Final = "flowtel.lifecycle.abandoned"

SENTRY_OUTCOME: Final = "flowtel.sentry.outcome"
SENTRY_REASON: Final = "flowtel.sentry.reason"
SENTRY_EVENT_ID: Final = "flowtel.sentry.event_id"

RESILIENCE_STRATEGY: Final = "flowtel.resilience.strategy"
RESILIENCE_EVENT: Final = "flowtel.resilience.event"
RESILIENCE_OUTCOME: Final = "flowtel.resilience.outcome"
RESILIENCE_NAME: Final = "flowtel.resilience.name"
RESILIENCE_ATTEMPT: Final = "flowtel.resilience.attempt"
RESILIENCE_DELAY: Final = "flowtel.resilience.delay_s"
RESILIENCE_WAIT: Final = "flowtel.resilience.wait_s"
RESILIENCE_TIMEOUT: Final = "flowtel.resilience.timeout_s"
CIRCUIT_STATE: Final = "flowtel.circuit.state"

TELEMETRY_SIGNAL: Final = "flowtel.signal"
TELEMETRY_REASON: Final = "flowtel.reason"

LOG_LOGGER: Final = "logger.name"
LOG_THREAD: Final = "thread.name"
CODE_STACKTRACE: Final = "code.stacktrace"

ATTRIBUTES: Final[tuple[AttributeDef, ...]] = (
    AttributeDef(SERVICE_NAME, "string", "Resource: the logical service name."),
    AttributeDef(SERVICE_VERSION, "string", "Resource: the service version."),
    AttributeDef(SERVICE_INSTANCE_ID, "string", "Resource: unique per process (auto uuid4)."),
    AttributeDef(DEPLOYMENT_ENVIRONMENT, "string", "Resource: e.g. production, staging, dev."),
    AttributeDef(COMPONENT, "string", "Logical component (team-defined), from @traced."),
    AttributeDef(OPERATION, "string", "Logical operation within the component, from @traced."),
    AttributeDef(CODE_FUNCTION, "string", "Qualified name of the decorated function."),
    AttributeDef(CODE_FILEPATH, "string", "Source file of the decorated function."),
    AttributeDef(CODE_LINENO, "int", "First line of the decorated function."),
    AttributeDef(ARG_PREFIX + "<name>", "any", "A recorded argument (record_args), scrubbed."),
    AttributeDef(RETURN_VALUE, "any", "The recorded return value (record_return), scrubbed."),
    AttributeDef(ERROR_TYPE, "string", "Fully qualified exception type of a failed operation."),
    AttributeDef(OTEL_STATUS_CODE, "string", "OK, ERROR or UNSET (metric attribute)."),
    AttributeDef(ERROR_HANDLED, "bool", "On exception events: true when the error was handled."),
    AttributeDef(ERROR_RATE_WINDOW, "string", "Window of an error-rate gauge, e.g. 5m."),
    AttributeDef(
        ERROR_DIMENSIONS,
        "string",
        "Each span attribute named in error_dimensions (e.g. tenant, http.route), on the "
        "calls, duration and errors metrics: scrubbed, at most 100 values per attribute "
        "(more: _other), absent when the span lacks it; handled errors carry none.",
    ),
    AttributeDef(SAMPLING_DECISION, "string", "What tail sampling did with a trace."),
    AttributeDef(
        SAMPLING_REASON,
        "string",
        "Why: head, error, slow, keep_trace, overflow, timeout, shutdown.",
    ),
    AttributeDef(STARTUP_CHECK, "string", "Name of a startup check."),
    AttributeDef(STARTUP_PRIORITY, "int", "Priority of a startup check (lower runs first)."),
    AttributeDef(STARTUP_ATTEMPT, "int", "1-based attempt number of a startup check."),
    AttributeDef(STARTUP_OUTCOME, "string", "success, failed, timeout, skipped."),
    AttributeDef(STARTUP_TIMEOUT, "double", "Per-attempt timeout of a startup check, seconds."),
    AttributeDef(STARTUP_CRITICAL, "bool", "Whether a failed check fails startup."),
    AttributeDef(STARTUP_DELAY, "double", "Backoff before the next attempt, seconds."),
    AttributeDef(
        LIFECYCLE_STATE, "string", "STARTING, READY, DEGRADED, DRAINING, STOPPED, FAILED."
    ),
    AttributeDef(LIFECYCLE_FROM, "string", "State before a lifecycle transition."),
    AttributeDef(LIFECYCLE_TO, "string", "State after a lifecycle transition."),
    AttributeDef(SHUTDOWN_HOOK, "string", "Name of a shutdown hook."),
    AttributeDef(SHUTDOWN_OUTCOME, "string", "success, failed, timeout."),
    AttributeDef(SHUTDOWN_REASON, "string", "What began shutdown: SIGTERM, SIGINT, exit."),
    AttributeDef(SHUTDOWN_DRAIN, "double", "Seconds drained before the server stopped."),
    AttributeDef(PROBE, "string", "alive, ready, startup, health."),
    AttributeDef(PROBE_OUTCOME, "string", "pass or fail."),
    AttributeDef(READINESS_CHECK, "string", "Name of a background readiness check."),
    AttributeDef(
        LIFECYCLE_WORK, "string", "startup_check, readiness_check, shutdown_hook or flush."
    ),
    AttributeDef(LIFECYCLE_WORK_NAME, "string", "Name of the check or hook (flush: telemetry)."),
    AttributeDef(
        LIFECYCLE_ABANDONED, "bool", "True when the work still ran after its timeout and was left."
    ),
    AttributeDef(SENTRY_OUTCOME, "string", "sent (Sentry answered 2xx) or dropped."),
    AttributeDef(
        SENTRY_REASON,
        "string",
        "Why an event was dropped (e.g. duplicate, rate_limited, send_error, shutdown_timeout).",
    ),
    AttributeDef(SENTRY_EVENT_ID, "string", "On exception events: the Sentry event id."),
    AttributeDef(RESILIENCE_STRATEGY, "string", "retry, timeout, rate_limit, circuit_breaker."),
    AttributeDef(
        RESILIENCE_EVENT,
        "string",
        "retry, timeout, circuit_opened, circuit_half_opened, "
        "circuit_closed, rejected, rate_limited.",
    ),
    AttributeDef(
        RESILIENCE_OUTCOME,
        "string",
        "success, success_after_retry, failed, failed_after_retry, not_permitted.",
    ),
    AttributeDef(RESILIENCE_NAME, "string", "Name of a breaker or limiter instance."),
    AttributeDef(RESILIENCE_ATTEMPT, "int", "1-based attempt number."),
    AttributeDef(RESILIENCE_DELAY, "double", "Delay before the next attempt, seconds."),
    AttributeDef(RESILIENCE_WAIT, "double", "Time waited on a rate limiter, seconds."),
    AttributeDef(RESILIENCE_TIMEOUT, "double", "Timeout that elapsed, seconds."),
    AttributeDef(CIRCUIT_STATE, "string", "closed, open, half_open."),
    AttributeDef(TELEMETRY_SIGNAL, "string", "traces, metrics or logs."),
    AttributeDef(
        TELEMETRY_REASON,
        "string",
        "Why telemetry was lost: queue_full, export_failed, export_timeout, shutdown_timeout, "
        "after_shutdown (console output also: write_failed).",
    ),
)

# --------------------------------------------------------------------------------------------
# Spans and span events.
# --------------------------------------------------------------------------------------------
SPAN_STARTUP: Final = "flowtel.startup"
SPAN_STARTUP_CHECK: Final = "flowtel.startup.check"
SPAN_SHUTDOWN: Final = "flowtel.shutdown"
SPAN_SHUTDOWN_HOOK: Final = "flowtel.shutdown.hook"
SPAN_RECORD_ERROR: Final = "flowtel.record_error"
SPAN_DOCTOR: Final = "flowtel.doctor"
SCOPE_ERRORS: Final = "flowtel.errors"  # instrumentation scope of flowtel.errors' spans and metrics
OVERFLOW_KEY: Final = "_other"  # component/operation value once error_max_keys pairs are tracked
REDACTED: Final = "[REDACTED]"  # what replaces a secret in every output (never part of it)

SPANS: Final[tuple[SpanDef, ...]] = (
    SpanDef(
        SPAN_STARTUP,
        "Root span of service startup; one child per check attempt.",
        (LIFECYCLE_STATE,),
    ),
    SpanDef(
        SPAN_STARTUP_CHECK,
        "One attempt of a startup check.",
        (
            STARTUP_CHECK,
            STARTUP_PRIORITY,
            STARTUP_ATTEMPT,
            STARTUP_OUTCOME,
            STARTUP_TIMEOUT,
            STARTUP_CRITICAL,
        ),
    ),
    SpanDef(
        SPAN_SHUTDOWN,
        "Graceful shutdown: drain, hooks, telemetry flush.",
        (LIFECYCLE_STATE, SHUTDOWN_REASON, SHUTDOWN_DRAIN, SHUTDOWN_OUTCOME),
    ),
    SpanDef(SPAN_SHUTDOWN_HOOK, "One shutdown hook.", (SHUTDOWN_HOOK, SHUTDOWN_OUTCOME)),
    SpanDef(
        SPAN_RECORD_ERROR,
        "Short span for record_error() when no span is current.",
        (COMPONENT, OPERATION, ERROR_TYPE),
    ),
    SpanDef(SPAN_DOCTOR, "The test span `flowtel doctor` sends to the OTLP endpoint."),
)

EVENT_EXCEPTION: Final = "exception"
EVENT_STARTUP_RETRY: Final = "flowtel.startup.retry"
EVENT_LIFECYCLE_TRANSITION: Final = "flowtel.lifecycle.transition"
EVENT_RESILIENCE_RETRY: Final = "flowtel.resilience.retry"
EVENT_RESILIENCE_REJECTED: Final = "flowtel.resilience.rejected"
EVENT_RESILIENCE_TIMEOUT: Final = "flowtel.resilience.timeout"
EVENT_RESILIENCE_RATE_LIMITED: Final = "flowtel.resilience.rate_limited"

EVENTS: Final[tuple[EventDef, ...]] = (
    EventDef(
        EVENT_EXCEPTION,
        "OTel exception event; flowtel adds handled for record_error().",
        (EXCEPTION_TYPE, EXCEPTION_MESSAGE, EXCEPTION_STACKTRACE, ERROR_HANDLED),
    ),
    EventDef(
        EVENT_STARTUP_RETRY,
        "A startup check attempt failed and will be retried.",
        (STARTUP_CHECK, STARTUP_ATTEMPT, ERROR_TYPE, STARTUP_DELAY),
    ),
    EventDef(
        EVENT_LIFECYCLE_TRANSITION,
        "The lifecycle state machine changed state.",
        (LIFECYCLE_FROM, LIFECYCLE_TO),
    ),
    EventDef(
        EVENT_RESILIENCE_RETRY,
        "A call failed and is retried after a delay.",
        (RESILIENCE_ATTEMPT, ERROR_TYPE, RESILIENCE_DELAY, OPERATION),
    ),
    EventDef(
        EVENT_RESILIENCE_REJECTED,
        "A breaker (open, or half-open without permits) or a rate limiter (wait over "
        "max_wait_s) rejected a call.",
        (RESILIENCE_NAME, RESILIENCE_STRATEGY, CIRCUIT_STATE, RESILIENCE_WAIT),
    ),
    EventDef(
        EVENT_RESILIENCE_TIMEOUT, "A call exceeded its timeout.", (RESILIENCE_TIMEOUT, OPERATION)
    ),
    EventDef(
        EVENT_RESILIENCE_RATE_LIMITED,
        "A caller waited on a rate limiter over a threshold.",
        (RESILIENCE_NAME, RESILIENCE_WAIT),
    ),
)

# --------------------------------------------------------------------------------------------
# Metrics. Units are UCUM; durations are seconds.
# --------------------------------------------------------------------------------------------
METRIC_OPERATION_CALLS: Final = "flowtel.operation.calls"
METRIC_OPERATION_DURATION: Final = "flowtel.operation.duration"
METRIC_ERRORS: Final = "flowtel.errors"
METRIC_ERROR_RATE: Final = "flowtel.error_ratio"
METRIC_ENTRY_CALLS: Final = "flowtel.entry.calls"
METRIC_SAMPLING_TRACES: Final = "flowtel.sampling.traces"
METRIC_STARTUP_DURATION: Final = "flowtel.startup.duration"
METRIC_STARTUP_CHECK_DURATION: Final = "flowtel.startup.check.duration"
METRIC_LIFECYCLE_STATE: Final = "flowtel.lifecycle.state"
METRIC_PROBE_CHECKS: Final = "flowtel.probe.checks"
METRIC_READINESS_CHECK_STATUS: Final = "flowtel.readiness.check.status"
METRIC_SHUTDOWN_DURATION: Final = "flowtel.shutdown.duration"
METRIC_LIFECYCLE_TIMEOUTS: Final = "flowtel.lifecycle.timeouts"
METRIC_SENTRY_EVENTS: Final = "flowtel.sentry.events"
METRIC_RESILIENCE_EVENTS: Final = "flowtel.resilience.events"
METRIC_RESILIENCE_CALLS: Final = "flowtel.resilience.calls"
METRIC_RESILIENCE_ATTEMPT_DURATION: Final = "flowtel.resilience.attempt.duration"
METRIC_RATE_LIMITER_WAIT: Final = "flowtel.rate_limiter.wait.duration"
METRIC_RATE_LIMITER_PERMITS: Final = "flowtel.rate_limiter.available_permits"
METRIC_RATE_LIMITER_RATE: Final = "flowtel.rate_limiter.rate"
METRIC_CIRCUIT_STATE: Final = "flowtel.circuit_breaker.state"
METRIC_CIRCUIT_FAILURE_RATE: Final = "flowtel.circuit_breaker.failure_ratio"
METRIC_CIRCUIT_SLOW_CALL_RATE: Final = "flowtel.circuit_breaker.slow_call_ratio"
METRIC_TELEMETRY_DROPPED: Final = "flowtel.telemetry.dropped"
METRIC_TELEMETRY_EXPORT_FAILURES: Final = "flowtel.telemetry.export.failures"
METRIC_CONSOLE_DROPPED: Final = "flowtel.console.dropped"
METRIC_DOCTOR: Final = "flowtel.doctor.checks"

_OP: Final = (COMPONENT, OPERATION)

METRICS: Final[tuple[MetricDef, ...]] = (
    MetricDef(
        METRIC_OPERATION_CALLS,
        Instrument.COUNTER,
        "{call}",
        "Finished operations (spans), counted before sampling.",
        (*_OP, OTEL_STATUS_CODE, ERROR_TYPE, ERROR_DIMENSIONS),
    ),
    MetricDef(
        METRIC_OPERATION_DURATION,
        Instrument.HISTOGRAM,
        "s",
        "Operation duration, counted before sampling.",
        (*_OP, OTEL_STATUS_CODE, ERROR_TYPE, ERROR_DIMENSIONS),
    ),
    MetricDef(
        METRIC_ERRORS,
        Instrument.COUNTER,
        "{error}",
        "Errors: failed operations and record_error() calls.",
        (*_OP, ERROR_TYPE, ERROR_HANDLED, ERROR_DIMENSIONS),
    ),
    MetricDef(
        METRIC_ERROR_RATE,
        Instrument.GAUGE,
        "1",
        "Current entry-level error rate (failed requests, jobs, messages) per component over a "
        "sliding window.",
        (COMPONENT, ERROR_RATE_WINDOW),
    ),
    MetricDef(
        METRIC_ENTRY_CALLS,
        Instrument.COUNTER,
        "{call}",
        "Finished entries: local root spans and SERVER/CONSUMER spans, counted once whatever "
        "the depth of a failure, before sampling; HTTP 4xx is not a server error.",
        (*_OP, OTEL_STATUS_CODE, ERROR_TYPE, ERROR_DIMENSIONS),
    ),
    MetricDef(
        METRIC_SAMPLING_TRACES,
        Instrument.COUNTER,
        "{trace}",
        "Local traces decided by tail sampling (sampling=...), by decision and reason.",
        (SAMPLING_DECISION, SAMPLING_REASON),
    ),
    MetricDef(
        METRIC_STARTUP_DURATION,
        Instrument.HISTOGRAM,
        "s",
        "Total startup duration (the critical path).",
        (LIFECYCLE_STATE,),
    ),
    MetricDef(
        METRIC_STARTUP_CHECK_DURATION,
        Instrument.HISTOGRAM,
        "s",
        "Duration of each startup check (all attempts).",
        (STARTUP_CHECK, STARTUP_OUTCOME),
    ),
    MetricDef(
        METRIC_LIFECYCLE_STATE,
        Instrument.GAUGE,
        "{state}",
        "1 for the current lifecycle state, 0 for every other state.",
        (LIFECYCLE_STATE,),
    ),
    MetricDef(
        METRIC_PROBE_CHECKS,
        Instrument.COUNTER,
        "{check}",
        "Probe requests answered.",
        (PROBE, PROBE_OUTCOME),
    ),
    MetricDef(
        METRIC_READINESS_CHECK_STATUS,
        Instrument.GAUGE,
        "{status}",
        "1 when a background readiness check passes, else 0.",
        (READINESS_CHECK,),
    ),
    MetricDef(
        METRIC_SHUTDOWN_DURATION,
        Instrument.HISTOGRAM,
        "s",
        "Graceful shutdown duration (drain, hooks, flush).",
        (SHUTDOWN_OUTCOME,),
    ),
    MetricDef(
        METRIC_LIFECYCLE_TIMEOUTS,
        Instrument.COUNTER,
        "{call}",
        "Checks, hooks and flushes that overran their timeout (outcome timeout); "
        "abandoned=true when they were still running and were left behind.",
        (LIFECYCLE_WORK, LIFECYCLE_WORK_NAME, LIFECYCLE_ABANDONED),
    ),
    MetricDef(
        METRIC_SENTRY_EVENTS,
        Instrument.COUNTER,
        "{event}",
        "Sentry events sent (Sentry answered 2xx) or dropped, each counted once.",
        (SENTRY_OUTCOME, SENTRY_REASON),
    ),
    MetricDef(
        METRIC_RESILIENCE_EVENTS,
        Instrument.COUNTER,
        "{event}",
        "Resilience events: retries, timeouts, breaker transitions, rejections, waits.",
        (RESILIENCE_EVENT, RESILIENCE_STRATEGY, OPERATION, ERROR_TYPE),
    ),
    MetricDef(
        METRIC_RESILIENCE_CALLS,
        Instrument.COUNTER,
        "{call}",
        "Calls through a resilience strategy, by outcome.",
        (RESILIENCE_OUTCOME, RESILIENCE_STRATEGY, OPERATION),
    ),
    MetricDef(
        METRIC_RESILIENCE_ATTEMPT_DURATION,
        Instrument.HISTOGRAM,
        "s",
        "Duration of each attempt made by retry.",
        (OPERATION, ERROR_TYPE),
    ),
    MetricDef(
        METRIC_RATE_LIMITER_WAIT,
        Instrument.HISTOGRAM,
        "s",
        "Time callers waited on a rate limiter.",
        (RESILIENCE_NAME,),
    ),
    MetricDef(
        METRIC_RATE_LIMITER_PERMITS,
        Instrument.GAUGE,
        "{permit}",
        "Permits currently available in a rate limiter.",
        (RESILIENCE_NAME,),
    ),
    MetricDef(
        METRIC_RATE_LIMITER_RATE,
        Instrument.GAUGE,
        "{permit}/s",
        "Current permit rate of a rate limiter (moves under adaptive AIMD).",
        (RESILIENCE_NAME,),
    ),
    MetricDef(
        METRIC_CIRCUIT_STATE,
        Instrument.GAUGE,
        "{state}",
        "1 for a breaker's current state, 0 for its other states.",
        (RESILIENCE_NAME, CIRCUIT_STATE),
    ),
    MetricDef(
        METRIC_CIRCUIT_FAILURE_RATE,
        Instrument.GAUGE,
        "1",
        "Failure rate in a breaker's window.",
        (RESILIENCE_NAME,),
    ),
    MetricDef(
        METRIC_CIRCUIT_SLOW_CALL_RATE,
        Instrument.GAUGE,
        "1",
        "Slow-call rate in a breaker's window.",
        (RESILIENCE_NAME,),
    ),
    MetricDef(
        METRIC_TELEMETRY_DROPPED,
        Instrument.COUNTER,
        "{item}",
        "Spans, metric points or log records lost before export.",
        (TELEMETRY_SIGNAL, TELEMETRY_REASON),
    ),
    MetricDef(
        METRIC_TELEMETRY_EXPORT_FAILURES,
        Instrument.COUNTER,
        "{export}",
        "Export batches that failed.",
        (TELEMETRY_SIGNAL, TELEMETRY_REASON),
    ),
    MetricDef(
        METRIC_CONSOLE_DROPPED,
        Instrument.COUNTER,
        "{line}",
        "Console output dropped because the terminal or pipe did not keep up, or at shutdown.",
        (TELEMETRY_REASON,),
    ),
    MetricDef(
        METRIC_DOCTOR,
        Instrument.COUNTER,
        "{check}",
        "The test point `flowtel doctor` sends to the OTLP endpoint (always 1).",
    ),
)

_METRICS_BY_NAME: Final = {m.name: m for m in METRICS}


def metric(name: str) -> MetricDef:
    """The definition of metric ``name``: every instrument takes its unit and description here.

    Raises:
        KeyError: flowtel emits no metric called ``name``.
    """
    return _METRICS_BY_NAME[name]


DURATION_BUCKETS_S: Final[tuple[float, ...]] = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
    30.0,
    60.0,
)
"""Bucket bounds for every ``s`` histogram, passed as ``explicit_bucket_boundaries_advisory``.

Why: the SDK default bounds (0, 5, 10, 25, ... 10000) are meant for milliseconds; with seconds
every sub-5 s operation lands in one bucket and ``histogram_quantile`` on the dashboards is useless.
"""

# UCUM unit -> Prometheus unit word, as the OTel Prometheus exporter and Prometheus' own OTLP
# receiver map them. ``1`` maps to nothing on the scrape path but to ``_ratio`` on gauges on the
# OTLP path, so flowtel never gives a gauge the unit ``1`` unless its name already ends in
# ``ratio`` (both paths then agree; tests/stack checks this for every metric).
_UNIT_WORDS: Final = {
    "d": "days",
    "h": "hours",
    "min": "minutes",
    "s": "seconds",
    "ms": "milliseconds",
    "us": "microseconds",
    "ns": "nanoseconds",
    "By": "bytes",
    "KiBy": "kibibytes",
    "MiBy": "mebibytes",
    "GiBy": "gibibytes",
    "KBy": "kilobytes",
    "MBy": "megabytes",
    "GBy": "gigabytes",
    "1": "",
    "%": "percent",
}
_PER_UNIT_WORDS: Final = {
    "s": "second",
    "m": "minute",
    "h": "hour",
    "d": "day",
    "w": "week",
    "mo": "month",
    "y": "year",
}
# Used by the docs, tests and tools, not by the telemetry path: compiled on first use.
_INVALID_NAME_CHARS: Final = r"[^a-zA-Z0-9:]+"
_INVALID_LABEL_CHARS: Final = r"[^a-zA-Z0-9]+"


def _prometheus_unit(unit: str) -> str:
    unit = re.sub(r"\{[^}]*\}", "", unit)
    if unit in _UNIT_WORDS:
        return _UNIT_WORDS[unit]
    top, sep, bottom = unit.partition("/")
    if sep and bottom:
        top_word = _UNIT_WORDS.get(top, re.sub(_INVALID_NAME_CHARS, "_", top))
        per = f"per_{_PER_UNIT_WORDS.get(bottom, re.sub(_INVALID_NAME_CHARS, '_', bottom))}"
        return f"{top_word}_{per}" if top_word else per
    return re.sub(_INVALID_NAME_CHARS, "_", unit).strip("_")


def prometheus_name(metric: MetricDef) -> str:
    """The series name Prometheus stores for ``metric``.

    Why it matters: dashboards and alert rules are written against these names, and a wrong
    suffix silently empties a panel. The rules are those of opentelemetry-exporter-prometheus
    (scrape path) and of Prometheus' OTLP receiver with its default
    ``UnderscoreEscapingWithSuffixes`` strategy (collector path), which agree for every flowtel
    metric: runs of characters outside ``[a-zA-Z0-9:]`` become ``_``, the unit word is appended
    (``s`` → ``_seconds``; ``{call}``-style annotations and ``1`` add nothing) unless the name
    already ends with it, and counters end in ``_total``. Histograms add
    ``_bucket``/``_sum``/``_count`` to the returned base name.
    """
    name = re.sub(_INVALID_NAME_CHARS, "_", metric.name)
    if metric.instrument is Instrument.COUNTER:
        name = name.removesuffix("_total")
    unit = _prometheus_unit(metric.unit)
    if unit and not name.endswith("_" + unit):
        name = f"{name}_{unit}"
    if metric.instrument is Instrument.COUNTER:
        name += "_total"
    return name


def prometheus_label(attribute_key: str) -> str:
    """The Prometheus label of a metric attribute: ``flowtel.component`` → ``flowtel_component``."""
    return re.sub(_INVALID_LABEL_CHARS, "_", attribute_key)


def reference_markdown() -> str:
    """Render the telemetry reference that ``docs/telemetry-reference.md`` must contain."""
    lines = ["## Spans", "", "| name | description | attributes |", "| --- | --- | --- |"]
    lines += [f"| `{s.name}` | {s.description} | {_codes(s.attributes)} |" for s in SPANS]
    lines += [
        "",
        "## Span events",
        "",
        "| name | description | attributes |",
        "| --- | --- | --- |",
    ]
    lines += [f"| `{e.name}` | {e.description} | {_codes(e.attributes)} |" for e in EVENTS]
    lines += [
        "",
        "## Metrics",
        "",
        "| name | instrument | unit | Prometheus name | description | attributes |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    lines += [
        f"| `{m.name}` | {m.instrument.value} | `{m.unit}` | `{prometheus_name(m)}` | "
        f"{m.description} | {_codes(m.attributes)} |"
        for m in METRICS
    ]
    lines += ["", "## Attributes", "", "| key | type | description |", "| --- | --- | --- |"]
    lines += [f"| `{a.key}` | {a.type} | {a.description} |" for a in ATTRIBUTES]
    return "\n".join(lines) + "\n"


def _codes(keys: tuple[str, ...]) -> str:
    return ", ".join(f"`{k}`" for k in keys) or "—"


if __name__ == "__main__":  # pragma: no cover - doc generator
    print(reference_markdown(), end="")
