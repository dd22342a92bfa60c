"""A DSN that sentry-sdk rejects fails configure_telemetry() with its key masked."""

from __future__ import annotations

from collections.abc import Callable

import pytest

import flowtel


class TestRejectedDsn:
    @pytest.mark.parametrize(
        "dsn",
        [
            "https://<key>@o0.ingest.sentry.io/<project>",  # the placeholder docs used to show
            "https://s3cr3tkey0123@o0.ingest.sentry.io/not-a-number",
        ],
    )
    def test_configuration_error_masks_the_key(
        self, dsn: str, configure: Callable[..., flowtel.Telemetry]
    ) -> None:
        """The error names sentry_dsn, says why, and never shows the key."""
        with pytest.raises(flowtel.ConfigurationError, match="sentry_dsn") as info:
            configure(exporter="none", sentry_dsn=dsn)
        message = str(info.value)
        assert "Invalid project in DSN" in message and "***@o0.ingest.sentry.io" in message
        assert "<key>" not in message and "s3cr3tkey0123" not in message

    def test_nothing_is_replaced(self, configure: Callable[..., flowtel.Telemetry]) -> None:
        """The running configuration stays in place when the new DSN is rejected."""
        first = configure(exporter="none")
        with pytest.raises(flowtel.ConfigurationError):
            configure(exporter="none", sentry_dsn="https://k@o0.ingest.sentry.io/x")
        from flowtel._core._telemetry import current

        assert current() is first
