"""Parsers for option values: each names the option (the keyword, or the environment variable
it came from), the bad value (masked where it may be a credential) and what is accepted.

Keyword names are checked here too (:func:`checked_keywords`): Python's own ``TypeError`` for an
unknown keyword names neither what is accepted nor what was probably meant, and for calls that
forward keywords it names an internal function instead."""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import re
import urllib.parse
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Final, ParamSpec, TypeVar

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
CONSOLE_VERBOSITIES: Final = ("quiet", "normal", "verbose")
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


def parse_minutes_list(option: str, value: object, limit: float | None) -> tuple[float, ...]:
    """A non-empty list of minutes > 0 (at most ``limit``); a comma list from the environment."""
    if isinstance(value, str):
        value = [w for w in value.split(",") if w.strip()]
    if not isinstance(value, Sequence) or not value:
        raise ConfigurationError(option, value, "a non-empty list of minutes > 0")
    return tuple(
        parse_float(option, w, minimum=0, maximum=limit, min_exclusive=True) for w in value
    )


def positive(option: str, value: object, accepted: str, *, integer: bool = False) -> float:
    """``value`` as a float if it is a finite number > 0 (an int when ``integer``), else raise."""
    kinds = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds):
        raise ConfigurationError(option, value, accepted)
    number = float(value)
    if not math.isfinite(number) or number <= 0:
        raise ConfigurationError(option, value, accepted)
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
        return f"between {minimum} and {maximum} ({'>' if min_exclusive else '>='} {minimum})"
    if minimum is not None:
        return f"{'>' if min_exclusive else '>='} {minimum}"
    return ""


def parse_choice(option: str, value: object, choices: Sequence[str]) -> str:
    """One of ``choices`` (case-insensitive)."""
    if isinstance(value, str) and value.strip().lower() in choices:
        return value.strip().lower()
    raise ConfigurationError(option, value, "one of " + ", ".join(repr(c) for c in choices))


# Checked only when headers are configured: compiled then, through ``re``'s cache.
_HEADER_NAME: Final = r"[A-Za-z0-9!#$%&'*+.^_`|~-]+"
_HEADER_VALUE: Final = r"[\x20-\x7e\t]*"
_HEADERS_ACCEPTED: Final = (
    "a mapping of str to str (names: letters, digits and !#$%&'*+.^_`|~-; values: printable "
    "ASCII), or 'key1=value1,key2=value2' (values URL-encoded); names are lower-cased for gRPC"
)


class Shown:
    """A value as an error message may show it (``repr`` is the text itself): masked forms."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def parse_headers(option: str, value: object) -> dict[str, str]:
    """OTLP headers: a mapping, or the W3C-baggage-like ``k1=v1,k2=v2`` environment format.

    Names are lower-cased: gRPC, the default protocol, rejects metadata keys with capitals and
    HTTP does not care. Names and values are validated here, because a name with a space or a
    value with a newline would otherwise be accepted and then fail every export. Errors show
    the header name, never its value (it is usually a credential).
    """
    pairs: list[tuple[object, object]] = []
    if isinstance(value, str):
        for item in value.split(","):
            if not item.strip():
                continue
            key, sep, val = item.partition("=")
            if not sep:
                shown = Shown(f"header {key.strip()!r} without '=value'")
                raise ConfigurationError(option, shown, _HEADERS_ACCEPTED)
            pairs.append((urllib.parse.unquote(key.strip()), urllib.parse.unquote(val.strip())))
    elif isinstance(value, Mapping):
        pairs = list(value.items())
    else:
        raise ConfigurationError(option, value, _HEADERS_ACCEPTED)
    headers: dict[str, str] = {}
    for name, raw in pairs:
        if not isinstance(name, str) or not re.fullmatch(_HEADER_NAME, name):
            what = repr(name) if isinstance(name, str) else f"of type {type(name).__name__}"
            raise ConfigurationError(option, Shown(f"header name {what}"), _HEADERS_ACCEPTED)
        if not isinstance(raw, str) or not re.fullmatch(_HEADER_VALUE, raw):
            shown = Shown(f"header {name!r} with a value that is not printable ASCII (hidden)")
            raise ConfigurationError(option, shown, _HEADERS_ACCEPTED)
        if name.lower() in headers:
            shown = Shown(f"header {name!r} given twice (names ignore case)")
            raise ConfigurationError(option, shown, _HEADERS_ACCEPTED)
        headers[name.lower()] = raw
    return headers


def mask_url(value: str) -> str:
    """``value`` with the password (or a lone user token) of its user info replaced by ``***``.

    Works on malformed URLs too: everything between ``://`` and the last ``@`` is user info.
    """
    scheme, sep, rest = value.partition("://")
    if not sep or "@" not in rest:
        return value
    userinfo, _, host = rest.rpartition("@")
    user, colon, _password = userinfo.partition(":")
    return f"{scheme}://{user}:***@{host}" if colon else f"{scheme}://***@{host}"


def parse_endpoint(option: str, value: object) -> str:
    """An http(s) URL with a host, e.g. ``http://collector:4317``; errors mask credentials."""
    accepted = "an http:// or https:// URL with a host, e.g. 'http://localhost:4317'"
    if not isinstance(value, str):
        raise ConfigurationError(option, value, accepted)
    text = value.strip()
    shown = Shown(repr(mask_url(text)))
    try:
        url = urllib.parse.urlsplit(text)
        port = url.port  # raises ValueError on a bad port
    except ValueError:
        raise ConfigurationError(option, shown, accepted) from None
    if url.scheme not in ("http", "https") or not url.hostname or any(c.isspace() for c in text):
        raise ConfigurationError(option, shown, accepted)
    del port
    return text


