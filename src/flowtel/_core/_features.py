"""Options of the developer-facing features: console verbosity and ``instrument=``.

``instrument=`` names ``opentelemetry-instrumentation-*`` packages to switch on. Each name is
checked here, at configuration time: an unknown name, or one whose package is not installed, is a
:class:`ConfigurationError` that gives the ``pip install`` command.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from typing import Final, NamedTuple

from flowtel.exceptions import ConfigurationError

__all__ = [
    "CONSOLE_VERBOSITIES",
    "INSTRUMENTATIONS",
    "Instrumentation",
    "parse_instrument",
]

CONSOLE_VERBOSITIES: Final = ("quiet", "normal", "verbose")


class Instrumentation(NamedTuple):
    """An instrumentation ``instrument=`` can switch on."""

    name: str
    module: str
    """The module that holds the instrumentor (checked with ``find_spec``, never imported here)."""
    package: str
    """What ``pip install`` needs."""


INSTRUMENTATIONS: Final[dict[str, Instrumentation]] = {
    i.name: i
    for i in (
        Instrumentation(
            "httpx", "opentelemetry.instrumentation.httpx", "opentelemetry-instrumentation-httpx"
        ),
        Instrumentation(
            "requests",
            "opentelemetry.instrumentation.requests",
            "opentelemetry-instrumentation-requests",
        ),
        Instrumentation(
            "aiohttp-client",
            "opentelemetry.instrumentation.aiohttp_client",
            "opentelemetry-instrumentation-aiohttp-client",
        ),
        Instrumentation(
            "sqlalchemy",
            "opentelemetry.instrumentation.sqlalchemy",
            "opentelemetry-instrumentation-sqlalchemy",
        ),
        Instrumentation(
            "asyncpg",
            "opentelemetry.instrumentation.asyncpg",
            "opentelemetry-instrumentation-asyncpg",
        ),
        Instrumentation(
            "redis", "opentelemetry.instrumentation.redis", "opentelemetry-instrumentation-redis"
        ),
        Instrumentation(
            "openai",
            "opentelemetry.instrumentation.openai_v2",
            "opentelemetry-instrumentation-openai-v2",
        ),
    )
}


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package missing
        return False


def parse_instrument(option: str, value: object) -> tuple[str, ...]:
    """A list (or comma-separated string) of names from :data:`INSTRUMENTATIONS`, installed."""
    accepted = "a list of " + ", ".join(INSTRUMENTATIONS)
    if value is None:
        return ()
    if isinstance(value, str):
        value = [v for v in value.split(",") if v.strip()]
    if not isinstance(value, Sequence):
        raise ConfigurationError(option, value, accepted)
    names: list[str] = []
    for raw in value:
        if not isinstance(raw, str):
            raise ConfigurationError(option, raw, accepted)
        name = raw.strip().lower().replace("_", "-")
        if name not in INSTRUMENTATIONS:
            raise ConfigurationError(option, raw, accepted)
        spec = INSTRUMENTATIONS[name]
        if not _installed(spec.module):
            raise ConfigurationError(
                option,
                raw,
                f"an installed instrumentation: pip install '{spec.package}' "
                "(or pip install 'flowtel[instrumentations]')",
            )
        if name not in names:
            names.append(name)
    return tuple(names)
