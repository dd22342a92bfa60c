"""Settings: every ``configure_telemetry()`` option, resolved and validated once.

Precedence is keyword argument > environment variable > default. Validation happens here, at
configuration time, so a typo fails the process start with a message naming the option, the bad
value and what is accepted, instead of silently dropping telemetry later.
"""

import logging
import os
import re
import urllib.parse
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Final, NamedTuple

from flowtel.exceptions import ConfigurationError

EXPORTERS: Final = ("auto", "otlp", "console", "none")
PROTOCOLS: Final = ("grpc", "http/protobuf")
SAMPLERS: Final = (
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
)
PROPAGATORS: Final = ("tracecontext", "baggage", "none")
COMPRESSIONS: Final = ("gzip", "deflate", "none")
SIGNALS: Final = ("traces", "metrics", "logs")
_BOOL_TRUE: Final = frozenset({"1", "true", "yes", "on"})
_BOOL_FALSE: Final = frozenset({"0", "false", "no", "off", ""})
_LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class OtlpSignal(NamedTuple):
    """Resolved OTLP settings for one signal (traces, metrics or logs)."""

    protocol: str
    endpoint: str | None  # None: let the exporter use its default / env
    headers: Mapping[str, str]
    timeout_s: float | None
    compression: str | None
    insecure: bool | None

    def __repr__(self) -> str:
        # Headers usually carry credentials (Authorization, api keys): never print their values.
        masked = {key: "<redacted>" for key in self.headers}
        return (
            f"OtlpSignal(protocol={self.protocol!r}, endpoint={self.endpoint!r}, "
            f"headers={masked!r}, timeout_s={self.timeout_s!r}, "
            f"compression={self.compression!r}, insecure={self.insecure!r})"
        )


class Settings(NamedTuple):
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


# ---------------------------------------------------------------------------------------------
# Parsing helpers: each names the option (the keyword, or the environment variable it came from).
# ---------------------------------------------------------------------------------------------


def _env(name: str) -> str | None:
    value = os.environ.get(name)
    return None if value is None or value.strip() == "" else value.strip()


