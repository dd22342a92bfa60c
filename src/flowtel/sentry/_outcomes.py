"""What becomes of each event the bridge sees: outcomes, drop reasons and the tags it sets."""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class SentryOutcome(StrEnum):
    """What happened to a Sentry event (``flowtel.sentry.outcome``)."""

    SENT = "sent"  # Sentry answered 2xx to the envelope carrying it
    DROPPED = "dropped"


class SentryDropReason(StrEnum):
    """Why a Sentry event was not sent (``flowtel.sentry.reason``)."""

    DUPLICATE = "duplicate"  # the same exception occurrence was already reported
    SAMPLE = "sample"  # sentry_sample_rate
    RATE_LIMITED = "rate_limited"  # Sentry answered 429, or its rate limit is still running
    QUEUE_FULL = "queue_full"  # a queue was full (Sentry slow or down)
    NETWORK_ERROR = "network_error"  # no HTTP answer: refused, reset, timed out
    SEND_ERROR = "send_error"  # Sentry answered an error status (4xx/5xx other than 429)
    SHUTDOWN_TIMEOUT = "shutdown_timeout"  # still queued or in flight when the budget ended
    BRIDGE_ERROR = "bridge_error"  # the bridge itself failed (logged once)
    OTHER = "other"


SDK_REASONS: Final = {
    "sample_rate": SentryDropReason.SAMPLE,
    "ratelimit_backoff": SentryDropReason.RATE_LIMITED,
    "queue_overflow": SentryDropReason.QUEUE_FULL,
    "network_error": SentryDropReason.NETWORK_ERROR,
    "send_error": SentryDropReason.SEND_ERROR,
}


class SentryTag(StrEnum):
    """Tag keys the bridge sets on every Sentry event it builds."""

    SERVICE = "service"
    ENVIRONMENT = "environment"
    COMPONENT = "component"
    OPERATION = "operation"
    TRACE_ID = "trace_id"  # the OTel trace id: paste into Tempo, or use a link template
    TRACE_SAMPLED = "trace_sampled"  # "false": the trace was sampled out, so no trace id is sent
