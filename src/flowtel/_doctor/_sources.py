"""The effective configuration, scrubbed, with where each value came from.

"argument" is a ``flowtel doctor`` command-line option, "env NAME" an environment variable,
"default" flowtel's default (or a value derived from another option).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Final, NamedTuple

from flowtel._core._settings import Settings

__all__ = ["ConfigRow", "config_rows"]

_ENV: Final[dict[str, tuple[str, ...]]] = {
    "service_name": ("OTEL_SERVICE_NAME",),
    "environment": ("FLOWTEL_ENVIRONMENT",),
    "exporter": ("FLOWTEL_EXPORTER",),
    "otlp_endpoint": (
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    ),
    "otlp_protocol": ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"),
    "otlp_headers": ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS"),
    "sample_rate": ("OTEL_TRACES_SAMPLER_ARG", "OTEL_TRACES_SAMPLER"),
    "prometheus_port": ("FLOWTEL_PROMETHEUS_PORT",),
    "scrub": ("FLOWTEL_SCRUB",),
    "error_window_minutes": ("FLOWTEL_ERROR_WINDOW_MINUTES",),
    "sentry_dsn": ("SENTRY_DSN",),
    "logging": ("FLOWTEL_LOGGING",),
    "log_level": ("FLOWTEL_LOG_LEVEL",),
    "library_log_level": ("FLOWTEL_LIBRARY_LOG_LEVEL",),
    "json_logs": ("FLOWTEL_JSON_LOGS",),
    "console_verbosity": ("FLOWTEL_CONSOLE_VERBOSITY",),
    "instrument": ("FLOWTEL_INSTRUMENT",),
    "shutdown_timeout_s": ("FLOWTEL_SHUTDOWN_TIMEOUT_S",),
}


class ConfigRow(NamedTuple):
    """One line of the configuration table."""

    option: str
    value: str
    source: str


def _masked_dsn(dsn: str | None) -> str:
    if not dsn:
        return "(off)"
    from flowtel.sentry._install import masked_dsn

    return masked_dsn(dsn)


def _values(settings: Settings) -> dict[str, str]:
    traces = settings.otlp["traces"]
    headers = ", ".join(f"{k}=***" for k in traces.headers) or "(none)"
    return {
        "service_name": settings.service_name,
        "environment": settings.environment or "(none)",
        "exporter": settings.exporter,
        "otlp_endpoint": traces.endpoint or "(none)",
        "otlp_protocol": traces.protocol,
        "otlp_headers": headers,
        "sample_rate": f"{settings.sample_rate:g}",
        "prometheus_port": "(off)"
        if settings.prometheus_port is None
        else str(settings.prometheus_port),
        "scrub": str(settings.scrub).lower(),
        "error_window_minutes": str(settings.error_window_minutes),
        "sentry_dsn": _masked_dsn(settings.sentry_dsn),
        "logging": str(settings.logging).lower(),
        "log_level": logging.getLevelName(settings.log_level),
        "library_log_level": logging.getLevelName(settings.library_log_level),
        "json_logs": str(settings.json_logs).lower(),
        "console_verbosity": settings.console_verbosity,
        "instrument": ",".join(settings.instrument) or "(none)",
        "shutdown_timeout_s": f"{settings.shutdown_timeout_s:g}",
    }


def config_rows(settings: Settings, arguments: Mapping[str, object]) -> list[ConfigRow]:
    """One row per option: scrubbed value and source (argument > environment > default)."""
    rows = []
    for option, value in _values(settings).items():
        if option in arguments:
            source = "argument"
        else:
            names = [n for n in _ENV.get(option, ()) if os.environ.get(n)]
            source = f"env {names[0]}" if names else "default"
        rows.append(ConfigRow(option, value, source))
    return rows
