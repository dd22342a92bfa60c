"""One startup check's attempts: each bounded and traced, retried with backoff and jitter."""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import trace
from opentelemetry.metrics import Histogram
from opentelemetry.trace import Span, Status, StatusCode

from flowtel import semconv
from flowtel._core._scrub import current_scrubber
from flowtel._core._values import exception_attributes, qualified_type_name, safe_str
from flowtel.lifecycle._bounded import BoundedRunner, WorkAborted
from flowtel.lifecycle._outcomes import CheckOutcome
from flowtel.lifecycle._report import CheckResult, StartupCheck, scrub_details

__all__ = ["CheckAttempts"]

_log = logging.getLogger("flowtel.startup")


@dataclass(frozen=True, slots=True)
class _Attempt:
    """How one attempt ended; ``final`` means do not retry (the check raised a BaseException)."""

    outcome: CheckOutcome
    error: str | None = None
    error_type: str = ""
    final: bool = False
    ended_at: float | None = None
    details: Mapping[str, Any] = field(default_factory=dict)


class CheckAttempts:
    """Runs the attempts of one check at a time; shared by all checks of an orchestrator."""

    def __init__(
        self,
        tracer: trace.Tracer,
        hist: Histogram,
        runner: BoundedRunner,
        *,
        clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]],
        rng: random.Random,
        jitter: float,
    ) -> None:
        self._tracer = tracer
        self._hist = hist
        self._runner = runner
        self._clock = clock
        self._sleep = sleep
        self._rng = rng
        self._jitter = jitter

    async def run(self, check: StartupCheck, t0: float, ctx: Any) -> CheckResult:
        start = self._clock() - t0
        last = _Attempt(CheckOutcome.FAILED)
        attempt = 0
        for attempt in range(1, check.retries + 2):
            last = await self._attempt(check, attempt, ctx)
            outcome, error = last.outcome, last.error
            if outcome is CheckOutcome.SUCCESS or last.final or attempt > check.retries:
                break
            delay = self._backoff(check, attempt)
            trace.get_current_span(ctx).add_event(
                semconv.EVENT_STARTUP_RETRY,
                {
                    semconv.STARTUP_CHECK: check.name,
                    semconv.STARTUP_ATTEMPT: attempt,
                    semconv.ERROR_TYPE: last.error_type,
                    semconv.STARTUP_DELAY: delay,
                },
            )
            _log.warning("startup check %r attempt %d %s; retrying in %.2fs: %s",
                         check.name, attempt, outcome.value, delay, error)  # fmt: skip
            await self._sleep(delay)
        end = (self._clock() if last.ended_at is None else last.ended_at) - t0
        outcome = last.outcome
        self._hist.record(
            end - start, {semconv.STARTUP_CHECK: check.name, semconv.STARTUP_OUTCOME: outcome.value}
        )
        return CheckResult(
            check.name, check.priority, check.critical, check.depends_on, outcome, attempt,
            start, end, last.details, last.error,
        )  # fmt: skip

    async def _attempt(self, check: StartupCheck, attempt: int, ctx: Any) -> _Attempt:
        """One bounded attempt, traced."""
        attributes = _check_attributes(check, attempt)
        with self._tracer.start_as_current_span(
            semconv.SPAN_STARTUP_CHECK,
            context=ctx,
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            result = await self._runner.run(check.func, check.timeout_s, check.name)
            if result.timed_out:
                message = f"timed out after {check.timeout_s}s"
                if result.abandoned:
                    message += " (abandoned, still running)"
                exc: Exception = TimeoutError(message)
                _record_failure(span, CheckOutcome.TIMEOUT, exc, message)
                return _Attempt(CheckOutcome.TIMEOUT, message, qualified_type_name(TimeoutError))
            if result.error is not None:
                exc = result.error
                aborted = isinstance(exc, WorkAborted)
                cause = exc.original if isinstance(exc, WorkAborted) else exc
                message = current_scrubber().scrub_text(
                    f"{type(cause).__name__}: {safe_str(cause)}".rstrip(": ")
                )
                if aborted:
                    message += " (raised by the check; not retried)"
                _record_failure(span, CheckOutcome.FAILED, cause, message)
                error_type = qualified_type_name(type(cause))
                return _Attempt(CheckOutcome.FAILED, message, error_type, aborted, result.ended_at)
            span.set_attribute(semconv.STARTUP_OUTCOME, CheckOutcome.SUCCESS.value)
            span.set_status(Status(StatusCode.OK))
            value = result.value
            details = scrub_details(value) if isinstance(value, Mapping) else {}
            return _Attempt(CheckOutcome.SUCCESS, ended_at=result.ended_at, details=details)

    def _backoff(self, check: StartupCheck, attempt: int) -> float:
        base = min(check.backoff_max_s, check.backoff_s * 2.0 ** min(attempt - 1, 60))
        return base * (1.0 - self._jitter * self._rng.random())

    def skipped(self, check: StartupCheck, bad: list[str], at: float, ctx: Any) -> CheckResult:
        error = f"dependency not satisfied: {', '.join(bad)}"
        attributes = _check_attributes(check, 0)
        attributes[semconv.STARTUP_OUTCOME] = CheckOutcome.SKIPPED.value
        tracer = self._tracer
        span = tracer.start_span(semconv.SPAN_STARTUP_CHECK, context=ctx, attributes=attributes)
        span.end()
        self._hist.record(
            0.0,
            {semconv.STARTUP_CHECK: check.name, semconv.STARTUP_OUTCOME: CheckOutcome.SKIPPED},
        )
        return CheckResult(
            check.name, check.priority, check.critical, check.depends_on, CheckOutcome.SKIPPED,
            0, at, at, {}, error,
        )  # fmt: skip


def _check_attributes(check: StartupCheck, attempt: int) -> dict[str, Any]:
    return {
        semconv.STARTUP_CHECK: check.name,
        semconv.STARTUP_PRIORITY: check.priority,
        semconv.STARTUP_ATTEMPT: attempt,
        semconv.STARTUP_TIMEOUT: check.timeout_s,
        semconv.STARTUP_CRITICAL: check.critical,
    }


def _record_failure(span: Span, outcome: CheckOutcome, exc: BaseException, message: str) -> None:
    event = exception_attributes(exc, current_scrubber(), escaped=True)  # it ended the attempt
    event[semconv.EXCEPTION_MESSAGE] = message  # the check's own wording ("timed out after 2s")
    span.set_attribute(semconv.STARTUP_OUTCOME, outcome.value)
    span.set_attribute(semconv.ERROR_TYPE, event[semconv.EXCEPTION_TYPE])
    span.add_event(semconv.EVENT_EXCEPTION, event)
    span.set_status(Status(StatusCode.ERROR, message))
