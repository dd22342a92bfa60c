"""``error_dimensions``: which span attributes split the error statistics and metrics.

Why validated here: each name becomes a metric attribute and a key of ``get_error_stats()``.
A typo, a flowtel attribute that the metrics already carry, or a long list (every dimension
multiplies the exported series) should fail at ``configure_telemetry()``, not show up later as
an empty or exploding dashboard.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

from flowtel import semconv
from flowtel.exceptions import ConfigurationError

__all__ = ["MAX_ERROR_DIMENSIONS", "parse_error_dimensions"]

MAX_ERROR_DIMENSIONS: Final = 5
"""At most this many dimensions: the exported series grow with the product of their values."""

RESERVED: Final = frozenset(
    {
        semconv.COMPONENT,
        semconv.OPERATION,
        semconv.OTEL_STATUS_CODE,
        semconv.ERROR_TYPE,
        semconv.ERROR_HANDLED,
        semconv.ERROR_RATE_WINDOW,
    }
)
"""Attributes the error metrics set themselves; a dimension of that name would overwrite them."""

_KEY: Final = r"[A-Za-z_][A-Za-z0-9_.\-]{0,127}"  # compiled when dimensions are configured
_ACCEPTED: Final = (
    f"up to {MAX_ERROR_DIMENSIONS} distinct attribute keys (letters, digits, '_', '.', '-'; "
    "at most 128 characters; not one the error metrics set), as a list or a comma-separated "
    "string; empty or None for none"
)


def parse_error_dimensions(option: str, value: object) -> tuple[str, ...]:
    """The dimension names in ``value`` (a sequence, or a comma list as in the environment).

    Raises:
        ConfigurationError: not a list of valid, distinct attribute keys, or too many.
    """
    if value is None:
        return ()
    names: object = value
    if isinstance(value, str):
        names = [name.strip() for name in value.split(",") if name.strip()]
    if not isinstance(names, Sequence) or isinstance(names, bytes):
        raise ConfigurationError(option, value, _ACCEPTED)
    out: list[str] = []
    for name in names:
        if not isinstance(name, str) or not re.fullmatch(_KEY, name) or name in RESERVED:
            raise ConfigurationError(option, name, _ACCEPTED)
        if name in out:
            raise ConfigurationError(option, value, _ACCEPTED + f" ({name!r} is repeated)")
        out.append(name)
    if len(out) > MAX_ERROR_DIMENSIONS:
        raise ConfigurationError(option, value, _ACCEPTED)
    return tuple(out)
