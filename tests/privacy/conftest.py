"""Fixtures for the privacy tests: a local Sentry endpoint."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.sentry_server import SentryServer


@pytest.fixture
def sentry_server() -> Iterator[SentryServer]:
    """A local Sentry ingestion endpoint for one test."""
    server = SentryServer().start()
    yield server
    server.stop()
