"""Settings: every ``configure_telemetry()`` option, resolved and validated once.

Precedence is keyword argument > environment variable > default. Validation happens here, at
configuration time, so a typo fails the process start with a message naming the option, the bad
value and what is accepted, instead of silently dropping telemetry later.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from flowtel._core import _options as defaults
from flowtel._core._options import Options, _Unset
from flowtel._core._options import pick as pick_value
from flowtel._core._otlp import OtlpSignal, otlp_endpoint_configured, resolve_otlp
from flowtel._core._parse import (
    CONSOLE_VERBOSITIES,
    EXPORTERS,
    PROPAGATORS,
    SIGNALS,
    env,
    mask_url,
    parse_bool,
    parse_choice,
    parse_dsn,
    parse_float,
    parse_int,
    parse_level,
    parse_minutes_list,
    parse_patterns,
    parse_url_template,
)
from flowtel._core._record import Record
from flowtel._core._resource import head_sampling, resolve_resource
from flowtel.exceptions import ConfigurationError

if TYPE_CHECKING:
    from flowtel._core._sampling import Sampling


class Settings(Record):
    """The resolved configuration. One field per ``configure_telemetry()`` keyword."""

    service_name: str
    service_version: str | None
    environment: str | None
    resource_attributes: Mapping[str, str]
    exporter: str  # resolved: "otlp" | "console" | "none" (never "auto")
    otlp: Mapping[str, OtlpSignal]
    sample_rate: float
    parent_based: bool
    count_unsampled: bool
    max_span_attributes: int
    max_span_events: int
    max_attribute_length: int | None
    batch_max_queue_size: int
    batch_schedule_delay_s: float
    batch_max_export_batch_size: int
    batch_export_timeout_s: float
    metric_export_interval_s: float
    prometheus_port: int | None
    prometheus_host: str
    propagators: tuple[str, ...]
    scrub: bool
    scrub_patterns: tuple[str, ...]
    error_window_minutes: int | None
    error_max_keys: int
    error_rate_windows_minutes: tuple[float, ...] | None
    error_duration_histogram: bool
    sentry_dsn: str | None
    sentry_environment: str | None
    sentry_sample_rate: float
    sentry_send_default_pii: bool
    sentry_trace_url_template: str | None
    logging: bool
    log_level: int
    json_logs: bool
    console_colors: bool | None
    shutdown_timeout_s: float
    drain_s: float
    sdk_disabled: bool
    span_processors: tuple[Any, ...] = ()
    span_exporters: tuple[Any, ...] = ()
    metric_readers: tuple[Any, ...] = ()
    log_exporters: tuple[Any, ...] = ()
    console_verbosity: str = "normal"
    instrument: tuple[str, ...] = ()
    library_log_level: int = 30  # logging.WARNING
    console_fallback: bool = False  # exporter="auto" chose the console: no endpoint is set
    sampling: Sampling | None = None  # tail sampling (flowtel.tracing._tail); None: head only
    scrub_keys: tuple[str, ...] = ()  # more secret keys, matched by words
    error_dimensions: tuple[str, ...] = ()  # span attributes that split the error statistics

    def __repr__(self) -> str:
        # Settings end up in logs and tracebacks: the DSN's key is a credential.
        dsn = self.sentry_dsn
        return Record.__repr__(self if dsn is None else self.replace(sentry_dsn=mask_url(dsn)))


def resolve(options: Options) -> Settings:
    """Build :class:`Settings` from ``configure_telemetry()`` keywords (``UNSET``: not given)."""

    def pick(value: object, key: str, env_name: str | None, default: object) -> tuple[str, object]:
        src, picked = pick_value(value, env_name, default)
        return (src or key), picked

    sdk_disabled = parse_bool("OTEL_SDK_DISABLED", env("OTEL_SDK_DISABLED") or "false")

    # Resource ---------------------------------------------------------------------------------
    resource, service_name, service_version, environment = resolve_resource(options)

    # Exporter ---------------------------------------------------------------------------------
    opt, exporter = pick(options.exporter, "exporter", "FLOWTEL_EXPORTER", "auto")
    exporter = parse_choice(opt, exporter, EXPORTERS)
    console_fallback = False
    if exporter == "auto":
        explicit_endpoint = not isinstance(options.otlp_endpoint, _Unset) and options.otlp_endpoint
        exporter = "otlp" if explicit_endpoint or otlp_endpoint_configured() else "console"
        console_fallback = exporter == "console"
    otlp = {
        s: resolve_otlp(s, options.otlp_endpoint, options.otlp_protocol, options.otlp_headers)
        for s in SIGNALS
    }

    # Sampling, limits, batching -----------------------------------------------------------------
    sample_rate, parent_based = head_sampling(options.sample_rate)
    opt, count_unsampled = pick(
        options.count_unsampled, "count_unsampled", "FLOWTEL_COUNT_UNSAMPLED", True
    )
    count_unsampled = parse_bool(opt, count_unsampled)
    opt, tail = pick(options.sampling, "sampling", "FLOWTEL_SAMPLING", None)
    sampling: Sampling | None = None
    if tail is not None:  # the tail-sampling record loads only when it is used
        from flowtel._core._sampling import parse_sampling

        given = None if isinstance(options.sample_rate, _Unset) else sample_rate
        sampling = parse_sampling(opt, tail, given)
    if sampling is not None:
        sample_rate = sampling.head_rate if sampling.head_rate is not None else sample_rate
        sampling = sampling._replace(head_rate=sample_rate)
        if not count_unsampled:  # the rules need every span recorded to see its outcome
            raise ConfigurationError("count_unsampled", False, "true when sampling= is set")

    def int_opt(
        value: object, key: str, env_name: str | None, default: int, minimum: int = 1
    ) -> int:
        o, v = pick(value, key, env_name, default)
        return parse_int(o, v, minimum=minimum)

    def seconds_opt(value: object, key: str, env_ms: str | None, default_s: float) -> float:
        """Keywords are seconds; the OTEL_* variables are milliseconds by the spec."""
        if not isinstance(value, _Unset) and value is not None:
            return parse_float(
                key, value, minimum=0, maximum=defaults.MAX_DURATION_S, min_exclusive=True
            )
        if env_ms is not None and env(env_ms) is not None:
            limit_ms = defaults.MAX_DURATION_S * 1000
            return parse_float(env_ms, env(env_ms), minimum=0, maximum=limit_ms,
                               min_exclusive=True) / 1000.0  # fmt: skip
        return default_s

    max_span_attributes = int_opt(
        options.max_span_attributes, "max_span_attributes", "OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", 128
    )
    max_span_events = int_opt(
        options.max_span_events, "max_span_events", "OTEL_SPAN_EVENT_COUNT_LIMIT", 128
    )
    opt, max_len = pick(
        options.max_attribute_length,
        "max_attribute_length",
        "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT",
        16384,
    )
    max_attribute_length = None if max_len is None else parse_int(opt, max_len, minimum=1)

    queue = int_opt(
        options.batch_max_queue_size,
        "batch_max_queue_size",
        "OTEL_BSP_MAX_QUEUE_SIZE",
        defaults.DEFAULT_BATCH_MAX_QUEUE_SIZE,
    )
    batch = int_opt(
        options.batch_max_export_batch_size,
        "batch_max_export_batch_size",
        "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
        defaults.DEFAULT_BATCH_MAX_EXPORT_BATCH_SIZE,
    )
    if batch > queue:
        raise ConfigurationError(
            "batch_max_export_batch_size",
            batch,
            f"a whole number <= batch_max_queue_size ({queue})",
        )
    delay_s = seconds_opt(
        options.batch_schedule_delay_s,
        "batch_schedule_delay_s",
        "OTEL_BSP_SCHEDULE_DELAY",
        defaults.DEFAULT_BATCH_SCHEDULE_DELAY_S,
    )
    export_timeout_s = seconds_opt(
        options.batch_export_timeout_s,
        "batch_export_timeout_s",
        "OTEL_BSP_EXPORT_TIMEOUT",
        defaults.DEFAULT_BATCH_EXPORT_TIMEOUT_S,
    )
    metric_interval_s = seconds_opt(
        options.metric_export_interval_s,
        "metric_export_interval_s",
        "OTEL_METRIC_EXPORT_INTERVAL",
        defaults.DEFAULT_METRIC_EXPORT_INTERVAL_S,
    )

    opt, prom_port = pick(
        options.prometheus_port, "prometheus_port", "FLOWTEL_PROMETHEUS_PORT", None
    )
    prometheus_port = (
        None if prom_port is None else parse_int(opt, prom_port, minimum=0, maximum=65535)
    )
    opt, prom_host = pick(
        options.prometheus_host, "prometheus_host", "FLOWTEL_PROMETHEUS_HOST", "0.0.0.0"
    )
    if not isinstance(prom_host, str) or not prom_host:
        raise ConfigurationError(opt, prom_host, "a host name or IP address to bind")

    opt, props = pick(
        options.propagators, "propagators", "OTEL_PROPAGATORS", ("tracecontext", "baggage")
    )
    if isinstance(props, str):
        props = [p.strip() for p in props.split(",") if p.strip()]
    if not isinstance(props, Sequence):
        raise ConfigurationError(opt, props, "a sequence of " + ", ".join(PROPAGATORS))
    propagators = tuple(parse_choice(opt, p, PROPAGATORS) for p in props)

    # Scrubbing, errors, Sentry, logging -------------------------------------------------------
    opt, scrub = pick(options.scrub, "scrub", "FLOWTEL_SCRUB", True)
    scrub = parse_bool(opt, scrub)
    opt, patterns = pick(options.scrub_patterns, "scrub_patterns", "FLOWTEL_SCRUB_PATTERNS", ())
    scrub_patterns = parse_patterns(opt, patterns)
    opt, keys = pick(options.scrub_keys, "scrub_keys", "FLOWTEL_SCRUB_KEYS", ())
    scrub_keys = parse_patterns(opt, keys)

    opt, window = pick(
        options.error_window_minutes, "error_window_minutes", "FLOWTEL_ERROR_WINDOW_MINUTES", 60
    )
    error_window = (
        None if window in (None, 0, "0") else parse_int(opt, window, minimum=1, maximum=10080)
    )
    error_max_keys = int_opt(
        options.error_max_keys, "error_max_keys", "FLOWTEL_ERROR_MAX_KEYS", 1000
    )
    opt, gauge_windows = pick(
        options.error_rate_windows_minutes,
        "error_rate_windows_minutes",
        "FLOWTEL_ERROR_RATE_WINDOWS_MINUTES",
        None,
    )
    error_rate_windows = None
    if gauge_windows is not None:
        limit = float(error_window) if error_window else None
        error_rate_windows = parse_minutes_list(opt, gauge_windows, limit)
    opt, histogram = pick(
        options.error_duration_histogram,
        "error_duration_histogram",
        "FLOWTEL_ERROR_DURATION_HISTOGRAM",
        True,
    )
    error_duration_histogram = parse_bool(opt, histogram)

    opt, dsn = pick(options.sentry_dsn, "sentry_dsn", "SENTRY_DSN", None)
    sentry_dsn = None if dsn is None else parse_dsn(opt, dsn)
    opt, sentry_env = pick(
        options.sentry_environment, "sentry_environment", "SENTRY_ENVIRONMENT", environment
    )
    if sentry_env is not None and not isinstance(sentry_env, str):
        raise ConfigurationError(opt, sentry_env, "a string or None")
    opt, sentry_rate = pick(
        options.sentry_sample_rate, "sentry_sample_rate", "FLOWTEL_SENTRY_SAMPLE_RATE", 1.0
    )
    sentry_sample_rate = parse_float(opt, sentry_rate, minimum=0.0, maximum=1.0)
    opt, pii = pick(
        options.sentry_send_default_pii,
        "sentry_send_default_pii",
        "FLOWTEL_SENTRY_SEND_DEFAULT_PII",
        False,
    )
    sentry_pii = parse_bool(opt, pii)
    opt, template = pick(
        options.sentry_trace_url_template,
        "sentry_trace_url_template",
        "FLOWTEL_SENTRY_TRACE_URL_TEMPLATE",
        None,
    )
    sentry_trace_url_template = None if template is None else parse_url_template(opt, template)

    opt, log_on = pick(options.logging, "logging", "FLOWTEL_LOGGING", True)
    log_enabled = parse_bool(opt, log_on)
    opt, level = pick(options.log_level, "log_level", "FLOWTEL_LOG_LEVEL", "INFO")
    log_level = parse_level(opt, level)
    opt, json_logs = pick(options.json_logs, "json_logs", "FLOWTEL_JSON_LOGS", False)
    json_logs = parse_bool(opt, json_logs)
    opt, colors = pick(options.console_colors, "console_colors", "FLOWTEL_CONSOLE_COLORS", None)
    console_colors = None if colors is None else parse_bool(opt, colors)
    opt, verbosity = pick(
        options.console_verbosity, "console_verbosity", "FLOWTEL_CONSOLE_VERBOSITY", "normal"
    )
    console_verbosity = parse_choice(opt, verbosity, CONSOLE_VERBOSITIES)
    opt, lib_level = pick(
        options.library_log_level, "library_log_level", "FLOWTEL_LIBRARY_LOG_LEVEL", "WARNING"
    )
    library_log_level = parse_level(opt, lib_level)
    opt, instrument = pick(options.instrument, "instrument", "FLOWTEL_INSTRUMENT", None)
    instrumentations: tuple[str, ...] = ()
    if instrument is not None:  # the table of instrumentations loads only when one is asked for
        from flowtel._core._features import parse_instrument

        instrumentations = parse_instrument(opt, instrument)
    opt, dimensions = pick(
        options.error_dimensions, "error_dimensions", "FLOWTEL_ERROR_DIMENSIONS", None
    )
    error_dimensions: tuple[str, ...] = ()
    if dimensions is not None:
        from flowtel._core._errors_settings import parse_error_dimensions

        error_dimensions = parse_error_dimensions(opt, dimensions)

    opt, shutdown_s = pick(
        options.shutdown_timeout_s,
        "shutdown_timeout_s",
        "FLOWTEL_SHUTDOWN_TIMEOUT_S",
        defaults.DEFAULT_SHUTDOWN_TIMEOUT_S,
    )
    shutdown_timeout_s = parse_float(
        opt, shutdown_s, minimum=0, maximum=defaults.MAX_DURATION_S, min_exclusive=True
    )
    opt, drain = pick(options.drain_s, "drain_s", "FLOWTEL_DRAIN_S", defaults.DEFAULT_DRAIN_S)
    drain_s = parse_float(opt, drain, minimum=0, maximum=defaults.MAX_DURATION_S)

    def seq_opt(value: object, key: str) -> tuple[Any, ...]:
        if isinstance(value, _Unset) or value is None:
            return ()
        if not isinstance(value, Sequence) or isinstance(value, str):
            raise ConfigurationError(key, value, "a list of OpenTelemetry SDK objects")
        from flowtel._core._elements import check_elements

        return check_elements(key, tuple(value))

    return Settings(
        service_name=service_name.strip(),
        service_version=service_version,
        environment=environment,
        resource_attributes=resource,
        exporter=exporter,
        otlp=otlp,
        sample_rate=sample_rate,
        parent_based=parent_based,
        count_unsampled=count_unsampled,
        max_span_attributes=max_span_attributes,
        max_span_events=max_span_events,
        max_attribute_length=max_attribute_length,
        batch_max_queue_size=queue,
        batch_schedule_delay_s=delay_s,
        batch_max_export_batch_size=batch,
        batch_export_timeout_s=export_timeout_s,
        metric_export_interval_s=metric_interval_s,
        prometheus_port=prometheus_port,
        prometheus_host=prom_host,
        propagators=propagators,
        scrub=scrub,
        scrub_patterns=scrub_patterns,
        scrub_keys=scrub_keys,
        error_window_minutes=error_window,
        error_max_keys=error_max_keys,
        error_rate_windows_minutes=error_rate_windows,
        error_duration_histogram=error_duration_histogram,
        sentry_dsn=sentry_dsn,
        sentry_environment=sentry_env,
        sentry_sample_rate=sentry_sample_rate,
        sentry_send_default_pii=sentry_pii,
        sentry_trace_url_template=sentry_trace_url_template,
        logging=log_enabled,
        log_level=log_level,
        json_logs=json_logs,
        console_colors=console_colors,
        shutdown_timeout_s=shutdown_timeout_s,
        drain_s=drain_s,
        sdk_disabled=sdk_disabled,
        span_processors=seq_opt(options.span_processors, "span_processors"),
        span_exporters=seq_opt(options.span_exporters, "span_exporters"),
        metric_readers=seq_opt(options.metric_readers, "metric_readers"),
        log_exporters=seq_opt(options.log_exporters, "log_exporters"),
        sampling=sampling,
        console_verbosity=console_verbosity,
        instrument=instrumentations,
        library_log_level=library_log_level,
        console_fallback=console_fallback,
        error_dimensions=error_dimensions,
    )
