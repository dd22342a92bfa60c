"""Parsers for option values: each names the option (the keyword, or the environment variable
it came from), the bad value (masked where it may be a credential) and what is accepted."""

from __future__ import annotations

import logging
import os
import re
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Any, Final

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
LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def env(name: str) -> str | None:
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
    """A logging level: a name (``WARN`` is ``WARNING``, as the standard library has it) or a
    number >= 0. The one parser behind ``configure_telemetry(log_level=...)``, its
    environment variable and :func:`flowtel.logs.instrument_logging`."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str):
        name = value.strip().upper()
        if name == "WARN":
            return logging.WARNING
        if name in LEVELS:
            level: int = getattr(logging, name)
            return level
    raise ConfigurationError(
        option, value, "one of " + ", ".join(LEVELS) + " (or WARN), or a number >= 0"
    )


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
