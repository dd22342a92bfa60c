"""``configure_telemetry(instrument=[...])``: turn on ``opentelemetry-instrumentation-*`` packages.

The instrumentors report through the global providers, which flowtel points at its proxies, so
their spans nest under ``@traced`` spans, go through the same scrubbing, error statistics and
exporters, and follow a reconfiguration without being instrumented again. Which names exist, and
the check that each is installed, live in :mod:`flowtel._core._features`.

Each library is instrumented once per process. The telemetry handle that switched it on owns it:
shutting that handle down uninstruments it, unless a newer configuration took it over.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flowtel._core._telemetry import Telemetry

__all__: list[str] = []

_log = logging.getLogger("flowtel")
_lock = threading.Lock()
_owners: dict[str, Telemetry] = {}
_instrumentors: dict[str, Any] = {}


def _httpx() -> Any:
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    return HTTPXClientInstrumentor()


def _requests() -> Any:
    from opentelemetry.instrumentation.requests import RequestsInstrumentor

    return RequestsInstrumentor()


def _aiohttp_client() -> Any:
    from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor

    return AioHttpClientInstrumentor()


def _sqlalchemy() -> Any:
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    return SQLAlchemyInstrumentor()


def _asyncpg() -> Any:
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor

    return AsyncPGInstrumentor()


def _redis() -> Any:
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    return RedisInstrumentor()


def _openai() -> Any:
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

    return OpenAIInstrumentor()


_FACTORIES: dict[str, Callable[[], Any]] = {
    "httpx": _httpx,
    "requests": _requests,
    "aiohttp-client": _aiohttp_client,
    "sqlalchemy": _sqlalchemy,
    "asyncpg": _asyncpg,
    "redis": _redis,
    "openai": _openai,
}


def _install(telemetry: Telemetry) -> None:
    """Instrument every library in ``settings.instrument`` (called by ``configure_telemetry``).

    A library whose instrumentor fails (an incompatible version) is logged once and skipped:
    the application starts without that instrumentation rather than not at all.
    """
    for name in telemetry.settings.instrument:
        with _lock:
            instrumentor = _instrumentors.get(name)
            try:
                if instrumentor is None:
                    instrumentor = _FACTORIES[name]()
                if not instrumentor.is_instrumented_by_opentelemetry:
                    instrumentor.instrument()
            except Exception:
                _log.warning("flowtel: could not instrument %s; skipped", name, exc_info=True)
                continue
            if not instrumentor.is_instrumented_by_opentelemetry:
                # The instrumentor refused, e.g. the library's version is outside its range
                # (it logged why); say what flowtel asked for, once.
                _log.warning("flowtel: instrument=%r is not active (see the error above)", name)
                continue
            _instrumentors[name] = instrumentor
            _owners[name] = telemetry
    telemetry.add_shutdown_callback(lambda: _uninstall(telemetry))


def _uninstall(telemetry: Telemetry) -> None:
    with _lock:
        for name, owner in list(_owners.items()):
            if owner is not telemetry:
                continue  # a newer configuration owns it now
            del _owners[name]
            try:
                _instrumentors[name].uninstrument()
            except Exception:
                _log.warning("flowtel: could not uninstrument %s", name, exc_info=True)


def instrumented() -> tuple[str, ...]:
    """Names instrumented right now (for ``flowtel doctor``)."""
    with _lock:
        return tuple(_owners)
