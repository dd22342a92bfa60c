"""``configure_telemetry(sentry_dsn=...)``: build the bridge, start sentry-sdk, add it."""

from __future__ import annotations

import importlib.util
import logging
import urllib.parse
from typing import TYPE_CHECKING

from flowtel.exceptions import ConfigurationError
from flowtel.sentry._bridge import SentryBridge

_log = logging.getLogger("flowtel.sentry")

if TYPE_CHECKING:
    from flowtel._core._telemetry import Telemetry


def masked_dsn(dsn: str) -> str:
    """``dsn`` with its key replaced by ``***``: safe to print."""
    try:
        url = urllib.parse.urlsplit(dsn)
        host = url.hostname or "?"
        port = f":{url.port}" if url.port else ""
    except ValueError:
        return "<dsn>"
    return f"{url.scheme}://***@{host}{port}{url.path}"


def check_dsn(dsn: str) -> None:
    """Raise :class:`ConfigurationError` (key masked) if sentry-sdk would reject ``dsn``.

    Without this, sentry-sdk raises inside ``init`` and the application runs on without Sentry
    after a long traceback. Does nothing when sentry-sdk is not installed (``_install`` warns).
    """
    if importlib.util.find_spec("sentry_sdk") is None:
        return
    from sentry_sdk.utils import BadDsn, Dsn

    try:
        Dsn(dsn)
    except (BadDsn, ValueError) as exc:
        reason = str(exc).replace(dsn, masked_dsn(dsn))
        raise ConfigurationError(
            "sentry_dsn",
            masked_dsn(dsn),
            "a DSN sentry-sdk accepts, like 'https://<public_key>@<host>/<project_id>' with a "
            f"numeric project id, as copied from Sentry's project settings ({reason})",
        ) from None


def _install(telemetry: Telemetry) -> None:
    """Wire the Sentry bridge into ``telemetry`` (called by ``configure_telemetry``).

    Called only when ``settings.sentry_dsn`` is set. Without sentry-sdk installed this logs one
    warning and returns: the app runs on without Sentry. Release is ``service_version``; the
    Sentry environment is ``sentry_environment`` (which defaults to ``environment``).
    """
    settings = telemetry.settings
    if not settings.sentry_dsn:
        return
    if importlib.util.find_spec("sentry_sdk") is None:
        _log.warning(
            "flowtel: sentry_dsn is set but sentry-sdk is not installed; Sentry reporting is "
            "off. Install it with: pip install 'flowtel[sentry]'"
        )
        return
    bridge = SentryBridge(
        environment=settings.sentry_environment,
        send_default_pii=settings.sentry_send_default_pii,
        meter_provider=telemetry.meter_provider,
        shutdown_timeout_s=settings.shutdown_timeout_s,
        trace_url_template=settings.sentry_trace_url_template,
    )
    try:
        bridge.init_sentry(
            settings.sentry_dsn,
            sample_rate=settings.sentry_sample_rate,
            release=settings.service_version,
            send_default_pii=settings.sentry_send_default_pii,
        )
    except Exception:  # e.g. an sentry-sdk too old or broken: the app must still start
        _log.warning(
            "flowtel: sentry-sdk failed to initialise; Sentry reporting is off", exc_info=True
        )
        return
    add_processor = getattr(telemetry.tracer_provider, "add_span_processor", None)
    if add_processor is not None:  # a no-op provider (OTEL_SDK_DISABLED) has none
        add_processor(bridge)
        # The bridge's budget starts with Telemetry.shutdown(), not when the processors
        # before it are done: its losses are counted before the meter provider's last export.
        telemetry.add_shutdown_callback(bridge.begin_shutdown)
