"""Starting sentry-sdk for the bridge: error events only, wired to :class:`SentryBridge`.

Why apart: the set-up is one long call with its reasons (what is switched off, and why); the
bridge only needs the module and the client it returns. sentry-sdk is imported here, when a DSN
is configured, never by ``import flowtel``.
"""

from __future__ import annotations

import logging
from types import ModuleType
from typing import TYPE_CHECKING, Any, cast

from flowtel.sentry import _sdk as sdkx

if TYPE_CHECKING:
    from flowtel.sentry._bridge import SentryBridge

__all__ = ["init_sdk"]


def init_sdk(
    bridge: SentryBridge,
    dsn: str,
    *,
    sample_rate: float,
    release: str | None,
    send_default_pii: bool,
    transport_queue_size: int,
) -> tuple[ModuleType, Any]:
    """Call ``sentry_sdk.init`` for ``bridge``; return (the module, its client).

    Raises:
        ImportError: sentry-sdk is not installed.
    """
    import sentry_sdk
    from sentry_sdk.integrations.excepthook import ExcepthookIntegration
    from sentry_sdk.integrations.logging import LoggingIntegration, ignore_logger
    from sentry_sdk.integrations.threading import ThreadingIntegration

    ignore_logger(type(bridge).__module__)  # the bridge's own warnings are not app errors
    # The exporters' own failure logs ("failed to export ...") are telemetry plumbing, not
    # application errors: never turn them into Sentry events (and never on export threads).
    for plumbing in ("opentelemetry", "grpc", "urllib3", "flowtel.export"):
        ignore_logger(plumbing)
    sentry_sdk.init(
        dsn=dsn,
        environment=bridge._environment,
        release=release,
        sample_rate=sample_rate,
        **sdkx.pii_options(send_default_pii),
        traces_sample_rate=None,
        default_integrations=False,
        auto_enabling_integrations=False,
        integrations=[
            LoggingIntegration(level=logging.INFO, event_level=logging.ERROR),
            ExcepthookIntegration(),
            ThreadingIntegration(),
        ],
        include_local_variables=False,
        max_request_body_size="medium" if send_default_pii else "never",
        before_send=cast(Any, bridge.before_send),
        transport=sdkx.counting_transport(sentry_sdk, bridge._ledger),
        transport_queue_size=transport_queue_size,
        shutdown_timeout=bridge._shutdown_timeout_s,
    )
    return sentry_sdk, sentry_sdk.get_client()