def parse_bool(option: str, value: object) -> bool:
    """Accept bools and the usual env spellings (true/false, 1/0, yes/no, on/off)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _BOOL_TRUE | _BOOL_FALSE:
        return value.strip().lower() in _BOOL_TRUE
    raise ConfigurationError(option, value, "true or false (also 1/0, yes/no, on/off)")


def parse_float(
    option: str,
    value: object,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    min_exclusive: bool = False,
) -> float:
    """A number within bounds; strings from env vars are converted."""
    bounds = _bounds_text(minimum, maximum, min_exclusive)
    if isinstance(value, bool):
        raise ConfigurationError(option, value, f"a number {bounds}")
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ConfigurationError(option, value, f"a number {bounds}") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise ConfigurationError(option, value, f"a finite number {bounds}")
    too_low = minimum is not None and (number <= minimum if min_exclusive else number < minimum)
    if too_low or (maximum is not None and number > maximum):
        raise ConfigurationError(option, value, f"a number {bounds}")
    return number


def parse_int(option: str, value: object, *, minimum: int = 0, maximum: int | None = None) -> int:
    """A whole number within bounds; strings from env vars are converted."""
    bounds = _bounds_text(minimum, maximum, False)
    if isinstance(value, bool):
        raise ConfigurationError(option, value, f"a whole number {bounds}")
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            raise ConfigurationError(option, value, f"a whole number {bounds}") from None
    if not isinstance(value, int) or value < minimum or (maximum is not None and value > maximum):
        raise ConfigurationError(option, value, f"a whole number {bounds}")
    return value


def _bounds_text(minimum: float | None, maximum: float | None, min_exclusive: bool) -> str:
    if minimum is not None and maximum is not None:
        return f"between {minimum} and {maximum}"
    if minimum is not None:
        return f"{'>' if min_exclusive else '>='} {minimum}"
    return ""


def parse_choice(option: str, value: object, choices: Sequence[str]) -> str:
    """One of ``choices`` (case-insensitive)."""
    if isinstance(value, str) and value.strip().lower() in choices:
        return value.strip().lower()
    raise ConfigurationError(option, value, "one of " + ", ".join(repr(c) for c in choices))


def parse_headers(option: str, value: object) -> dict[str, str]:
    """OTLP headers: a mapping, or the W3C-baggage-like ``k1=v1,k2=v2`` env format."""
    accepted = "a mapping of str to str, or 'key1=value1,key2=value2' (values URL-encoded)"
    if isinstance(value, Mapping):
        if not all(isinstance(k, str) and k and isinstance(v, str) for k, v in value.items()):
            raise ConfigurationError(option, _redact_headers(value), accepted)
        return dict(value)
    if not isinstance(value, str):
        raise ConfigurationError(option, value, accepted)
    headers: dict[str, str] = {}
    for item in value.split(","):
        if not item.strip():
            continue
        key, sep, val = item.partition("=")
        key = urllib.parse.unquote(key.strip())
        if not sep or not key or not re.fullmatch(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+", key):
            raise ConfigurationError(option, _redact_header_text(value), accepted)
        headers[key.lower()] = urllib.parse.unquote(val.strip())
    return headers


def _redact_headers(value: Mapping[Any, Any]) -> dict[Any, str]:
    # Header values are usually credentials: never echo them in an error message.
    return {k: "***" for k in value}


def _redact_header_text(value: str) -> str:
    return ",".join(
        item.partition("=")[0] + ("=***" if "=" in item else "") for item in value.split(",")
    )


def parse_endpoint(option: str, value: object) -> str:
    """An http(s) URL with a host, e.g. ``http://collector:4317``."""
    accepted = "an http:// or https:// URL with a host, e.g. 'http://localhost:4317'"
    if not isinstance(value, str):
        raise ConfigurationError(option, value, accepted)
    try:
        url = urllib.parse.urlsplit(value.strip())
        port = url.port  # raises ValueError on a bad port
    except ValueError:
        raise ConfigurationError(option, value, accepted) from None
    if url.scheme not in ("http", "https") or not url.hostname:
        raise ConfigurationError(option, value, accepted)
    del port
    return value.strip()


def parse_resource_attributes(option: str, value: object) -> dict[str, str]:
    """``OTEL_RESOURCE_ATTRIBUTES`` format (``k=v,k2=v2``) or a mapping."""
    accepted = "a mapping of str to str, or 'key1=value1,key2=value2'"
    if isinstance(value, Mapping):
        if not all(isinstance(k, str) and k for k in value):
            raise ConfigurationError(option, value, accepted)
        return {k: str(v) for k, v in value.items()}
    if not isinstance(value, str):
        raise ConfigurationError(option, value, accepted)
    attrs: dict[str, str] = {}
    for item in value.split(","):
        if not item.strip():
            continue
        key, sep, val = item.partition("=")
        if not sep or not key.strip():
            raise ConfigurationError(option, value, accepted)
        attrs[urllib.parse.unquote(key.strip())] = urllib.parse.unquote(val.strip())
    return attrs


def parse_level(option: str, value: object) -> int:
    """A logging level name or number."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and value.strip().upper() in _LEVELS:
        level: int = getattr(logging, value.strip().upper())
        return level
    raise ConfigurationError(option, value, "one of " + ", ".join(_LEVELS) + " or a number >= 0")


def parse_patterns(option: str, value: object) -> tuple[str, ...]:
    """A sequence of regular expressions (a comma-separated string from env)."""
    if isinstance(value, str):
        value = [p for p in value.split(",") if p.strip()]
    if not isinstance(value, Sequence) or not all(isinstance(p, str) for p in value):
        raise ConfigurationError(option, value, "a sequence of regular-expression strings")
    for pattern in value:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ConfigurationError(
                option, pattern, f"a valid regular expression ({exc})"
            ) from None
    return tuple(value)


def parse_dsn(option: str, value: object) -> str:
    """A Sentry DSN: ``https://<public_key>@<host>/<project_id>``."""
    accepted = "a Sentry DSN like 'https://<public_key>@<host>/<project_id>'"
    if not isinstance(value, str):
        raise ConfigurationError(option, value, accepted)
    try:
        url = urllib.parse.urlsplit(value.strip())
        _ = url.port
    except ValueError:
        raise ConfigurationError(option, "<dsn>", accepted) from None
    project = url.path.rstrip("/").rsplit("/", 1)[-1]
    if url.scheme not in ("http", "https") or not url.username or not url.hostname or not project:
        # Never echo a DSN in full: its key is a credential.
        shown = f"{url.scheme}://***@{url.hostname}{url.path}" if url.hostname else "<dsn>"
        raise ConfigurationError(option, shown, accepted)
    return value.strip()


