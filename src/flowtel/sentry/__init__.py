"""Sentry: one event per exception, built from the span that recorded it and linked to its trace.

:class:`SentryBridge` is a SpanProcessor; ``configure_telemetry(sentry_dsn=...)`` installs it.
sentry-sdk is imported only when a DSN is configured.
"""

from __future__ import annotations

from flowtel.sentry._bridge import SentryBridge, SentryDropReason, SentryOutcome, SentryTag

__all__ = ["SentryBridge", "SentryDropReason", "SentryOutcome", "SentryTag"]
