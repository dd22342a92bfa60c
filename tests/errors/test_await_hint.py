"""Awaiting the synchronous get_error_stats() says it is synchronous."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

import flowtel


def test_await_get_error_stats_explains(configure: Callable[..., flowtel.Telemetry]) -> None:
    """`await flowtel.get_error_stats()` raises TypeError naming the fix."""
    configure(exporter="none")

    async def main() -> None:
        await flowtel.get_error_stats()  # type: ignore[misc]

    with pytest.raises(TypeError, match=r"get_error_stats\(\) is synchronous.*without 'await'"):
        asyncio.run(main())