def parse_url_template(option: str, value: object) -> str:
    """A URL template with ``{trace_id}`` and optionally ``{span_id}``, nothing else."""
    accepted = "a URL containing {trace_id} (and optionally {span_id}), no other {fields}"
    if not isinstance(value, str) or "{trace_id}" not in value:
        raise ConfigurationError(option, value, accepted)
    try:
        value.format(trace_id="0", span_id="0")
    except (KeyError, IndexError, ValueError):
        raise ConfigurationError(option, value, accepted) from None
    return value


# ---------------------------------------------------------------------------------------------


class _Unset:
    __slots__ = ()

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final = _Unset()
"""Sentinel: the keyword was not given (``None`` can be a meaningful value, e.g. disable)."""


def _pick(kw: object, env_name: str | None, default: object) -> tuple[str, object]:
    """Return (option name for messages, raw value) by precedence kw > env > default."""
    if not isinstance(kw, _Unset):
        return "", kw
    if env_name is not None:
        env_value = _env(env_name)
        if env_value is not None:
            return env_name, env_value
    return "", default


def _resolve_otlp(
    signal: str, kw_endpoint: object, kw_protocol: object, kw_headers: object
) -> OtlpSignal:
    sig = signal.upper()

    src, protocol = _pick(
        kw_protocol,
        f"OTEL_EXPORTER_OTLP_{sig}_PROTOCOL"
        if _env(f"OTEL_EXPORTER_OTLP_{sig}_PROTOCOL")
        else "OTEL_EXPORTER_OTLP_PROTOCOL",
        "grpc",  # what opentelemetry-python's distro defaults to; also the fastest to start
    )
    protocol = parse_choice(src or "otlp_protocol", protocol, PROTOCOLS)

    endpoint: str | None
    if not isinstance(kw_endpoint, _Unset) and kw_endpoint is not None:
        base = parse_endpoint("otlp_endpoint", kw_endpoint)
        endpoint = base if protocol == "grpc" else base.rstrip("/") + f"/v1/{signal}"
    elif _env(f"OTEL_EXPORTER_OTLP_{sig}_ENDPOINT"):
        endpoint = parse_endpoint(
            f"OTEL_EXPORTER_OTLP_{sig}_ENDPOINT", _env(f"OTEL_EXPORTER_OTLP_{sig}_ENDPOINT")
        )
    elif _env("OTEL_EXPORTER_OTLP_ENDPOINT"):
        base = parse_endpoint("OTEL_EXPORTER_OTLP_ENDPOINT", _env("OTEL_EXPORTER_OTLP_ENDPOINT"))
        endpoint = base if protocol == "grpc" else base.rstrip("/") + f"/v1/{signal}"
    else:
        endpoint = None

    headers: dict[str, str] = {}
    for env_name in ("OTEL_EXPORTER_OTLP_HEADERS", f"OTEL_EXPORTER_OTLP_{sig}_HEADERS"):
        raw = _env(env_name)
        if raw is not None:
            headers.update(parse_headers(env_name, raw))
    if not isinstance(kw_headers, _Unset) and kw_headers is not None:
        headers.update(parse_headers("otlp_headers", kw_headers))

    timeout_s: float | None = None
    for env_name in (f"OTEL_EXPORTER_OTLP_{sig}_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT"):
        raw = _env(env_name)
        if raw is not None:
            # The spec says milliseconds; the Python SDK has historically read seconds. Values
            # above 1000 can only be milliseconds, small ones only seconds.
            number = parse_float(env_name, raw, minimum=0, min_exclusive=True)
            timeout_s = number / 1000.0 if number > 1000 else number
            break

    compression: str | None = None
    for env_name in (f"OTEL_EXPORTER_OTLP_{sig}_COMPRESSION", "OTEL_EXPORTER_OTLP_COMPRESSION"):
        raw = _env(env_name)
        if raw is not None:
            compression = parse_choice(env_name, raw, COMPRESSIONS)
            break

    insecure: bool | None = None
    for env_name in (f"OTEL_EXPORTER_OTLP_{sig}_INSECURE", "OTEL_EXPORTER_OTLP_INSECURE"):
        raw = _env(env_name)
        if raw is not None:
            insecure = parse_bool(env_name, raw)
            break

    return OtlpSignal(protocol, endpoint, headers, timeout_s, compression, insecure)


