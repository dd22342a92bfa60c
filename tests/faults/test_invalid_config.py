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
