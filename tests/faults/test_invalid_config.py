"""Invalid configuration for every option fails fast with a clear ConfigurationError.

The option list is read from ``configure_telemetry``'s signature, so a new option without
validation makes this test fail. (Value-by-value cases live in ``tests/core/test_configure.py``.)
"""

from __future__ import annotations

import inspect

import pytest

import flowtel

OPTIONS = [name for name in inspect.signature(flowtel.configure_telemetry).parameters]
OPTIONS.remove("force")


class _Nonsense:
    """A value no option accepts."""

    def __repr__(self) -> str:
        return "<nonsense>"


class TestEveryOption:
    """Each keyword of configure_telemetry() rejects a nonsensical value, naming itself."""

    @pytest.mark.parametrize("option", OPTIONS)
    def test_nonsense_value_is_rejected(self, option: str) -> None:
        """ConfigurationError names the option, echoes the value and lists what is accepted."""
        base: dict[str, object] = {"exporter": "none", "logging": False}
        base[option] = _Nonsense()
        with pytest.raises(flowtel.ConfigurationError) as info:
            flowtel.configure_telemetry(force=True, **base)  # type: ignore[arg-type]
        error = info.value
        assert error.option == option
        assert str(error).startswith(f"{option}: invalid value <nonsense>; accepted: ")
        assert error.accepted

    def test_previous_configuration_survives(self) -> None:
        """After a rejected configuration the app keeps running with the previous one."""
        good = flowtel.configure_telemetry(force=True, exporter="none", logging=False)
        with pytest.raises(flowtel.ConfigurationError):
            flowtel.configure_telemetry(force=True, shutdown_timeout_s=_Nonsense())  # type: ignore[arg-type]
        assert flowtel._core._telemetry.current() is good

        @flowtel.traced
        def still_works() -> int:
            return 7

        assert still_works() == 7
        good.shutdown()


class TestOneLevelParser:
    @pytest.mark.parametrize("level", ["WARN", "warning", " Warning ", 30])
    def test_configure_and_instrument_logging_accept_the_same_levels(self, level: object) -> None:
        """configure_telemetry(log_level=...) and instrument_logging(level=...) agree, WARN too."""
        import logging

        from opentelemetry.sdk._logs import LoggerProvider

        from flowtel.logs import instrument_logging, uninstrument_logging

        telemetry = flowtel.configure_telemetry(exporter="none", log_level=level, force=True)
        try:
            assert telemetry.settings.log_level == logging.WARNING
            instrument_logging(LoggerProvider(), level=level)  # type: ignore[arg-type]
            uninstrument_logging()
        finally:
            telemetry.shutdown()

    def test_both_reject_the_same_levels_naming_the_option(self) -> None:
        """A bad level fails the same way on both paths, naming log_level and the accepted ones."""
        from opentelemetry.sdk._logs import LoggerProvider

        from flowtel.logs import instrument_logging

        for call in (
            lambda: flowtel.configure_telemetry(exporter="none", log_level="LOUD", force=True),
            lambda: instrument_logging(LoggerProvider(), level="LOUD"),
        ):
            with pytest.raises(flowtel.ConfigurationError, match=r"log_level.*LOUD.*WARN"):
                call()