def _otlp_endpoint_configured() -> bool:
    return any(
        _env(name)
        for name in (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
            "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
        )
    )


def _sampling(sample_rate: object) -> tuple[float, bool]:
    """Resolve (rate, parent_based) from ``sample_rate`` or ``OTEL_TRACES_SAMPLER[_ARG]``."""
    if not isinstance(sample_rate, _Unset) and sample_rate is not None:
        return parse_float("sample_rate", sample_rate, minimum=0.0, maximum=1.0), True
    raw = _env("OTEL_TRACES_SAMPLER")
    if raw is None:
        return 1.0, True
    name = parse_choice("OTEL_TRACES_SAMPLER", raw, SAMPLERS)
    parent_based = name.startswith("parentbased_")
    kind = name.removeprefix("parentbased_")
    if kind == "always_on":
        return 1.0, parent_based
    if kind == "always_off":
        return 0.0, parent_based
    arg = _env("OTEL_TRACES_SAMPLER_ARG")
    rate = 1.0 if arg is None else parse_float("OTEL_TRACES_SAMPLER_ARG", arg, minimum=0, maximum=1)
    return rate, parent_based


def resolve(**kw: Any) -> Settings:
    """Build :class:`Settings` from ``configure_telemetry()`` keywords (``UNSET``: not given)."""

    def pick(key: str, env_name: str | None, default: object) -> tuple[str, object]:
        src, value = _pick(kw.get(key, UNSET), env_name, default)
        return (src or key), value

    sdk_disabled = parse_bool("OTEL_SDK_DISABLED", _env("OTEL_SDK_DISABLED") or "false")

    # Resource ---------------------------------------------------------------------------------
    resource: dict[str, str] = {}
    if _env("OTEL_RESOURCE_ATTRIBUTES"):
        resource.update(
            parse_resource_attributes("OTEL_RESOURCE_ATTRIBUTES", _env("OTEL_RESOURCE_ATTRIBUTES"))
        )
    given = kw.get("resource_attributes", UNSET)
    if not isinstance(given, _Unset) and given is not None:
        resource.update(parse_resource_attributes("resource_attributes", given))

    opt, service_name = pick("service_name", "OTEL_SERVICE_NAME", None)
    if service_name is None:
        service_name = resource.get("service.name") or "unknown_service"
    if not isinstance(service_name, str) or not service_name.strip():
        raise ConfigurationError(opt, service_name, "a non-empty string")

    opt, service_version = pick("service_version", "FLOWTEL_SERVICE_VERSION", None)
    service_version = (
        service_version if service_version is not None else resource.get("service.version")
    )
    if service_version is not None and not isinstance(service_version, str):
        raise ConfigurationError(opt, service_version, "a string or None")

    opt, environment = pick("environment", "FLOWTEL_ENVIRONMENT", None)
    environment = (
        environment
        if environment is not None
        else resource.get("deployment.environment.name") or resource.get("deployment.environment")
    )
    if environment is not None and not isinstance(environment, str):
        raise ConfigurationError(opt, environment, "a string or None")

    resource["service.name"] = service_name.strip()
    if service_version:
        resource["service.version"] = service_version
    if environment:
        resource["deployment.environment.name"] = environment
    resource.setdefault("service.instance.id", str(uuid.uuid4()))

    # Exporter ---------------------------------------------------------------------------------
    opt, exporter = pick("exporter", "FLOWTEL_EXPORTER", "auto")
    exporter = parse_choice(opt, exporter, EXPORTERS)
    if exporter == "auto":
        explicit_endpoint = not isinstance(kw.get("otlp_endpoint", UNSET), _Unset) and kw.get(
            "otlp_endpoint"
        )
        exporter = "otlp" if explicit_endpoint or _otlp_endpoint_configured() else "console"
    otlp = {
        s: _resolve_otlp(
            s,
            kw.get("otlp_endpoint", UNSET),
            kw.get("otlp_protocol", UNSET),
            kw.get("otlp_headers", UNSET),
        )
        for s in SIGNALS
    }

    # Sampling, limits, batching -----------------------------------------------------------------
    sample_rate, parent_based = _sampling(kw.get("sample_rate", UNSET))
    opt, count_unsampled = pick("count_unsampled", "FLOWTEL_COUNT_UNSAMPLED", True)
    count_unsampled = parse_bool(opt, count_unsampled)

    def int_opt(key: str, env_name: str | None, default: int, minimum: int = 1) -> int:
        o, v = pick(key, env_name, default)
        return parse_int(o, v, minimum=minimum)

    def seconds_opt(key: str, env_ms: str | None, default_s: float) -> float:
        """Keywords are seconds; the OTEL_* variables are milliseconds by the spec."""
        value = kw.get(key, UNSET)
        if not isinstance(value, _Unset) and value is not None:
            return parse_float(key, value, minimum=0, min_exclusive=True)
        if env_ms is not None and _env(env_ms) is not None:
            return parse_float(env_ms, _env(env_ms), minimum=0, min_exclusive=True) / 1000.0
        return default_s

    max_span_attributes = int_opt("max_span_attributes", "OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", 128)
    max_span_events = int_opt("max_span_events", "OTEL_SPAN_EVENT_COUNT_LIMIT", 128)
    opt, max_len = pick("max_attribute_length", "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", 16384)
    max_attribute_length = None if max_len is None else parse_int(opt, max_len, minimum=1)

    queue = int_opt("batch_max_queue_size", "OTEL_BSP_MAX_QUEUE_SIZE", 2048)
    batch = int_opt("batch_max_export_batch_size", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512)
    if batch > queue:
        raise ConfigurationError(
            "batch_max_export_batch_size",
            batch,
            f"a whole number <= batch_max_queue_size ({queue})",
        )
    delay_s = seconds_opt("batch_schedule_delay_s", "OTEL_BSP_SCHEDULE_DELAY", 1.0)
    export_timeout_s = seconds_opt("batch_export_timeout_s", "OTEL_BSP_EXPORT_TIMEOUT", 10.0)
    metric_interval_s = seconds_opt("metric_export_interval_s", "OTEL_METRIC_EXPORT_INTERVAL", 30.0)

    opt, prom_port = pick("prometheus_port", "FLOWTEL_PROMETHEUS_PORT", None)
    prometheus_port = (
        None if prom_port is None else parse_int(opt, prom_port, minimum=0, maximum=65535)
    )
    opt, prom_host = pick("prometheus_host", "FLOWTEL_PROMETHEUS_HOST", "0.0.0.0")
    if not isinstance(prom_host, str) or not prom_host:
        raise ConfigurationError(opt, prom_host, "a host name or IP address to bind")

    opt, props = pick("propagators", "OTEL_PROPAGATORS", ("tracecontext", "baggage"))
    if isinstance(props, str):
        props = [p.strip() for p in props.split(",") if p.strip()]
    if not isinstance(props, Sequence):
        raise ConfigurationError(opt, props, "a sequence of " + ", ".join(PROPAGATORS))
    propagators = tuple(parse_choice(opt, p, PROPAGATORS) for p in props)

    # Scrubbing, errors, Sentry, logging -------------------------------------------------------
    opt, scrub = pick("scrub", "FLOWTEL_SCRUB", True)
    scrub = parse_bool(opt, scrub)
    opt, patterns = pick("scrub_patterns", "FLOWTEL_SCRUB_PATTERNS", ())
    scrub_patterns = parse_patterns(opt, patterns)

    opt, window = pick("error_window_minutes", "FLOWTEL_ERROR_WINDOW_MINUTES", 60)
    error_window = None if window in (None, 0, "0") else parse_int(opt, window, minimum=1)
    error_max_keys = int_opt("error_max_keys", "FLOWTEL_ERROR_MAX_KEYS", 1000)
    opt, gauge_windows = pick(
        "error_rate_windows_minutes", "FLOWTEL_ERROR_RATE_WINDOWS_MINUTES", None
    )
    error_rate_windows: tuple[float, ...] | None = None
    if gauge_windows is not None:
        if isinstance(gauge_windows, str):
            gauge_windows = [w for w in gauge_windows.split(",") if w.strip()]
        if not isinstance(gauge_windows, Sequence) or not gauge_windows:
            raise ConfigurationError(opt, gauge_windows, "a non-empty list of minutes > 0")
        limit = float(error_window) if error_window else None
        error_rate_windows = tuple(
            parse_float(opt, w, minimum=0, maximum=limit, min_exclusive=True) for w in gauge_windows
        )
    opt, histogram = pick("error_duration_histogram", "FLOWTEL_ERROR_DURATION_HISTOGRAM", True)
    error_duration_histogram = parse_bool(opt, histogram)

    opt, dsn = pick("sentry_dsn", "SENTRY_DSN", None)
    sentry_dsn = None if dsn is None else parse_dsn(opt, dsn)
    opt, sentry_env = pick("sentry_environment", "SENTRY_ENVIRONMENT", environment)
    if sentry_env is not None and not isinstance(sentry_env, str):
        raise ConfigurationError(opt, sentry_env, "a string or None")
    opt, sentry_rate = pick("sentry_sample_rate", "FLOWTEL_SENTRY_SAMPLE_RATE", 1.0)
    sentry_sample_rate = parse_float(opt, sentry_rate, minimum=0.0, maximum=1.0)
    opt, pii = pick("sentry_send_default_pii", "FLOWTEL_SENTRY_SEND_DEFAULT_PII", False)
    sentry_pii = parse_bool(opt, pii)
    opt, template = pick("sentry_trace_url_template", "FLOWTEL_SENTRY_TRACE_URL_TEMPLATE", None)
    sentry_trace_url_template = None if template is None else parse_url_template(opt, template)

    opt, log_on = pick("logging", "FLOWTEL_LOGGING", True)
    log_enabled = parse_bool(opt, log_on)
    opt, level = pick("log_level", "FLOWTEL_LOG_LEVEL", "INFO")
    log_level = parse_level(opt, level)
    opt, json_logs = pick("json_logs", "FLOWTEL_JSON_LOGS", False)
    json_logs = parse_bool(opt, json_logs)
    opt, colors = pick("console_colors", "FLOWTEL_CONSOLE_COLORS", None)
    console_colors = None if colors is None else parse_bool(opt, colors)

    opt, shutdown_s = pick("shutdown_timeout_s", "FLOWTEL_SHUTDOWN_TIMEOUT_S", 3.0)
    shutdown_timeout_s = parse_float(opt, shutdown_s, minimum=0, min_exclusive=True)
    opt, drain = pick("drain_s", "FLOWTEL_DRAIN_S", 5.0)
    drain_s = parse_float(opt, drain, minimum=0)

    def seq_opt(key: str) -> tuple[Any, ...]:
        value = kw.get(key, UNSET)
        if isinstance(value, _Unset) or value is None:
            return ()
        if not isinstance(value, Sequence) or isinstance(value, str):
            raise ConfigurationError(key, value, "a list of OpenTelemetry SDK objects")
        return tuple(value)

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
        span_processors=seq_opt("span_processors"),
        span_exporters=seq_opt("span_exporters"),
        metric_readers=seq_opt("metric_readers"),
        log_exporters=seq_opt("log_exporters"),
    )
