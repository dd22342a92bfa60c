"""Options of the developer-facing features: console verbosity and ``instrument=``.

``instrument=`` names ``opentelemetry-instrumentation-*`` packages to switch on. Each name is
checked here, at configuration time: an unknown name, or one whose package is not installed, is a
:class:`ConfigurationError` that gives the ``pip install`` command.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from typing import Final

from flowtel._core._parse import CONSOLE_VERBOSITIES
from flowtel._core._record import Record
from flowtel.exceptions import ConfigurationError

__all__ = [
    "CONSOLE_VERBOSITIES",
    "INSTRUMENTATIONS",
    "Instrumentation",
    "parse_instrument",
]


class Instrumentation(Record):
    """An instrumentation ``instrument=`` can switch on."""

    name: str
    module: str
    """The module that holds the instrumentor (checked with ``find_spec``, never imported here)."""
    package: str
    """What ``pip install`` needs."""


INSTRUMENTATIONS: Final[dict[str, Instrumentation]] = {
    "httpx": Instrumentation(
        name="httpx",
        module="opentelemetry.instrumentation.httpx",
        package="opentelemetry-instrumentation-httpx",
    ),
    "requests": Instrumentation(
        name="requests",
        module="opentelemetry.instrumentation.requests",
        package="opentelemetry-instrumentation-requests",
    ),
    "aiohttp-client": Instrumentation(
        name="aiohttp-client",
        module="opentelemetry.instrumentation.aiohttp_client",
        package="opentelemetry-instrumentation-aiohttp-client",
    ),
    "sqlalchemy": Instrumentation(
        name="sqlalchemy",
        module="opentelemetry.instrumentation.sqlalchemy",
        package="opentelemetry-instrumentation-sqlalchemy",
    ),
    "asyncpg": Instrumentation(
        name="asyncpg",
        module="opentelemetry.instrumentation.asyncpg",
        package="opentelemetry-instrumentation-asyncpg",
    ),
    "redis": Instrumentation(
        name="redis",
        module="opentelemetry.instrumentation.redis",
        package="opentelemetry-instrumentation-redis",
    ),
    "openai": Instrumentation(
        name="openai",
        module="opentelemetry.instrumentation.openai_v2",
        package="opentelemetry-instrumentation-openai-v2",
    ),
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
