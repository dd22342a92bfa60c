"""What ``configure_telemetry()`` was given (one typed field per keyword, ``UNSET`` if not given),
and the defaults the settings and the classes share."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from flowtel._core._parse import env
from flowtel._core._record import Record

__all__ = [
    "DEFAULT_BATCH_EXPORT_TIMEOUT_S",
    "DEFAULT_BATCH_MAX_EXPORT_BATCH_SIZE",
    "DEFAULT_BATCH_MAX_QUEUE_SIZE",
    "DEFAULT_BATCH_SCHEDULE_DELAY_S",
    "DEFAULT_DRAIN_S",
    "DEFAULT_METRIC_EXPORT_INTERVAL_S",
    "DEFAULT_SHUTDOWN_TIMEOUT_S",
    "MAX_DURATION_S",
    "UNSET",
    "Options",
    "pick",
]

DEFAULT_DRAIN_S: Final = 5.0
"""Seconds a service keeps serving after SIGTERM (``drain_s``); the lifecycle's default too."""
DEFAULT_SHUTDOWN_TIMEOUT_S: Final = 3.0
"""Budget of the final flush and shutdown (``shutdown_timeout_s``)."""
DEFAULT_BATCH_SCHEDULE_DELAY_S: Final = 1.0
DEFAULT_BATCH_EXPORT_TIMEOUT_S: Final = 10.0
DEFAULT_BATCH_MAX_QUEUE_SIZE: Final = 2048
DEFAULT_BATCH_MAX_EXPORT_BATCH_SIZE: Final = 512
DEFAULT_METRIC_EXPORT_INTERVAL_S: Final = 30.0
MAX_DURATION_S: Final = 3600.0
"""Upper bound of every duration option (timeouts, delays, drain, export interval): larger
values are unit mistakes, and overflow the waits they end up in (``Thread.join``)."""


class _Unset:
    __slots__ = ()

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final = _Unset()
"""Sentinel: the keyword was not given (``None`` can be a meaningful value, e.g. disable)."""


class Options(Record):
    """The keywords ``configure_telemetry()`` was given, as it was given them (``UNSET``: not
    given). One typed field per keyword, so an option can be followed from the call to
    :func:`resolve` and on to the :class:`Settings` field it becomes."""

    service_name: str | _Unset = UNSET
    service_version: str | _Unset | None = UNSET
    environment: str | _Unset | None = UNSET
    resource_attributes: Mapping[str, str] | _Unset | None = UNSET
    exporter: str | _Unset = UNSET
    otlp_endpoint: str | _Unset | None = UNSET
    otlp_protocol: str | _Unset = UNSET
    otlp_headers: Mapping[str, str] | str | _Unset | None = UNSET
    sample_rate: float | _Unset | None = UNSET
    sampling: Any = UNSET
    count_unsampled: bool | _Unset = UNSET
    max_span_attributes: int | _Unset = UNSET
    max_span_events: int | _Unset = UNSET
    max_attribute_length: int | _Unset | None = UNSET
    batch_max_queue_size: int | _Unset = UNSET
    batch_schedule_delay_s: float | _Unset = UNSET
    batch_max_export_batch_size: int | _Unset = UNSET
    batch_export_timeout_s: float | _Unset = UNSET
    metric_export_interval_s: float | _Unset = UNSET
    prometheus_port: int | _Unset | None = UNSET
    prometheus_host: str | _Unset = UNSET
    propagators: Sequence[str] | _Unset = UNSET
    scrub: bool | _Unset = UNSET
    scrub_patterns: Sequence[str] | _Unset = UNSET
    scrub_keys: Sequence[str] | _Unset = UNSET
    error_window_minutes: int | _Unset | None = UNSET
    error_max_keys: int | _Unset = UNSET
    error_rate_windows_minutes: Sequence[float] | _Unset | None = UNSET
    error_duration_histogram: bool | _Unset = UNSET
    error_dimensions: Sequence[str] | str | _Unset | None = UNSET
    sentry_dsn: str | _Unset | None = UNSET
    sentry_environment: str | _Unset | None = UNSET
    sentry_sample_rate: float | _Unset = UNSET
    sentry_send_default_pii: bool | _Unset = UNSET
    sentry_trace_url_template: str | _Unset | None = UNSET
    logging: bool | _Unset = UNSET
    log_level: str | int | _Unset = UNSET
    json_logs: bool | _Unset = UNSET
    console_colors: bool | _Unset | None = UNSET
    shutdown_timeout_s: float | _Unset = UNSET
    drain_s: float | _Unset = UNSET
    span_processors: Sequence[Any] | _Unset = UNSET
    span_exporters: Sequence[Any] | _Unset = UNSET
    metric_readers: Sequence[Any] | _Unset = UNSET
    log_exporters: Sequence[Any] | _Unset = UNSET
    console_verbosity: str | _Unset = UNSET
    instrument: Sequence[str] | str | _Unset | None = UNSET
    library_log_level: str | int | _Unset = UNSET


def pick(kw: object, env_name: str | None, default: object) -> tuple[str, object]:
    """Return (option name for messages, raw value) by precedence kw > env > default."""
    if not isinstance(kw, _Unset):
        return "", kw
    if env_name is not None:
        env_value = env(env_name)
        if env_value is not None:
            return env_name, env_value
    return "", default