def parse_resource_attributes(option: str, value: object) -> dict[str, str]:
    """``OTEL_RESOURCE_ATTRIBUTES`` format (``k=v,k2=v2``) or a mapping."""
    accepted = "a mapping of str to str/bool/int/float, or 'key1=value1,key2=value2'"
    if isinstance(value, Mapping):
        if not all(isinstance(k, str) and k for k in value):
            raise ConfigurationError(option, value, accepted)
        for key, item in value.items():
            if not isinstance(item, str | bool | int | float):
                raise ConfigurationError(f"{option}[{key!r}]", item, accepted)
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


_PATTERNS_ACCEPTED: Final = (
    "a list of regular expressions that cannot match the empty string (environment: a JSON "
    "list, or one pattern per line)"
)


def split_patterns(text: str) -> list[str]:
    """The environment form of a pattern list: a JSON list of strings, or one per line.

    Not commas: a comma is regex syntax (``\\d{4,6}``) and a line break never is in a one-line
    pattern. Text starting with ``[`` that is not a JSON list is a pattern (``[A-Z]{3}-\\d+``).
    """
    stripped = text.strip()
    if stripped.startswith("["):
        try:
            loaded = json.loads(stripped)
        except ValueError:
            loaded = None
        if isinstance(loaded, list):
            return loaded
    return [line.strip() for line in stripped.splitlines() if line.strip()]


def parse_patterns(option: str, value: object) -> tuple[str, ...]:
    """Regular expressions: a sequence (a single string is one pattern, or the environment form
    of :func:`split_patterns`). An invalid one fails naming the option and the pattern."""
    if isinstance(value, str):
        value = split_patterns(value)
    if not isinstance(value, Sequence) or not all(isinstance(p, str) and p for p in value):
        raise ConfigurationError(option, value, _PATTERNS_ACCEPTED)
    for pattern in value:
        try:
            compiled = re.compile(pattern)
        except re.error as exc:
            raise ConfigurationError(
                option, pattern, f"a valid regular expression ({exc})"
            ) from None
        if compiled.search("") is not None:
            raise ConfigurationError(option, pattern, _PATTERNS_ACCEPTED)
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


# Keyword names ----------------------------------------------------------------------------------

P = ParamSpec("P")
R = TypeVar("R")


def check_keywords(where: str, given: Iterable[str], accepted: tuple[str, ...]) -> None:
    """Raise ``TypeError`` for the first keyword of ``given`` not in ``accepted``."""
    for key in given:
        if key in accepted:
            continue
        import difflib  # only on a wrong keyword

        close = difflib.get_close_matches(key, accepted, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise TypeError(
            f"{where}() got an unexpected keyword argument {key!r}{hint} "
            f"(accepted: {', '.join(accepted)})"
        )


def _keyword_names(fn: Callable[..., object]) -> tuple[str, ...]:
    """The names ``fn`` accepts as keywords. A plain function's code object lists them in order
    (read at import of each decorated call, so not through ``inspect.signature``, which costs
    about 100 µs for ``configure_telemetry``'s 48 parameters)."""
    code = getattr(fn, "__code__", None)
    if code is None:
        import inspect

        return tuple(
            name
            for name, p in inspect.signature(fn).parameters.items()
            if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
        )
    names: tuple[str, ...] = code.co_varnames
    return names[code.co_posonlyargcount : code.co_argcount + code.co_kwonlyargcount]


def checked_keywords(fn: Callable[P, R]) -> Callable[P, R]:
    """``fn`` with its keywords checked first (see :func:`check_keywords`); same signature."""
    accepted = _keyword_names(fn)

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        check_keywords(fn.__name__, kwargs, accepted)
        return fn(*args, **kwargs)

    return wrapper
