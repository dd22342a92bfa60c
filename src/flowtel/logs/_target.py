"""Where one logger's records go: its SDK logger, looked up once per logger name.

Why a noun of its own: the handler resolves each stdlib logger name once (the SDK logger, the
feedback-loop exclusion, whether the fast path applies) and keeps the answer, so a record pays
a dictionary hit instead of the provider's locked cache and a prefix scan.

The fast path: the bridge builds its attributes clean already (``str`` and numbers, scrubbed,
cut at 16 KiB), so cleaning them one by one again in the SDK (``BoundedAttributes``) is pure
cost. :func:`flowtel._core._compat.preset_log_record` stores them as they are, on an SDK that
passed the probe; any other logger, or a record with a value the SDK would change, goes through
the public ``Logger.emit(attributes=...)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry._logs import Logger, LogRecord, SeverityNumber
from opentelemetry.context import Context
from opentelemetry.util.types import AttributeValue

from flowtel._core import _compat

__all__ = ["LogTarget"]


def _sdk_logger_class() -> type | None:
    try:
        from opentelemetry.sdk._logs import Logger as SdkLogger
    except ImportError:  # pragma: no cover - the SDK is a dependency; public path otherwise
        return None
    return SdkLogger


_SDK_LOGGER = _sdk_logger_class()


class LogTarget:
    """One logger name's destination: the logger and, on the fast path, its record limits.

    Args:
        logger: what ``LoggerProvider.get_logger(name)`` returned.
        fast: whether records may be preset (see :func:`_compat.preset_log_records_ok`).
    """

    __slots__ = ("limits", "logger")

    def __init__(self, logger: Logger, fast: bool) -> None:
        self.logger = logger
        self.limits: Any | None = (
            _compat.log_record_limits(logger)
            if fast and _SDK_LOGGER is not None and type(logger) is _SDK_LOGGER
            else None
        )

    def emit(
        self,
        timestamp: int,
        context: Context,
        severity_number: SeverityNumber,
        severity_text: str,
        body: str,
        attributes: Mapping[str, AttributeValue],
    ) -> None:
        """Hand one record to the logger; the SDK's processors run on this thread."""
        limits = self.limits
        if limits is not None:
            record = LogRecord(
                timestamp=timestamp,
                context=context,
                severity_text=severity_text,
                severity_number=severity_number,
                body=body,
            )
            preset = _compat.preset_log_record(record, self.logger, limits, attributes)
            if preset is not None:
                self.logger.emit(preset)
                return
        self.logger.emit(
            timestamp=timestamp,
            context=context,
            severity_number=severity_number,
            severity_text=severity_text,
            body=body,
            attributes=attributes,
        )
